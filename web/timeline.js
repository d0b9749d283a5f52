// <vigil-timeline>: a horizontal bar over a time range that shows what was recorded (spans), what was not
// (gaps: the bar's background shows through), event markers and the playhead. Used by the case page and by
// playback; it knows nothing of cameras or the API.
//
// Properties (all times in milliseconds since the epoch):
//   range   {start, end}         the whole extent (a day, a case); the view never leaves it
//   view    {start, end}         the visible part (zoom); defaults to the range
//   spans   [{start, end}]       recorded stretches
//   markers [{at, label, kind}]  events; `kind` becomes a class (marker-<kind>) for colour
//   thumbnails [{at, url}]       pictures of the footage (keyframes), drawn as a strip above the bar; while
//                                the pointer is over the bar or drags it, the picture at the time under it
//                                is shown above the pointer (the preview)
//   value   ms                   the playhead
//   step    ms                   one arrow-key step (default: 1/100 of the view; Shift: ten steps)
// Events: 'seek' (detail {time}) when the user picks a time: a click, the end of a drag, a key;
//         'scrub' (detail {time}) while dragging, for a preview of the playhead only;
//         'viewchange' (detail {start, end}) when the visible part changes, so that its owner can fetch the
//         pictures of the new view.
// Invariants: the playhead is clamped to the range; the view keeps the playhead inside it when it zooms;
// the element is one focusable slider (role=slider with aria-valuetext) so a keyboard user can scrub.
import { fmtClock, fmtTime, h, t } from './core.js';

// Tick spacing candidates, in ms: the first that leaves at least ~80 px between labels wins.
const TICKS = [1e3, 5e3, 10e3, 30e3, 60e3, 5 * 60e3, 10 * 60e3, 30 * 60e3, 3600e3, 3 * 3600e3, 6 * 3600e3];

class VigilTimeline extends HTMLElement {
  constructor() {
    super();
    this._range = { start: 0, end: 1 };
    this._view = null;
    this._spans = [];
    this._markers = [];
    this._thumbs = [];
    this._value = 0;
    this._step = null;
    this.dragging = false;
  }

  connectedCallback() {
    if (this.bar) return;
    this.tabIndex = 0;
    this.setAttribute('role', 'slider');
    this.setAttribute('aria-label', t('tl_label'));
    this.title = t('tl_help');
    this.ticks = h('div', { class: 'tl-ticks', 'aria-hidden': 'true' });
    this.layer = h('div', { class: 'tl-spans' });
    this.marks = h('div', { class: 'tl-markers' });
    this.head = h('div', { class: 'tl-head' }, h('span', { class: 'tl-head-label' }));
    this.bar = h('div', { class: 'tl-bar', title: t('tl_gap') }, this.layer, this.marks, this.head);
    this.strip = h('div', { class: 'tl-thumbs', 'aria-hidden': 'true' });
    this.preview = h('div', { class: 'tl-preview', hidden: true, 'aria-hidden': 'true' },
      h('img', { alt: '' }), h('span'));
    this.append(this.strip, this.bar, this.ticks, this.preview);
    this.bar.addEventListener('pointerleave', () => { if (!this.dragging) this.preview.hidden = true; });
    this.bar.addEventListener('pointerdown', (e) => this.onDown(e));
    this.bar.addEventListener('pointermove', (e) => this.onMove(e));
    this.bar.addEventListener('pointerup', (e) => this.onUp(e));
    this.bar.addEventListener('pointercancel', () => { this.dragging = false; });
    this.addEventListener('keydown', (e) => this.onKey(e));
    this.resize = new ResizeObserver(() => this.render());
    this.resize.observe(this);
    this.render();
  }

  disconnectedCallback() { this.resize?.disconnect(); }

  get range() { return this._range; }
  set range(r) { this._range = { start: r.start, end: Math.max(r.end, r.start + 1) }; this._view = null; this.render(); }
  get view() { return this._view || this._range; }
  set view(v) { this._view = v ? this.fit(v) : null; this.render(); }
  get spans() { return this._spans; }
  set spans(s) { this._spans = s || []; this.render(); }
  get markers() { return this._markers; }
  set markers(m) { this._markers = m || []; this.render(); }
  get thumbnails() { return this._thumbs; }
  set thumbnails(list) { this._thumbs = (list || []).slice().sort((a, b) => a.at - b.at); this.renderThumbs(); }
  get value() { return this._value; }
  set value(v) {
    if (this.dragging) return;
    this._value = this.clamp(v);
    this.follow();
    this.renderHead();
  }
  get step() { return this._step || Math.max(1000, (this.view.end - this.view.start) / 100); }
  set step(s) { this._step = s; }

