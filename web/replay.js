// Recorded-video playback shared by the case page and the playback page: a <video> that plays one camera's
// footage at any wall-clock time, loading `GET /cameras/{id}/video.mp4?start=&end=` one window at a time
// (the clip, or the aligned ten minutes around the playhead) rather than a whole day, and the keyboard.
//
// Time mapping (see src/record/export.rs): the MP4 of [start, end) begins at the first footage at or after
// `start` and places every fragment at its wall-clock offset from there, holding the last picture over a
// gap. So wall time = base + currentTime, where base = max(start, first recorded span's start in range).
// Invariants: `time` is always wall time in ms; a seek inside the loaded window only moves currentTime;
// a seek into a gap lands on the next recorded footage; the speed survives a window change; a window ends
// at the footage known when it loads, so the bytes of every video URL it asks for never change. Above 4x a
// window is the keyframes alone (`video.mp4?keyframes=true`: the same timeline, a fraction of the bytes and
// of the decoding); crossing that speed reloads the window at the same moment.
import { h, t } from './core.js';

export const SPEEDS = [1, 2, 4, 8];
/** From this speed on, windows hold keyframes only. */
const KEYFRAMES_FROM = 8;
const WINDOW_MS = 10 * 60e3;

export const iso = (ms) => new Date(ms).toISOString();

/** Spans of `GET /cameras/{id}/recordings` as numbers. */
export const toMs = (spans) => (spans || []).map((s) => ({ start: Date.parse(s.start), end: Date.parse(s.end) }));

export class Replay extends EventTarget {
  /** `video`: the element to drive. Events: 'time' (detail {time}), 'state' (detail {state, message}). */
  constructor(video) {
    super();
    this.video = video;
    this.camera = null;
    this.spans = [];
    this.win = null; // {start, end, base, camera}
    // The speed is the user's choice for the session, kept across windows, cameras and pages.
    this.rate = SPEEDS.includes(Number(sessionStorage.getItem('vigil.rate'))) ? Number(sessionStorage.getItem('vigil.rate')) : 1;
    this.clip = null; // a preferred window: {start, end} (a case clip)
    video.muted = true;
    // A new source resets playbackRate to the default: the default is the chosen speed.
    video.defaultPlaybackRate = this.rate;
    video.playsInline = true;
    video.preload = 'auto';
    this.onTime = () => this.emitTime();
    this.onEnded = () => this.next();
    this.onError = () => this.setState('error', t('rp_failed'));
    this.onPlaying = () => this.setState('playing');
    // Changing the source pauses the element: that is loading, not the user's pause.
    this.onPause = () => { if (!this.loading) this.setState(this.video.ended ? 'ended' : 'paused'); };
    video.addEventListener('timeupdate', this.onTime);
    video.addEventListener('seeked', this.onTime);
    video.addEventListener('ended', this.onEnded);
    video.addEventListener('error', this.onError);
    video.addEventListener('playing', this.onPlaying);
    video.addEventListener('pause', this.onPause);
  }

  destroy() {
    const v = this.video;
    v.removeEventListener('timeupdate', this.onTime);
    v.removeEventListener('seeked', this.onTime);
    v.removeEventListener('ended', this.onEnded);
    v.removeEventListener('error', this.onError);
    v.removeEventListener('playing', this.onPlaying);
    v.removeEventListener('pause', this.onPause);
    v.pause();
    v.removeAttribute('src');
    v.load();
  }

  setState(state, message) {
    this.state = state;
    this.dispatchEvent(new CustomEvent('state', { detail: { state, message } }));
  }

  /** Selects a camera and its recorded spans (ms); nothing loads until `seek`. */
  setCamera(id, spans) {
    if (id !== this.camera) this.win = null;
    this.camera = id;
    this.spans = spans;
  }

  /** The wall time shown now (ms). */
  get time() {
    if (!this.win || this.loading) return this.pending ?? null;
    return this.win.base + this.video.currentTime * 1000;
  }

