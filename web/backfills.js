// 补录: the gaps of a camera's recording that Vigil fetches back from the device or NVR that kept recording
// while the link was down (GET /backfills?camera_id=), under the playback page's timeline: each gap's time,
// source, state and progress, and why a gap stays a gap (the device has nothing, or it failed). Hidden while
// the camera has none in the day shown. Protocol: docs/edge.md.
import { api, fmtTime, h, t } from './core.js';

/** The section for `camera` over `[d0, d1)` (ms). Returns {el, refresh}. */
export function backfillList(camera, d0, d1) {
  const rows = h('tbody');
  const el = h('section', { class: 'bf', 'aria-label': t('bf_title'), hidden: true },
    h('h3', { text: t('bf_title') }),
    h('p', { class: 'muted', text: t('bf_hint') }),
    h('table', { class: 'bf-rows' }, h('thead', {}, h('tr', {},
      h('th', { text: t('bf_gap') }), h('th', { text: t('bf_source') }), h('th', { text: t('bf_state') }),
      h('th', { text: t('bf_progress') }), h('th', { text: t('bf_detail') }))), rows));
  async function refresh() {
    const r = await api('GET', `/backfills?camera_id=${camera.id}`);
    const day = r.backfills.filter((b) => Date.parse(b.end) > d0 && Date.parse(b.start) < d1);
    el.hidden = !day.length;
    rows.replaceChildren(...day.map((b) => h('tr', { class: `bf-row bf-${b.state}`, dataset: { state: b.state } },
      h('td', { text: `${fmtTime(Date.parse(b.start))} – ${fmtTime(Date.parse(b.end))}` }),
      h('td', { class: 'bf-source', text: b.source }),
      h('td', { text: t(`bf_state_${b.state}`) }),
      h('td', { text: `${b.fetched_s.toFixed(0)} / ${b.gap_s.toFixed(0)} s` }),
      h('td', { class: 'muted', text: b.state === 'nothing' ? t('bf_nothing')
        : b.next_try_at ? `${b.detail} · ${t('bf_retry_at', { at: fmtTime(Date.parse(b.next_try_at)) })}` : b.detail }))));
  }
  return { el, refresh };
}
