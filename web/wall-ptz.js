// 云台: steering a dome from its wall tile (POST /cameras/{id}/ptz). With the tile's PTZ button on, a pad
// covers the picture: dragging pans and tilts toward the pointer (faster the farther it goes from where the
// drag began), the wheel zooms, buttons call presets 1-4 (with 设 held down: set them). Protocol and bounds:
// docs/edge.md.
//
// Invariants: a drag re-sends its move every REPEAT_MS with a duration of HOLD_MS, so the server stops the
// dome by itself if this page goes away mid-drag; releasing the pointer sends stop. A refused command
// (role, rate) shows its message on the pad and is not retried.
import { api, h, t } from './core.js';

const REPEAT_MS = 400;
const HOLD_MS = 1000;

/** The pad for camera `id`. Returns the element; it stops any move when removed (call `.stop()`). */
export function ptzPad(id) {
  const note = h('span', { class: 'ptz-note', role: 'status' });
  const send = (body) => api('POST', `/cameras/${id}/ptz`, body)
    .then(() => { note.textContent = ''; })
    .catch((e) => { note.textContent = e.message; });
  let drag = null;
  const clamp = (v) => Math.max(-1, Math.min(1, Math.round(v * 100) / 100));
  const move = () => {
    if (!drag || (drag.pan === 0 && drag.tilt === 0)) return;
    send({ action: 'move', pan: drag.pan, tilt: drag.tilt, duration_ms: HOLD_MS });
  };
  const end = () => {
    if (!drag) return;
    clearInterval(drag.timer);
    drag = null;
    send({ action: 'stop' });
  };
  let setting = false;
  const setBtn = h('button', { type: 'button', class: 'secondary ptz-set', text: t('ptz_set'), title: t('ptz_set_hint'),
    'aria-pressed': 'false', onclick: (e) => {
      e.stopPropagation();
      setting = !setting;
      setBtn.setAttribute('aria-pressed', String(setting));
    } });
  const presets = [1, 2, 3, 4].map((n) => h('button', { type: 'button', class: 'secondary ptz-preset', text: String(n),
    title: t('ptz_preset', { n }), onclick: (e) => {
      e.stopPropagation();
      send({ action: 'preset', preset: n, preset_op: setting ? 'set' : 'goto' });
      if (setting) { setting = false; setBtn.setAttribute('aria-pressed', 'false'); }
    } }));
  const pad = h('div', { class: 'ptz-pad', draggable: 'false', title: t('ptz_hint'), 'aria-label': t('ptz_hint') },
    h('div', { class: 'ptz-presets' }, presets, setBtn), note);
  pad.addEventListener('dragstart', (e) => { e.preventDefault(); e.stopPropagation(); });
  pad.addEventListener('pointerdown', (e) => {
    if (e.target !== pad) return;
    e.preventDefault();
    e.stopPropagation();
    pad.setPointerCapture(e.pointerId);
    drag = { x: e.clientX, y: e.clientY, pan: 0, tilt: 0, timer: setInterval(move, REPEAT_MS) };
  });
  pad.addEventListener('pointermove', (e) => {
    if (!drag) return;
    const r = pad.getBoundingClientRect();
    const pan = clamp((e.clientX - drag.x) / (r.width / 2));
    const tilt = clamp((drag.y - e.clientY) / (r.height / 2));
    const first = drag.pan === 0 && drag.tilt === 0;
    Object.assign(drag, { pan, tilt });
    if (first) move();
  });
  pad.addEventListener('pointerup', end);
  pad.addEventListener('pointercancel', end);
  pad.addEventListener('wheel', (e) => {
    e.preventDefault();
    e.stopPropagation();
    send({ action: 'move', zoom: e.deltaY < 0 ? 0.5 : -0.5, duration_ms: 300 });
  }, { passive: false });
  pad.stop = end;
  return pad;
}
