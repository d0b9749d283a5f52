// Feeds a <vigil-timeline> the pictures of a camera's footage over its visible part
// (GET /cameras/{id}/thumbnails), again whenever the view or the camera changes; about one picture per
// 72 px of the bar, never more often than one a second. A camera that records its sub stream is pictured
// from it: a small picture decodes in a fraction of the time.
import { api } from './core.js';
import { iso } from './replay.js';

/** Starts feeding `timeline`; returns {camera(id, stream), stop()}. */
export function thumbnailFeed(timeline) {
  let camera = null;
  let stream = 'main';
  let asked = 0;
  let timer = null;
  const load = async () => {
    if (camera === null) { timeline.thumbnails = []; return; }
    const v = timeline.view;
    const n = Math.max(1, Math.floor((timeline.clientWidth || 800) / 72));
    const every = Math.max(1, Math.round((v.end - v.start) / 1000 / n));
    const mine = ++asked;
    const q = `start=${encodeURIComponent(iso(v.start))}&end=${encodeURIComponent(iso(v.end))}&every=${every}`;
    const strip = (sq) => api('GET', `/cameras/${camera}/thumbnails?${sq}`)
      .then((r) => r.thumbnails.map((x) => ({ at: Date.parse(x.at), url: x.url }))).catch(() => null);
    // The sub stream may have been recorded for part of the view only: its pictures take the slots they
    // fill, the main stream's the others.
    const [main, sub] = await Promise.all([strip(q), stream === 'sub' ? strip(`${q}&stream=sub`) : []]);
    // A later view or camera has been asked for meanwhile: its answer wins.
    if (mine !== asked || !main) return;
    const slot = (p) => Math.floor((p.at - v.start) / (every * 1000));
    const bySlot = new Map([...main, ...(sub || [])].map((p) => [slot(p), p]));
    timeline.thumbnails = [...bySlot.values()].sort((a, b) => a.at - b.at);
  };
  const soon = () => { clearTimeout(timer); timer = setTimeout(load, 150); };
  timeline.addEventListener('viewchange', soon);
  return {
    camera(id, s = 'main') { if (id !== camera || s !== stream) { camera = id; stream = s; soon(); } },
    refresh: soon,
    stop() { clearTimeout(timer); timeline.removeEventListener('viewchange', soon); },
  };
}