  clamp(v) { return Math.min(this._range.end, Math.max(this._range.start, v)); }

  /** A view of the same length moved inside the range. */
  fit(v) {
    const r = this._range;
    const len = Math.min(r.end - r.start, Math.max(1000, v.end - v.start));
    let start = Math.max(r.start, v.start);
    if (start + len > r.end) start = r.end - len;
    return { start, end: start + len };
  }

  /** Zooms to a view of `len` ms around the playhead. */
  zoom(len) {
    this._view = this.fit({ start: this._value - len / 2, end: this._value + len / 2 });
    this.render();
  }

  /** Keeps the playhead visible: when it leaves the view, the view pages to it. */
  follow() {
    const v = this._view;
    if (!v || (this._value >= v.start && this._value <= v.end)) return;
    const len = v.end - v.start;
    this._view = this.fit({ start: this._value - len * 0.1, end: this._value + len * 0.9 });
    this.render();
  }

  x(ms) {
    const v = this.view;
    return ((ms - v.start) / (v.end - v.start)) * 100;
  }

  timeAt(clientX) {
    const box = this.bar.getBoundingClientRect();
    const f = Math.min(1, Math.max(0, (clientX - box.left) / Math.max(1, box.width)));
    const v = this.view;
    return this.clamp(v.start + f * (v.end - v.start));
  }

  render() {
    if (!this.bar) return;
    const v = this.view;
    const seg = (a, b, cls, title) => {
      const l = Math.max(0, this.x(a));
      const r = Math.min(100, this.x(b));
      if (r <= 0 || l >= 100 || r <= l) return null;
      return h('div', { class: cls, title, style: { left: `${l}%`, width: `max(${r - l}%, 2px)` } });
    };
    this.layer.replaceChildren(...this._spans
      .map((s) => seg(s.start, s.end, 'tl-span', `${t('tl_recorded')} ${fmtTime(s.start)} – ${fmtClock(s.end)}`))
      .filter(Boolean));
    this.marks.replaceChildren(...this._markers
      .filter((m) => m.at >= v.start && m.at <= v.end)
      .map((m) => h('div', { class: `tl-marker marker-${m.kind || 'event'}`, title: `${fmtTime(m.at)} ${m.label || ''}`,
        style: { left: `${this.x(m.at)}%` } })));
    const width = this.bar.clientWidth || 800;
    const len = v.end - v.start;
    const every = TICKS.find((s) => (s / len) * width >= 80) || TICKS[TICKS.length - 1];
    const ticks = [];
    for (let at = Math.ceil(v.start / every) * every; at <= v.end; at += every) {
      const d = new Date(at);
      const x = this.x(at);
      if (x < 2 || x > 98) continue; // a label at the very edge would be cut off
      // Ticks fall on local clock boundaries when the step is under a day (time zones with whole hours).
      ticks.push(h('span', { style: { left: `${x}%` },
        text: every >= 60e3 ? fmtClock(d).slice(0, 5) : fmtClock(d) }));
    }
    this.ticks.replaceChildren(...ticks);
    this.setAttribute('aria-valuemin', String(Math.round(this._range.start)));
    this.setAttribute('aria-valuemax', String(Math.round(this._range.end)));
    this.dataset.viewStart = String(Math.round(v.start));
    this.dataset.viewEnd = String(Math.round(v.end));
    this.renderHead();
    this.renderThumbs();
    if (this._shown?.start !== v.start || this._shown?.end !== v.end) {
      this._shown = { start: v.start, end: v.end };
      this.dispatchEvent(new CustomEvent('viewchange', { detail: { ...this._shown } }));
    }
  }

  /** The strip: the pictures in view, at most one per 72 px (the first of each stretch). */
  renderThumbs() {
    if (!this.strip) return;
    const width = this.bar.clientWidth || 800;
    let last = -Infinity;
    const imgs = [];
    for (const p of this._thumbs) {
      const x = this.x(p.at);
      if (x < 0 || x > 100) continue;
      const px = (x / 100) * width;
      if (px - last < 72) continue;
      last = px;
      imgs.push(h('img', { src: p.url, alt: '', loading: 'lazy', title: fmtTime(p.at), style: { left: `${x}%` } }));
    }
    this.strip.hidden = !imgs.length;
    this.strip.replaceChildren(...imgs);
    // The pictures between those drawn are fetched too, so that the preview never waits for one.
    const drawn = new Set(imgs.map((i) => i.getAttribute('src')));
    this._preload = this._thumbs.filter((p) => !drawn.has(p.url)).slice(0, 200).map((p) => {
      const i = new Image();
      i.src = p.url;
      return i;
    });
  }

