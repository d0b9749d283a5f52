// Playback of any camera (录像回放), route #/playback/<camera_id>?day=YYYY-MM-DD&t=<ms>: a tree of the visible
// cameras by site, the day's recorded spans and case events of the chosen camera on a zoomable timeline,
// and a player that follows the timeline (speeds 1/2/4/8, next/previous event, keyboard) and runs on into
// live at the end of today's footage (live-edge.js; "back to live", "-10 s").
//
// Invariants: the address always names the camera, day and playhead (history.replaceState, so the router
// does not remount and the back button still leaves the page); only the window around the playhead is
// loaded (replay.js); a camera's events come from GET /cameras/{id}/events (case events at the positions
// it covers) and a failure there leaves playback working without markers.
import { api, can, dayBounds, fmtTime, h, showError, stylesheet, t, ymd } from './core.js';
import { zoomSelect } from './timeline.js';
import { iso, playerKeys, Replay, soundButton, speedButtons, toMs } from './replay.js';
import { LivePlayback } from './live-edge.js';
import { thumbnailFeed } from './thumbs.js';
import { kindLabel, remountOnLang } from './case-terms.js';
import { deviceFootage } from './device-footage.js';
import { backfillList } from './backfills.js';

/** `1 h 5 min` style duration of ms. */
export function fmtDuration(ms) {
  const s = Math.round(ms / 1000);
  const hh = Math.floor(s / 3600);
  const mm = Math.floor((s % 3600) / 60);
  const ss = s % 60;
  if (hh) return t('pb_dur_h', { h: hh, m: mm });
  return mm ? t('pb_dur_m', { m: mm, s: ss }) : t('pb_dur_s', { s: ss });
}

/** The camera tree: sites with their cameras, filtered as one types. */
function cameraTree(sites, cameras, current, onPick) {
  const list = h('div', { class: 'pb-tree', role: 'tree', 'aria-label': t('pb_cameras') });
  const render = (filter) => {
    const f = filter.trim().toLowerCase();
    list.replaceChildren(...sites.map((s) => {
      const cams = cameras.filter((c) => c.site_id === s.id
        && (!f || c.name.toLowerCase().includes(f) || s.name.toLowerCase().includes(f)));
      if (f && !cams.length) return null;
      return h('div', { class: 'pb-site', role: 'treeitem', 'aria-expanded': 'true' },
        h('div', { class: 'pb-site-name', text: s.name }),
        cams.length ? h('div', { role: 'group' }, cams.map((c) => h('a', {
          href: `#/playback/${c.id}`, role: 'treeitem', class: 'pb-cam', dataset: { camera: String(c.id) },
          'aria-current': c.id === current ? 'true' : null,
          onclick: (e) => { e.preventDefault(); onPick(c.id); },
        }, h('span', { class: `dot state-${c.state || 'unknown'}`, 'aria-hidden': 'true' }), c.name,
        c.recording ? h('span', { class: 'rec', title: t('pb_recording'), text: '●' }) : null)))
          : h('div', { class: 'muted', text: t('pb_site_empty') }));
    }).filter(Boolean));
  };
  const input = h('input', { type: 'search', placeholder: t('pb_filter'), 'aria-label': t('pb_filter'),
    oninput: () => render(input.value) });
  render('');
  return h('nav', { class: 'pb-side', 'aria-label': t('pb_cameras') }, h('h2', { text: t('pb_cameras') }), input, list);
}