  emitTime() {
    if (this.win && !this.loading) this.dispatchEvent(new CustomEvent('time', { detail: { time: this.time } }));
  }

  /** The recorded time to show for `ms`: itself when recorded, else the start of the next span. */
  snap(ms) {
    for (const s of this.spans) {
      if (ms < s.start) return s.start;
      if (ms < s.end) return ms;
    }
    return null;
  }

  windowFor(ms) {
    const c = this.clip;
    if (c && ms >= c.start && ms < c.end) return { start: c.start, end: c.end };
    const start = Math.floor(ms / WINDOW_MS) * WINDOW_MS;
    return { start, end: start + WINDOW_MS };
  }

  /** Shows wall time `ms` (playing on if it was playing, or if `play`). */
  async seek(ms, play) {
    if (this.camera === null) return;
    const to = this.snap(ms);
    if (to === null) { this.setState('error', t('rp_no_footage')); return; }
    const w = this.win;
    this.lastNext = undefined;
    // While a window loads the element is paused: the intent is what counts.
    const wantPlay = play ?? (this.loading ? this.loadPlay : !this.video.paused);
    if (w && w.camera === this.camera && w.keyframes === this.keyframes && to >= w.base && to < w.end - 250
      && this.video.readyState > 0
      && to - w.base <= (this.video.duration || 0) * 1000) {
      this.video.currentTime = (to - w.base) / 1000;
      if (wantPlay) this.play();
      this.emitTime();
      return;
    }
    await this.load(this.windowFor(to), to, wantPlay);
  }

  async load(aligned, at, play) {
    // A window that reaches past the footage known now ends there. A video.mp4 reaching further would grow
    // (its bytes all move) as the camera records on, while the browser reuses what it read of a URL, also
    // in another element: pieces of two versions make undecodable video. A pinned end keeps a URL's bytes.
    const known = this.spans.length ? this.spans[this.spans.length - 1].end : aligned.end;
    const win = { start: aligned.start, end: Math.min(aligned.end, Math.max(known, at + 1)) };
    const first = this.spans.find((s) => s.end > win.start && s.start < win.end);
    const base = first ? Math.max(win.start, first.start) : win.start;
    const v = this.video;
    const token = (this.loads = (this.loads || 0) + 1);
    this.loading = true;
    this.loadPlay = play;
    this.pending = at;
    this.win = { ...win, base, camera: this.camera, keyframes: this.keyframes };
    this.setState('loading', t('rp_loading'));
    v.src = `/api/v1/cameras/${encodeURIComponent(this.camera)}/video.mp4?start=${encodeURIComponent(iso(win.start))}`
      + `&end=${encodeURIComponent(iso(win.end))}${this.keyframes ? '&keyframes=true' : ''}`;
    const ok = await new Promise((resolve) => {
      const done = (r) => { v.removeEventListener('loadedmetadata', yes); v.removeEventListener('error', no); resolve(r); };
      const yes = () => done(true);
      const no = () => done(false);
      v.addEventListener('loadedmetadata', yes);
      v.addEventListener('error', no);
    });
    if (token !== this.loads) return; // a later seek took over
    this.loading = false;
    this.pending = null;
    if (!ok) return;
    v.currentTime = Math.max(0, (at - base) / 1000);
    v.playbackRate = this.rate;
    if (this.loadPlay) this.play(); else this.setState('paused');
    this.emitTime();
  }

  /** At the end of a window: go on with the recorded footage after it (the next window, the next span, or
   *  the same window again when a camera still recording has written more). Stops when that reload would
   *  start where the last one did (nothing new yet). */
  next() {
    const w = this.win;
    if (!w) return;
    const to = this.snap((this.time ?? w.end) + 1);
    if (to === null || (this.lastNext !== undefined && Math.abs(to - this.lastNext) < 1000)) {
      this.setState('ended');
      return;
    }
    this.lastNext = to;
    this.load(this.windowFor(to), to, true);
  }

  play() {
    if (this.loading) { this.loadPlay = true; return; }
    if (!this.win) { if (this.spans.length) this.seek(this.spans[0].start, true); return; }
    this.video.playbackRate = this.rate;
    this.video.play().catch(() => {});
  }