  /** The picture at `time`: the last one at or before it (the first before any). */
  thumbAt(time) {
    const list = this._thumbs;
    let lo = 0;
    let hi = list.length;
    while (lo < hi) { const mid = (lo + hi) >> 1; if (list[mid].at <= time) lo = mid + 1; else hi = mid; }
    return list[Math.max(0, lo - 1)];
  }

  /** Shows the picture at `time` above the pointer (nothing without pictures). */
  showPreview(time, clientX) {
    const p = this.thumbAt(time);
    if (!p) { this.preview.hidden = true; return; }
    const img = this.preview.firstChild;
    if (img.getAttribute('src') !== p.url) img.src = p.url;
    this.preview.lastChild.textContent = fmtClock(time);
    const box = this.bar.getBoundingClientRect();
    this.preview.style.left = `${Math.min(box.width - 80, Math.max(80, clientX - box.left))}px`;
    this.preview.dataset.at = String(p.at);
    this.preview.hidden = false;
  }

  renderHead() {
    if (!this.head) return;
    const x = this.x(this._value);
    this.head.hidden = x < 0 || x > 100;
    this.head.style.left = `${x}%`;
    this.head.firstChild.textContent = fmtClock(this._value);
    this.setAttribute('aria-valuenow', String(Math.round(this._value)));
    this.setAttribute('aria-valuetext', fmtTime(this._value));
  }

  emit(type, time) { this.dispatchEvent(new CustomEvent(type, { detail: { time }, bubbles: true })); }

  onDown(e) {
    if (e.button !== 0) return;
    this.focus();
    this.dragging = true;
    this.bar.setPointerCapture(e.pointerId);
    this._value = this.timeAt(e.clientX);
    this.renderHead();
    this.showPreview(this._value, e.clientX);
    this.emit('scrub', this._value);
  }

  onMove(e) {
    if (!this.dragging) {
      if (e.pointerType === 'mouse') this.showPreview(this.timeAt(e.clientX), e.clientX);
      return;
    }
    this._value = this.timeAt(e.clientX);
    this.renderHead();
    this.showPreview(this._value, e.clientX);
    this.emit('scrub', this._value);
  }

  onUp(e) {
    if (!this.dragging) return;
    this.dragging = false;
    if (e.pointerType !== 'mouse') this.preview.hidden = true;
    this._value = this.timeAt(e.clientX);
    this.renderHead();
    this.emit('seek', this._value);
  }

  onKey(e) {
    if (e.ctrlKey || e.metaKey || e.altKey) return;
    const step = this.step * (e.shiftKey ? 10 : 1);
    let to = null;
    if (e.key === 'ArrowLeft') to = this._value - step;
    else if (e.key === 'ArrowRight') to = this._value + step;
    else if (e.key === 'Home') to = this._range.start;
    else if (e.key === 'End') to = this._range.end;
    else if (e.key === '+' || e.key === '=') { this.zoom((this.view.end - this.view.start) / 2); e.preventDefault(); return; }
    else if (e.key === '-') { this.zoom((this.view.end - this.view.start) * 2); e.preventDefault(); return; }
    if (to === null) return;
    e.preventDefault();
    e.stopPropagation();
    this.value = to;
    this.emit('seek', this._value);
  }
}

customElements.define('vigil-timeline', VigilTimeline);

const ZOOMS = [['tl_z_6h', 6 * 3600e3], ['tl_z_1h', 3600e3], ['tl_z_15m', 15 * 60e3], ['tl_z_5m', 5 * 60e3],
  ['tl_z_1m', 60e3]];

/** A zoom select for `timeline`: the whole range, or a view of 6 h … 1 min around the playhead. */
export function zoomSelect(timeline) {
  return h('label', { class: 'inline' }, t('tl_zoom'), h('select', {
    name: 'zoom',
    onchange: (e) => { const len = Number(e.target.value); if (len) timeline.zoom(len); else timeline.view = null; },
  }, h('option', { value: '0', text: t('tl_z_all') }), ZOOMS.map(([k, ms]) => h('option', { value: String(ms), text: t(k) }))));
}
