// The case page (#/cases/<case_no>): what an investigator needs to review one case or bid project. Its
// events on a timeline, its clips (one per camera and stretch, with a thumbnail and coverage), a player
// whose scrub bar shows the recorded spans of the clip's camera over the whole case (gaps visible), a jump
// to each event, the export of a signed evidence package with progress and download, and a hold.
//
// Invariants: the timeline covers the whole case (every event and clip); choosing a clip or an event picks
// the camera that covers it and loads only that clip's range (replay.js); the export is polled until it is
// done or failed and polling stops when the page is left; a hold needs a reason, as the server does. New
// events of the case (a `cases_updated` notification) are announced with a reload button, never applied
// under the investigator's feet: a reload would stop the player.
import { api, bus, fmtBytes, fmtTime, h, showError, t, toast } from './core.js';
import { zoomSelect } from './timeline.js';
import { cardLabel, coverageLabel, kindLabel, remountOnLang, statusLabel, typeLabel } from './case-terms.js';
import { iso, playerKeys, Replay, soundButton, speedButtons, toMs } from './replay.js';
import { thumbnailFeed } from './thumbs.js';

const fact = (label, value) => (value ? [h('dt', { text: label }), h('dd', { text: value })] : []);

/** The export control: start, progress, download link; `via` is `?link=...` for a linked city's case.
 * Returns [element, stop]. */
function exportBox(caseNo, via) {
  let timer = null;
  const bar = h('progress', { max: '1', value: '0', hidden: true, class: 'ck-progress' });
  const text = h('span', { class: 'ck-export-state', role: 'status' });
  const link = h('span', { class: 'ck-download' });
  const btn = h('button', { type: 'button', class: 'ck-export', text: t('ck_export') });
  const poll = async (id) => {
    const r = await api('GET', `/exports/${id}`).catch(showError);
    if (!r) { btn.disabled = false; return; }
    bar.value = r.progress ?? 0;
    bar.hidden = false;
    if (r.state === 'done') {
      text.textContent = t('ck_export_done');
      text.dataset.state = 'done';
      link.replaceChildren(h('a', { class: 'button', href: r.download_url, download: '',
        text: `${t('ck_download')}${r.bytes ? ` (${fmtBytes(r.bytes)})` : ''}`, title: r.sha256 ? `SHA-256 ${r.sha256}` : null }));
      btn.disabled = false;
    } else if (r.state === 'failed') {
      text.textContent = t('ck_export_failed', { e: r.error || '' });
      text.dataset.state = 'failed';
      btn.disabled = false;
    } else {
      text.textContent = t('ck_exporting', { p: Math.round((r.progress ?? 0) * 100) });
      text.dataset.state = 'running';
      timer = setTimeout(() => poll(id), 700);
    }
  };
  btn.onclick = async () => {
    btn.disabled = true;
    link.replaceChildren();
    clearTimeout(timer);
    const r = await api('POST', `/cases/${encodeURIComponent(caseNo)}/export${via}`, {}).catch(showError);
    if (!r) { btn.disabled = false; return; }
    text.textContent = t('ck_exporting', { p: 0 });
    poll(r.export_id);
  };
  return [h('div', { class: 'ck-export-box' }, btn, bar, text, link), () => clearTimeout(timer)];
}

function holdForm(caseNo) {
  const reason = h('textarea', { name: 'reason', required: true, maxlength: '500', rows: '2', placeholder: t('ck_reason_hint'),
    'aria-label': t('ck_reason') });
  const ack = h('p', { class: 'ck-hold-ack', role: 'status' });
  const form = h('form', { class: 'ck-hold' }, h('label', {}, t('ck_reason'), reason),
    h('button', { type: 'submit', class: 'secondary', text: t('ck_hold') }), ack);
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const btn = form.querySelector('button');
    btn.disabled = true;
    const r = await api('POST', '/holds', { case_no: caseNo, reason: reason.value }).catch(showError);
    btn.disabled = false;
    if (!r) return;
    ack.textContent = t('ck_held', { n: r.holds.length, by: r.created_by, at: fmtTime(new Date()) });
    ack.dataset.held = String(r.holds.length);
  });
  return form;
}