export default {
  title: 'nav_playback',
  roles: ['admin', 'supervisor', 'investigator'],
  async mount(root, route) {
    stylesheet('/cases.css');
    const [sites, cameras] = await Promise.all([api('GET', '/sites'), api('GET', '/cameras')]);
    const id = Number(route.parts[1]) || null;
    const camera = cameras.find((c) => c.id === id) || null;
    const day = /^\d{4}-\d{2}-\d{2}$/.test(route.query.get('day') || '') ? route.query.get('day') : ymd(new Date());
    // Another camera opens at the same moment (the address holds the playhead): who else saw it.
    const pick = (cid) => {
      const q = new URLSearchParams(location.hash.split('?')[1] || '');
      const keep = ['t', 'z'].filter((k) => q.get(k)).map((k) => `&${k}=${q.get(k)}`).join('');
      location.hash = `#/playback/${cid}?day=${day}${keep}`;
    };
    const tree = cameraTree(sites, cameras, id, pick);
    if (!camera) {
      root.append(h('div', { class: 'pb-layout' }, tree, h('p', { class: 'empty', text: t('pb_pick') })));
      return remountOnLang();
    }
    const [d0, d1] = dayBounds(day).map((d) => d.getTime());
    const site = sites.find((s) => s.id === camera.site_id);
    const video = h('video', { class: 'rp-video', 'aria-label': camera.name });
    const replay = new Replay(video);
    const stage = h('div', { class: 'rp-stage' }, video);
    // The player the page drives: the replay, and live at the end of today's footage.
    const mayLive = can('admin', 'supervisor');
    const player = new LivePlayback({ camera: camera.id, stage, replay, refresh: () => refresh().then(() => spans),
      live: mayLive });
    const timeline = h('vigil-timeline', { class: 'pb-timeline' });
    const thumbs = thumbnailFeed(timeline);
    const status = h('span', { class: 'rp-status', role: 'status' });
    const clock = h('span', { class: 'rp-clock', 'aria-live': 'off' });
    const summary = h('p', { class: 'muted pb-summary' });
    let events = [];

    const shiftDay = (n) => {
      const [y, m, d] = day.split('-').map(Number);
      location.hash = `#/playback/${camera.id}?day=${ymd(new Date(y, m - 1, d + n))}`;
    };
    const zoom = zoomSelect(timeline);
    const remember = (ms) => {
      const z = zoom.querySelector('select').value;
      const url = `#/playback/${camera.id}?day=${day}&t=${Math.round(ms)}${z !== '0' ? `&z=${z}` : ''}`;
      if (location.hash !== url) history.replaceState(null, '', url);
    };
    const jumpEvent = (dir) => {
      const now = player.time ?? timeline.value;
      // Going back skips the event just reached, so that repeated presses walk back through them.
      const e = dir > 0 ? events.find((x) => x.ms > now + 500) : [...events].reverse().find((x) => x.ms < now - 1500);
      if (!e) { status.textContent = t('pb_no_event'); return; }
      timeline.value = e.ms;
      player.seek(e.ms);
    };
    const playBtn = h('button', { type: 'button', class: 'rp-play', text: t('rp_play'), title: t('rp_keys'),
      onclick: () => player.toggle() });
    const showLive = d1 > Date.now() && mayLive;
    const controls = h('div', { class: 'rp-controls' },
      playBtn,
      h('button', { type: 'button', class: 'secondary pb-back10', text: '−10s', title: t('pb_back'), 'aria-label': t('pb_back'),
        onclick: () => player.seek((player.time ?? timeline.value) - 10000, true) }),
      h('button', { type: 'button', class: 'secondary', text: '+10s', title: t('pb_fwd'), 'aria-label': t('pb_fwd'),
        onclick: () => player.seek((player.time ?? timeline.value) + 10000) }),
      showLive ? h('button', { type: 'button', class: 'secondary pb-live', text: t('pb_to_live'), title: t('pb_to_live_hint'),
        onclick: () => player.goLive() }) : null,
      h('button', { type: 'button', class: 'secondary pb-prev-event', text: `« ${t('pb_prev_event')}`, title: 'p',
        onclick: () => jumpEvent(-1) }),
      h('button', { type: 'button', class: 'secondary pb-next-event', text: `${t('pb_next_event')} »`, title: 'n',
        onclick: () => jumpEvent(1) }),
      speedButtons(replay), soundButton(video, stage), clock, status);
    const dayInput = h('input', { type: 'date', value: day, 'aria-label': t('pb_day'),
      onchange: (e) => { if (e.target.value) location.hash = `#/playback/${camera.id}?day=${e.target.value}`; } });
    const head = h('div', { class: 'pb-head' },
      h('h2', { text: `${site ? `${site.name} · ` : ''}${camera.name}` }),
      h('button', { type: 'button', class: 'secondary', text: '‹', title: t('pb_prev_day'), 'aria-label': t('pb_prev_day'),
        onclick: () => shiftDay(-1) }),
      dayInput,
      h('button', { type: 'button', class: 'secondary', text: '›', title: t('pb_next_day'), 'aria-label': t('pb_next_day'),
        onclick: () => shiftDay(1) }),
      zoom);
    // A device's channel: the footage on the device's own disk too (设备录像).
    const device = camera.source === 'gb28181' ? deviceFootage(camera, d0, d1) : null;
    // Gaps fetched back from the device that kept recording (补录).
    const backfills = backfillList(camera, d0, d1);
    const main = h('div', { class: 'pb-main' }, head, stage, controls, timeline, summary,
      backfills.el, device?.el);
    root.append(h('div', { class: 'pb-layout' }, tree, main));

    player.addEventListener('time', (e) => {
      timeline.value = e.detail.time;
      clock.textContent = player.live ? `${t('pb_live')} · ${fmtTime(e.detail.time)}` : fmtTime(e.detail.time);
      root.dataset.time = String(Math.round(e.detail.time)); // the wall time shown, for tests and tools
      if (!player.live) remember(e.detail.time); // a reload or a shared address opens the recording
    });
    player.addEventListener('state', (e) => {
      const playing = e.detail.state === 'playing' || e.detail.state === 'live';
      playBtn.textContent = playing ? t('rp_pause') : t('rp_play');
      stage.classList.toggle('rp-is-live', e.detail.state === 'live');
      root.dataset.state = e.detail.state;
      status.textContent = e.detail.message || '';
    });
    timeline.addEventListener('seek', (e) => player.seek(e.detail.time));
    timeline.addEventListener('scrub', (e) => { clock.textContent = fmtTime(e.detail.time); });
    const unkeys = playerKeys(player, { next: () => jumpEvent(1), prev: () => jumpEvent(-1) });
    const unlang = remountOnLang();

    const range = `start=${encodeURIComponent(iso(d0))}&end=${encodeURIComponent(iso(d1))}`;
    let spans = [];
    // Spans, events and backfills of the day, read together; again every 30 s while the day is still being recorded.
    const refresh = async () => {
      const [rec, ev] = await Promise.all([
        api('GET', `/cameras/${camera.id}/recordings?${range}`),
        api('GET', `/cameras/${camera.id}/events?${range}`).catch(showError),
        backfills.refresh().catch(() => {}),
      ]);
      spans = toMs(rec.spans);
      timeline.spans = spans;
      thumbs.camera(camera.id, camera.record_sub ? 'sub' : 'main');
      thumbs.refresh();
      replay.setCamera(camera.id, spans);
      events = (ev?.events || []).map((x) => ({ ...x, ms: Date.parse(x.at) })).sort((a, b) => a.ms - b.ms);
      timeline.markers = events.map((x) => ({ at: x.ms, kind: x.case_type,
        label: t('pb_event_at', { kind: kindLabel(x.kind), case: x.case_no, pos: x.position }) }));
      const total = spans.reduce((a, x) => a + x.end - x.start, 0);
      summary.textContent = spans.length ? t('pb_recorded', { n: spans.length, h: fmtDuration(total) }) : t('pb_no_rec');
      if (events.length) summary.textContent += ` · ${t('pb_events', { n: events.length })}`;
    };
    timeline.range = { start: d0, end: d1 };
    await refresh();
    // Left while loading: the shell has already moved on, so clean up here.
    const stop = () => { unkeys(); unlang(); thumbs.stop(); player.destroy(); replay.destroy(); device?.stop(); };
    if (!root.isConnected) { stop(); return null; }
    const timer = d1 > Date.now() ? setInterval(() => refresh().catch(() => {}), 30000) : null;
    const asked = Number(route.query.get('t'));
    const start = asked >= d0 && asked < d1 ? asked : spans[0]?.start ?? d0;
    timeline.value = start;
    zoom.addEventListener('change', () => remember(player.time ?? timeline.value));
    const z = zoom.querySelector(`option[value="${Number(route.query.get('z'))}"]`);
    if (z && z.value !== '0') { z.selected = true; timeline.zoom(Number(z.value)); }
    root.dataset.ready = 'true';
    if (spans.length) replay.seek(start, false);
    return () => { clearInterval(timer); stop(); };
  },
};
