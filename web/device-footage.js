// 设备录像: footage kept on a GB/T 28181 device's own disk, under the playback page of a camera bound from a
// device. Lists what the device holds for the day (GET /cameras/{id}/device-recordings) and plays one record
// over the device-playback WebSocket (MSE), with pause, resume and speeds 1/2/4 passed to the device as
// MANSRTSP. Protocol: docs/gb28181.md.
//
// State for tests: the section's `data-state` (idle, listing, listed, connecting, playing, paused, ended,
// error) and `data-speed`; the <video> is the section's only video.
import { api, fmtTime, h, t } from './core.js';

const SPEEDS = [1, 2, 4];

/** The section for `camera` over `[d0, d1)` (ms). Returns {el, stop}. */
export function deviceFootage(camera, d0, d1) {
  const list = h('tbody');
  const status = h('span', { class: 'muted df-status', role: 'status' });
  const video = h('video', { class: 'rp-video df-video', muted: true, playsinline: true, hidden: true,
    'aria-label': t('df_title') });
  const controls = h('div', { class: 'rp-controls df-controls', hidden: true });
  const el = h('section', { class: 'df', 'aria-label': t('df_title'), dataset: { state: 'idle' } },
    h('h3', { text: t('df_title') }),
    h('p', { class: 'muted', text: t('df_hint') }),
    h('button', { type: 'button', class: 'secondary df-query', text: t('df_query'), onclick: () => query() }),
    status,
    h('table', { class: 'df-records' }, h('thead', {}, h('tr', {},
      h('th', { text: t('df_start') }), h('th', { text: t('df_end') }), h('th', { text: t('df_type') }), h('th'))), list),
    video, controls);
  let player = null;
  const state = (s, message) => {
    el.dataset.state = s;
    status.textContent = message || t(`df_state_${s}`);
  };

  async function query() {
    state('listing');
    try {
      const end = Math.min(d1, Date.now());
      const q = `start=${encodeURIComponent(new Date(d0).toISOString())}&end=${encodeURIComponent(new Date(end).toISOString())}`;
      const r = await api('GET', `/cameras/${camera.id}/device-recordings?${q}`);
      list.replaceChildren(...r.records.map((rec) => h('tr', { class: 'df-row' },
        h('td', { text: fmtTime(Date.parse(rec.start)) }),
        h('td', { text: fmtTime(Date.parse(rec.end)) }),
        h('td', { text: rec.type || '' }),
        h('td', {}, h('button', { type: 'button', class: 'df-play', text: t('rp_play'), onclick: () => play(rec) })))));
      state('listed', r.records.length ? t('df_found', { n: r.records.length }) : t('df_none'));
    } catch (e) {
      state('error', e.message);
    }
  }

  function play(rec) {
    stop();
    video.hidden = false;
    controls.hidden = false;
    player = new DevicePlayer(video, camera.id, rec.start, rec.end, state);
    controls.replaceChildren(
      h('button', { type: 'button', class: 'df-pause', text: t('rp_pause'), onclick: () => player?.send({ type: 'pause' }) }),
      h('button', { type: 'button', class: 'df-resume', text: t('df_resume'), onclick: () => player?.send({ type: 'play' }) }),
      ...SPEEDS.map((s) => h('button', { type: 'button', class: 'secondary df-speed', dataset: { speed: String(s) }, text: `${s}×`,
        onclick: () => { player?.send({ type: 'speed', scale: s }); } })));
  }

  function stop() {
    player?.close();
    player = null;
  }
  return { el, stop };
}

/** One device playback: a WebSocket of MSE fragments, steered by the viewer. */
class DevicePlayer {
  constructor(video, camera, start, end, state) {
    this.video = video;
    this.state = state;
    this.queue = [];
    this.closed = false;
    const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
    const q = `start=${encodeURIComponent(start)}&end=${encodeURIComponent(end)}`;
    this.ws = new WebSocket(`${proto}//${location.host}/api/v1/cameras/${camera}/device-playback?${q}`);
    this.ws.binaryType = 'arraybuffer';
    state('connecting');
    this.ws.onopen = () => this.send({ type: 'mse', codecs: [] });
    this.ws.onmessage = (ev) => this.onMessage(ev);
    this.ws.onclose = () => { if (!this.closed && this.video.closest('.df').dataset.state !== 'ended') state('error', t('df_closed')); };
  }

  send(obj) {
    if (obj.type === 'speed') this.lastSpeed = obj.scale; // shown once the device took it (`steered`)
    if (this.ws.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify(obj));
  }

  close() {
    this.closed = true;
    try { this.ws.close(); } catch (_) { /* already closed */ }
    if (this.video.src) URL.revokeObjectURL(this.video.src);
    this.video.removeAttribute('src');
    this.video.load();
  }

  onMessage(ev) {
    if (typeof ev.data !== 'string') { this.queue.push(ev.data); this.pump(); return; }
    let m;
    try { m = JSON.parse(ev.data); } catch (_) { return; }
    const section = this.video.closest('.df');
    if (m.type === 'mse') this.open(m.mime);
    else if (m.type === 'steered') {
      if (m.command === 'pause') this.state('paused');
      else this.state('playing');
      if (m.command === 'speed') section.dataset.speed = String(this.lastSpeed || '');
    } else if (m.type === 'end') this.state('ended');
    else if (m.type === 'error') this.state('error', m.message);
  }

  open(mime) {
    if (this.sb) return;
    const ms = new MediaSource();
    this.video.src = URL.createObjectURL(ms);
    ms.addEventListener('sourceopen', () => {
      try { this.sb = ms.addSourceBuffer(mime); } catch (e) { this.state('error', String(e)); return; }
      this.sb.mode = 'segments';
      this.sb.addEventListener('updateend', () => this.pump());
      this.state('playing');
      this.pump();
    }, { once: true });
  }

  pump() {
    const sb = this.sb;
    if (!sb || sb.updating || this.closed) return;
    const v = this.video;
    if (v.buffered.length && v.paused) {
      if (v.currentTime < v.buffered.start(0)) v.currentTime = v.buffered.start(0);
      v.play().catch(() => {});
    }
    const next = this.queue.shift();
    if (!next) return;
    try { sb.appendBuffer(next); } catch (e) { this.state('error', String(e)); }
  }
}