  pause() {
    if (this.loading) this.loadPlay = false;
    this.video.pause();
  }

  toggle() {
    if (this.loading ? this.loadPlay : !this.video.paused) this.pause(); else this.play();
  }

  /** Whether windows hold keyframes only at the current speed. */
  get keyframes() { return this.rate >= KEYFRAMES_FROM; }

  setRate(r) {
    const before = this.keyframes;
    this.rate = r;
    sessionStorage.setItem('vigil.rate', String(r));
    this.video.defaultPlaybackRate = r;
    this.video.playbackRate = r;
    this.dispatchEvent(new CustomEvent('rate', { detail: { rate: r } }));
    // Into or out of keyframes-only: the same moment from the other kind of window.
    if (before !== this.keyframes && this.win && !this.loading) this.seek(this.time, !this.video.paused);
  }

  /** One speed up (+1) or down (-1) through SPEEDS. */
  stepRate(dir) {
    const i = Math.max(0, SPEEDS.indexOf(this.rate));
    this.setRate(SPEEDS[Math.min(SPEEDS.length - 1, Math.max(0, i + dir))]);
  }
}

/** Speed buttons (1x, 2x, 4x, 8x) that follow the replay's rate. */
export function speedButtons(replay) {
  const box = h('div', { class: 'rp-speeds', role: 'group', 'aria-label': t('rp_speed') });
  const render = () => {
    box.replaceChildren(...SPEEDS.map((s) => h('button', {
      type: 'button', class: s === replay.rate ? '' : 'secondary', text: `${s}×`, dataset: { speed: String(s) },
      'aria-pressed': String(s === replay.rate), onclick: () => replay.setRate(s),
    })));
  };
  replay.addEventListener('rate', render);
  render();
  return box;
}

/** The sound toggle of a player: unmutes the recording's <video> (muted until asked: browsers start only
 *  muted media unasked), and the live stream shown in `stage` in its place, if any. */
export function soundButton(video, stage) {
  const b = h('button', { type: 'button', class: 'secondary rp-sound', text: '🔈', title: t('rp_sound'),
    'aria-label': t('rp_sound') });
  const render = () => {
    b.setAttribute('aria-pressed', String(!video.muted));
    b.className = video.muted ? 'secondary rp-sound' : 'rp-sound';
  };
  b.onclick = () => {
    video.muted = !video.muted;
    stage?.querySelector('vigil-live')?.toggleAttribute('sound', !video.muted);
    render();
  };
  render();
  return b;
}

/** The player's keyboard: space, arrows, [ ], n/p. Ignores keys typed into fields and those the focused
 *  timeline or button handles itself. `replay`: a Replay, or anything with its time, seek, toggle and
 *  stepRate (the playback page's LivePlayback). Returns the function that removes the listener. */
export function playerKeys(replay, { next, prev }) {
  const onKey = (e) => {
    if (e.ctrlKey || e.metaKey || e.altKey) return;
    const el = e.target;
    if (el instanceof HTMLElement && (el.closest('input, textarea, select, [contenteditable]'))) return;
    const onButton = el instanceof HTMLElement && el.closest('button, a');
    const cur = replay.time;
    if (e.key === ' ' && !onButton) { e.preventDefault(); replay.toggle(); }
    else if ((e.key === 'ArrowLeft' || e.key === 'ArrowRight') && cur !== null && !onButton) {
      e.preventDefault();
      const d = (e.shiftKey ? 30e3 : 5e3) * (e.key === 'ArrowLeft' ? -1 : 1);
      replay.seek(cur + d);
    } else if (e.key === ']') replay.stepRate(1);
    else if (e.key === '[') replay.stepRate(-1);
    else if (e.key === 'n' || e.key === 'N') next();
    else if (e.key === 'p' || e.key === 'P') prev();
  };
  document.addEventListener('keydown', onKey);
  return () => document.removeEventListener('keydown', onKey);
}