export async function mountCase(root, caseNo, route) {
  // A linked city's case (at a province): read, played and exported through the link; held at the city.
  const link = route?.query.get('link') || '';
  const via = link ? `?link=${encodeURIComponent(link)}` : '';
  const c = await api('GET', `/cases/${encodeURIComponent(caseNo)}${via}`);
  const events = c.events.map((e) => ({ ...e, ms: Date.parse(e.at) })).sort((a, b) => a.ms - b.ms);
  const clips = c.clips.map((x) => ({ ...x, s: Date.parse(x.start), e: Date.parse(x.end) }));
  const times = [...events.map((e) => e.ms), ...clips.flatMap((x) => [x.s, x.e])];
  const pad = Math.max(5000, (Math.max(...times) - Math.min(...times)) * 0.05);
  const range = { start: Math.min(...times) - pad, end: Math.max(...times) + pad };

  const video = h('video', { class: 'rp-video', 'aria-label': t('ck_player') });
  const replay = new Replay(video);
  const timeline = h('vigil-timeline', { class: 'ck-timeline' });
  timeline.range = range;
  const thumbs = thumbnailFeed(timeline);
  timeline.markers = events.map((e) => ({ at: e.ms, kind: c.case_type, label: `${kindLabel(e.kind)} · ${e.position}` }));
  const clock = h('span', { class: 'rp-clock' });
  const status = h('span', { class: 'rp-status', role: 'status' });
  const spansOf = new Map();
  let current = null;
  const clipRows = [];

  const select = async (i, at, play = true) => {
    const clip = clips[i];
    current = i;
    clipRows.forEach((row, j) => row.setAttribute('aria-current', j === i ? 'true' : 'false'));
    if (!spansOf.has(clip.camera_id)) {
      const r = await api('GET', `/cameras/${clip.camera_id}/recordings?start=${encodeURIComponent(iso(range.start))}`
        + `&end=${encodeURIComponent(iso(range.end))}`).catch(showError);
      spansOf.set(clip.camera_id, toMs(r?.spans));
    }
    const spans = spansOf.get(clip.camera_id);
    timeline.spans = spans;
    thumbs.camera(clip.camera_id);
    replay.setCamera(clip.camera_id, spans);
    replay.clip = { start: clip.s, end: clip.e };
    root.dataset.camera = String(clip.camera_id);
    await replay.seek(at ?? clip.s, play);
  };
  /** The clip that shows an event: same position, containing its time; the current camera first. */
  const clipFor = (e) => {
    const fits = clips.map((x, i) => [x, i]).filter(([x]) => x.position === e.position && e.ms >= x.s && e.ms < x.e);
    const same = fits.find(([x]) => current !== null && x.camera_id === clips[current].camera_id);
    return (same || fits[0] || [])[1];
  };
  const jump = (e) => {
    const i = clipFor(e);
    if (i === undefined) { toast(t('ck_no_cover', { pos: e.position })); return; }
    timeline.value = e.ms;
    select(i, e.ms, true);
  };
  const jumpEvent = (dir) => {
    const now = replay.time ?? timeline.value;
    const e = dir > 0 ? events.find((x) => x.ms > now + 500) : [...events].reverse().find((x) => x.ms < now - 1500);
    if (e) jump(e);
  };

  const playBtn = h('button', { type: 'button', class: 'rp-play', text: t('rp_play'), title: t('rp_keys'),
    onclick: () => (current === null && clips.length ? select(0) : replay.toggle()) });
  replay.addEventListener('time', (e) => {
    timeline.value = e.detail.time;
    clock.textContent = fmtTime(e.detail.time);
    root.dataset.time = String(Math.round(e.detail.time)); // the wall time shown, for tests and tools
  });
  replay.addEventListener('state', (e) => {
    playBtn.textContent = e.detail.state === 'playing' ? t('rp_pause') : t('rp_play');
    root.dataset.state = e.detail.state;
    status.textContent = e.detail.message || '';
  });
  timeline.addEventListener('seek', (e) => {
    if (current === null && clips.length) select(0, e.detail.time, false);
    else replay.seek(e.detail.time);
  });

  const fresh = h('p', { class: 'ck-fresh', role: 'status', hidden: true }, t('ck_updated'), ' ',
    h('button', { type: 'button', class: 'small', text: t('ck_reload'),
      onclick: () => window.dispatchEvent(new HashChangeEvent('hashchange')) }));
  const onNotification = (e) => {
    const m = e.detail;
    if (m?.type === 'cases_updated' && Array.isArray(m.case_nos) && m.case_nos.includes(c.case_no)) fresh.hidden = false;
  };
  bus.addEventListener('notification', onNotification);

  const [exportEl, stopExport] = exportBox(c.case_no, via);
  const header = h('div', { class: 'ck-head' },
    h('a', { href: '#/cases', class: 'ck-back', text: `← ${t('ck_back')}` }),
    h('h2', {}, c.case_no, ' ', c.link ? h('span', { class: 'tag badge-link', title: t('badge_link_hint'), text: c.link }) : null, ' ',
      h('span', { class: 'tag', text: typeLabel(c.case_type) }), ' ',
      h('span', { class: 'tag', text: statusLabel(c.status) }),
      c.card !== 'none' ? h('span', { class: `tag card card-${c.card}`, text: cardLabel(c.card) }) : null),
    h('dl', { class: 'ck-facts' },
      fact(t('ck_site'), c.site_name || String(c.site_id)), fact(t('ck_first'), fmtTime(c.first_at)),
      fact(t('ck_last'), fmtTime(c.last_at)), fact(t('ck_completed'), fmtTime(c.completed_at)),
      fact(t('ck_deadline'), fmtTime(c.deadline)), fact(t('ck_followup'), fmtTime(c.followup_deadline))),
    fresh);
  const player = h('section', { class: 'ck-player', 'aria-label': t('ck_player') },
    h('div', { class: 'rp-stage' }, video),
    h('div', { class: 'rp-controls' }, playBtn,
      h('button', { type: 'button', class: 'secondary', text: `« ${t('ck_prev_event')}`, title: 'p', onclick: () => jumpEvent(-1) }),
      h('button', { type: 'button', class: 'secondary', text: `${t('ck_next_event')} »`, title: 'n', onclick: () => jumpEvent(1) }),
      speedButtons(replay), soundButton(video), zoomSelect(timeline), clock, status),
    timeline);

  const clipList = h('ol', { class: 'ck-clips' }, clips.map((x, i) => {
    const thumb = h('img', { src: x.thumbnail_url, alt: '', loading: 'lazy', width: '160', height: '90' });
    const ph = h('span', { class: 'ck-thumb-none', text: t('ck_no_thumb'), hidden: true });
    thumb.addEventListener('error', () => { thumb.hidden = true; ph.hidden = false; });
    const row = h('li', { class: 'ck-clip', dataset: { index: String(i), camera: String(x.camera_id) } },
      h('button', { type: 'button', class: 'ck-thumb', title: t('ck_play'), 'aria-label': `${t('ck_play')} ${x.camera_name}`,
        onclick: () => select(i) }, thumb, ph),
      h('div', { class: 'ck-clip-text' },
        h('div', {}, h('strong', { text: x.camera_name }), ` · ${x.position}`),
        h('div', { class: 'muted', text: `${fmtTime(x.s)} – ${fmtTime(x.e).slice(11)}${x.open ? ` (${t('ck_open')})` : ''}` }),
        h('div', { class: `cov cov-${x.coverage}`, text: `${t('ck_coverage')}: ${coverageLabel(x.coverage)}` })));
    clipRows.push(row);
    return row;
  }));
  // One day (the usual approval case) shows clock times only; a longer case shows dates too.
  const oneDay = events.length && fmtTime(events[0].ms).slice(0, 10) === fmtTime(events[events.length - 1].ms).slice(0, 10);
  const eventTable = h('table', { class: 'ck-events' },
    h('thead', {}, h('tr', {}, [t('ck_time'), t('ck_kind'), t('ck_position'), t('ck_operator'), ''].map((x) =>
      h('th', { scope: 'col', text: x })))),
    h('tbody', {}, events.map((e) => h('tr', { dataset: { at: String(e.ms) } },
      h('td', { class: 'nowrap', text: oneDay ? fmtTime(e.ms).slice(11) : fmtTime(e.ms), title: fmtTime(e.ms) }),
      h('td', { class: 'nowrap', text: kindLabel(e.kind) }), h('td', { text: e.position }),
      h('td', { text: e.operator || '' }),
      h('td', {}, h('button', { type: 'button', class: 'secondary ck-jump', text: t('ck_jump'),
        'aria-label': `${t('ck_jump')} ${kindLabel(e.kind)} ${fmtTime(e.ms)}`, onclick: () => jump(e) }))))));

  root.append(header, h('div', { class: 'ck-layout' },
    h('div', { class: 'ck-left' }, player,
      h('section', { class: 'ck-actions', 'aria-label': t('ck_actions') }, exportEl, link ? null : holdForm(c.case_no))),
    h('div', { class: 'ck-right' },
      h('h3', { text: t('ck_clips') }), clips.length ? clipList : h('p', { class: 'muted', text: t('ck_no_clips') }),
      h('h3', { text: t('ck_events') }), eventTable)));
  root.dataset.ready = 'true';
  const unkeys = playerKeys(replay, { next: () => jumpEvent(1), prev: () => jumpEvent(-1) });
  const unlang = remountOnLang();
  if (clips.length) select(0, undefined, false);
  return () => {
    unkeys(); unlang(); stopExport(); thumbs.stop(); replay.destroy();
    bus.removeEventListener('notification', onNotification);
  };
}
