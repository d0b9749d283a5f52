// Feeds a <vigil-timeline> the pictures of a camera's footage over its visible part
// (GET /cameras/{id}/thumbnails), again whenever the view or the camera changes; about one picture per
// 72 px of the bar, never more often than one a second.
import { api } from './core.js';
import { iso } from './replay.js';

/** Starts feeding `timeline`; returns {camera(id), stop()}. */
export function thumbnailFeed(timeline) {
  let camera = null;
  let asked = 0;
  let timer = null;
  const load = async () => {
    if (camera === null) { timeline.thumbnails = []; return; }
    const v = timeline.view;
    const n = Math.max(1, Math.floor((timeline.clientWidth || 800) / 72));
    const every = Math.max(1, Math.round((v.end - v.start) / 1000 / n));
    const mine = ++asked;
    const q = `start=${encodeURIComponent(iso(v.start))}&end=${encodeURIComponent(iso(v.end))}&every=${every}`;
    const r = await api('GET', `/cameras/${camera}/thumbnails?${q}`).catch(() => null);
    // A later view or camera has been asked for meanwhile: its answer wins.
    if (mine !== asked || !r) return;
    timeline.thumbnails = r.thumbnails.map((x) => ({ at: Date.parse(x.at), url: x.url }));
  };
  const soon = () => { clearTimeout(timer); timer = setTimeout(load, 150); };
  timeline.addEventListener('viewchange', soon);
  return {
    camera(id) { if (id !== camera) { camera = id; soon(); } },
    refresh: soon,
    stop() { clearTimeout(timer); timeline.removeEventListener('viewchange', soon); },
  };
}
