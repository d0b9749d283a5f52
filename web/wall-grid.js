// The live wall's grid: layouts (a grid of cols x rows with cells that may span) and their tiles.
//
// A layout is the document of PUT /me/wall: { name, cols, rows, cells: [{ x, y, w, h, camera_id }] }.
// Invariants: cells lie inside the grid and never overlap; a tile's <vigil-live> is `stream="auto"`: the sub
// stream (the server scales one when a camera has none) in a small tile, the main stream in a large one and exists only while the tile shows a camera the user may
// see (a camera missing from GET /cameras is out of scope or deleted: it is never asked for). Cells keep
// 16:9 and the grid is sized to fit its box (ResizeObserver), so the whole wall is always on screen.
// One tile is "selected" (roving tabindex): clicks in the tree fill it, arrows move it.
import { h, t } from './core.js';
import './live-player.js';
import { stateLabel } from './wall-tree.js';
import { ptzPad } from './wall-ptz.js';

/** A layout of `cols` x `rows` whose `bigs` cells span; the rest is filled with 1x1 cells, row by row. */
export function makeLayout(name, cols, rows, bigs = []) {
  const cells = bigs.map((b) => ({ ...b, camera_id: null }));
  const taken = (x, y) => cells.some((c) => x >= c.x && x < c.x + c.w && y >= c.y && y < c.y + c.h);
  for (let y = 0; y < rows; y += 1) {
    for (let x = 0; x < cols; x += 1) if (!taken(x, y)) cells.push({ x, y, w: 1, h: 1, camera_id: null });
  }
  return { name, cols, rows, cells };
}

/** Square layouts (buttons) and templates with a big tile (menu). Names are stable keys, not text. */
export const SQUARES = [1, 2, 3, 4, 5, 6].map((n) => makeLayout(String(n * n), n, n));
export const TEMPLATES = [
  makeLayout('1+5', 3, 3, [{ x: 0, y: 0, w: 2, h: 2 }]),
  makeLayout('1+7', 4, 4, [{ x: 0, y: 0, w: 3, h: 3 }]),
  makeLayout('1+12', 4, 4, [{ x: 1, y: 1, w: 2, h: 2 }]),
  makeLayout('2+8', 4, 3, [{ x: 0, y: 0, w: 2, h: 2 }, { x: 2, y: 0, w: 2, h: 2 }]),
];
export const isPreset = (name) => [...SQUARES, ...TEMPLATES].some((l) => l.name === name);
export const copyLayout = (l) => ({ name: l.name, cols: l.cols, rows: l.rows, cells: l.cells.map((c) => ({ ...c })) });

/** The layout `shape` holding `cameras` in cell order (what switching layouts keeps). */
export function fill(shape, cameras) {
  const l = copyLayout(shape);
  l.cells.forEach((c, i) => { c.camera_id = cameras[i] ?? null; });
  return l;
}

/** Merges the cells inside the rectangle spanned by cells i and j into one; null when a cell would be cut. */
export function merge(layout, i, j) {
  const a = layout.cells[i];
  const b = layout.cells[j];
  const x0 = Math.min(a.x, b.x);
  const y0 = Math.min(a.y, b.y);
  const x1 = Math.max(a.x + a.w, b.x + b.w);
  const y1 = Math.max(a.y + a.h, b.y + b.h);
  const inside = (c) => c.x >= x0 && c.y >= y0 && c.x + c.w <= x1 && c.y + c.h <= y1;
  const cuts = (c) => !inside(c) && c.x < x1 && c.x + c.w > x0 && c.y < y1 && c.y + c.h > y0;
  if (layout.cells.some(cuts)) return null;
  const l = copyLayout(layout);
  const big = { x: x0, y: y0, w: x1 - x0, h: y1 - y0, camera_id: a.camera_id ?? b.camera_id ?? null };
  l.cells = l.cells.filter((c) => !inside(c));
  l.cells.push(big);
  l.cells.sort((p, q) => p.y - q.y || p.x - q.x);
  return l;
}

/** Splits cell i into 1x1 cells; the camera stays on the first. */
export function split(layout, i) {
  const l = copyLayout(layout);
  const c = l.cells[i];
  const parts = [];
  for (let y = c.y; y < c.y + c.h; y += 1) {
    for (let x = c.x; x < c.x + c.w; x += 1) parts.push({ x, y, w: 1, h: 1, camera_id: parts.length ? null : c.camera_id });
  }
  l.cells.splice(i, 1, ...parts);
  l.cells.sort((p, q) => p.y - q.y || p.x - q.x);
  return l;
}

export class WallGrid {
  /** opts: { onSelect(i), onDrop(i, cameraIds), onSwap(i, j), onOpen(i), onClear(i) } */
  constructor(opts) {
    this.opts = opts;
    this.layout = makeLayout('1', 1, 1);
    this.cams = new Map();
    this.alarmed = new Set();
    this.popped = new Set();
    this.selected = 0;
    this.anchor = null;
    this.tiles = [];
    // A listbox of tiles: one selected (or an area of them, for a merge), arrows move the selection.
    this.grid = h('div', { class: 'wall-grid', role: 'listbox', 'aria-multiselectable': 'true', 'aria-label': t('grid_label'),
      onkeydown: (e) => this.onKey(e) });
    this.el = h('div', { class: 'wall-box' }, this.grid);
    this.resize = new ResizeObserver(() => this.fit());
    this.resize.observe(this.el);
  }

  destroy() {
    this.resize.disconnect();
    // Removing the players closes their streams (live-player stops on disconnect).
    this.grid.replaceChildren();
    this.tiles = [];
  }

  /** Keeps the cells 16:9 and the grid inside its box. */
  fit() {
    const { cols, rows } = this.layout;
    const W = this.el.clientWidth;
    const H = this.el.clientHeight;
    if (!W || !H) return;
    const cw = Math.floor(Math.min(W / cols, ((H / rows) * 16) / 9));
    this.grid.style.width = `${cw * cols}px`;
    this.grid.style.height = `${Math.floor((cw * 9) / 16) * rows}px`;
  }

  /** Shows a layout; tiles whose camera did not change keep playing. */
  setLayout(layout) {
    const same = layout.cols === this.layout.cols && layout.rows === this.layout.rows
      && layout.cells.length === this.tiles.length
      && layout.cells.every((c, i) => {
        const o = this.layout.cells[i];
        return o && c.x === o.x && c.y === o.y && c.w === o.w && c.h === o.h;
      });
    this.layout = layout;
    if (!same) {
      this.grid.replaceChildren();
      this.tiles = [];
      this.popped.clear();
      this.grid.style.gridTemplateColumns = `repeat(${layout.cols}, 1fr)`;
      this.grid.style.gridTemplateRows = `repeat(${layout.rows}, 1fr)`;
      layout.cells.forEach((c, i) => {
        const tile = h('div', { class: 'tile', role: 'option', tabindex: '-1', dataset: { index: String(i) },
          style: { gridColumn: `${c.x + 1} / span ${c.w}`, gridRow: `${c.y + 1} / span ${c.h}` } });
        this.wire(tile, i);
        this.tiles.push(tile);
        this.grid.append(tile);
      });
      this.selected = Math.min(this.selected, layout.cells.length - 1);
      this.fit();
    }
    layout.cells.forEach((c, i) => this.renderTile(i));
    this.select(this.selected, false);
  }

  wire(tile, i) {
    tile.addEventListener('click', (e) => {
      if (e.shiftKey) { this.anchor ??= this.selected; this.select(i, false, true); return; }
      this.anchor = null;
      this.popped.delete(i);
      this.select(i, true);
      this.renderTile(i);
    });
    tile.addEventListener('dblclick', () => this.opts.onOpen(i));
    tile.draggable = true;
    tile.addEventListener('dragstart', (e) => {
      e.dataTransfer.setData('application/x-vigil-tile', String(i));
      e.dataTransfer.effectAllowed = 'copyMove';
    });
    tile.addEventListener('dragover', (e) => {
      const types = [...e.dataTransfer.types];
      if (types.includes('application/x-vigil-cameras') || types.includes('application/x-vigil-tile')) {
        e.preventDefault();
        tile.classList.add('drop');
      }
    });
    tile.addEventListener('dragleave', () => tile.classList.remove('drop'));
    tile.addEventListener('drop', (e) => {
      e.preventDefault();
      tile.classList.remove('drop');
      const from = e.dataTransfer.getData('application/x-vigil-tile');
      if (from !== '') { if (Number(from) !== i) this.opts.onSwap(Number(from), i); return; }
      let ids = [];
      try { ids = JSON.parse(e.dataTransfer.getData('application/x-vigil-cameras') || '[]'); } catch (_) { /* foreign drop */ }
      if (Array.isArray(ids) && ids.length) this.opts.onDrop(i, ids.filter(Number.isInteger));
    });
  }

  /** Redraws tile i: its player when the camera changed, its name and badges always. */
  renderTile(i) {
    const tile = this.tiles[i];
    const c = this.layout.cells[i];
    if (!tile || !c) return;
    const id = c.camera_id;
    const cam = id == null ? null : this.cams.get(id);
    let player = tile.querySelector('vigil-live');
    if (player && (!cam || player.getAttribute('camera') !== String(id))) { player.remove(); player = null; }
    const pad = tile.querySelector('.ptz-pad');
    if (pad && pad.dataset.camera !== String(id)) { pad.stop(); pad.remove(); }
    if (cam && !player) {
      // data-wait: what the tile says until the first picture (wall.css), rather than a silent black tile.
      player = h('vigil-live', { camera: String(id), stream: 'auto', dataset: { wait: t('tile_connecting') } });
      tile.prepend(player);
    }
    tile.dataset.camera = id == null ? '' : String(id);
    tile.querySelector('.tile-bar')?.remove();
    tile.querySelector('.tile-note')?.remove();
    const st = cam?.state;
    const offline = cam && st && st !== 'online';
    const badges = h('span', { class: 'badges' },
      offline ? h('span', { class: `badge badge-offline state-${st}`, text: stateLabel(st) }) : null,
      cam?.recording ? h('span', { class: 'badge badge-rec', text: t('badge_rec') }) : null,
      cam?.link ? h('span', { class: 'badge badge-link', title: t('badge_link_hint'), text: cam.link }) : null,
      id != null && this.alarmed.has(id) ? h('span', { class: 'badge badge-alarm', text: t('badge_alarm') }) : null);
    const name = cam ? cam.name : '';
    tile.append(h('div', { class: 'tile-bar' }, h('span', { class: 'tile-no', text: String(i + 1) }),
      h('span', { class: 'tile-name', text: name }), badges,
      cam ? h('button', { type: 'button', class: 'tile-sound', tabindex: '-1', title: t('tile_sound'),
        'aria-label': t('tile_sound'), 'aria-pressed': String(!!player?.hasAttribute('sound')), text: '🔈',
        onclick: (e) => { e.stopPropagation(); this.toggleSound(i); } }) : null,
      cam?.ptz ? h('button', { type: 'button', class: 'tile-ptz', tabindex: '-1', title: t('ptz_toggle'),
        'aria-label': t('ptz_toggle'), 'aria-pressed': String(!!tile.querySelector('.ptz-pad')), text: t('ptz_short'),
        onclick: (e) => { e.stopPropagation(); this.togglePtz(i); } }) : null,
      id != null ? h('button', { type: 'button', class: 'tile-clear', tabindex: '-1', title: t('tile_clear'),
        'aria-label': t('tile_clear'), text: '×', onclick: (e) => { e.stopPropagation(); this.opts.onClear(i); } }) : null));
    if (!cam) tile.append(h('div', { class: 'tile-note', text: id == null ? t('tile_empty') : t('tile_hidden') }));
    else if (offline) tile.append(h('div', { class: 'tile-note tile-down', text: stateLabel(st) }));
    tile.classList.toggle('offline', !!offline);
    tile.classList.toggle('alarm', id != null && this.alarmed.has(id));
    tile.classList.toggle('popped', this.popped.has(i));
    tile.setAttribute('aria-label', `${t('tile_label', { n: i + 1 })} ${name}${offline ? ` ${stateLabel(st)}` : ''}`);
  }

  renderAll() { this.tiles.forEach((_, i) => this.renderTile(i)); }

  /** Turns tile i's sound on (every other tile falls silent: one hall is heard at a time) or off. */
  toggleSound(i) {
    const player = this.tiles[i]?.querySelector('vigil-live');
    if (!player) return;
    const on = !player.hasAttribute('sound');
    this.tiles.forEach((tile) => {
      const p = tile.querySelector('vigil-live');
      if (p) p.toggleAttribute('sound', on && p === player);
      tile.querySelector('.tile-sound')?.setAttribute('aria-pressed', String(on && p === player));
    });
  }

  /** Shows or hides tile i's PTZ pad (云台). */
  togglePtz(i) {
    const tile = this.tiles[i];
    const id = this.layout.cells[i]?.camera_id;
    const pad = tile?.querySelector('.ptz-pad');
    if (pad) { pad.stop(); pad.remove(); } else if (id != null) {
      const p = ptzPad(id);
      p.dataset.camera = String(id);
      tile.append(p);
    }
    this.renderTile(i);
  }

  /** Selects tile i; `range` keeps the anchor for a merge (shift). */
  select(i, focus = true, range = false) {
    if (i < 0 || i >= this.tiles.length) return;
    if (!range) this.anchor = null;
    this.selected = i;
    this.tiles.forEach((tile, k) => {
      const inRange = this.anchor !== null && this.inRange(k);
      tile.tabIndex = k === i ? 0 : -1;
      tile.setAttribute('aria-selected', String(k === i || inRange));
    });
    if (focus) this.tiles[i].focus();
    this.opts.onSelect(i);
  }

  inRange(k) {
    const a = this.layout.cells[this.anchor];
    const b = this.layout.cells[this.selected];
    const c = this.layout.cells[k];
    if (!a || !b || !c) return false;
    return c.x >= Math.min(a.x, b.x) && c.x < Math.max(a.x + a.w, b.x + b.w)
      && c.y >= Math.min(a.y, b.y) && c.y < Math.max(a.y + a.h, b.y + b.h);
  }

  /** The tile in direction (dx, dy) of tile i: the nearest cell whose span covers the next row/column. */
  neighbour(i, dx, dy) {
    const c = this.layout.cells[i];
    const x = dx > 0 ? c.x + c.w : dx < 0 ? c.x - 1 : c.x;
    const y = dy > 0 ? c.y + c.h : dy < 0 ? c.y - 1 : c.y;
    const k = this.layout.cells.findIndex((o) => x >= o.x && x < o.x + o.w && y >= o.y && y < o.y + o.h);
    return k < 0 ? i : k;
  }

  onKey(e) {
    const tile = e.target.closest('.tile');
    if (!tile || e.target !== tile) return;
    const i = Number(tile.dataset.index);
    const dirs = { ArrowLeft: [-1, 0], ArrowRight: [1, 0], ArrowUp: [0, -1], ArrowDown: [0, 1] };
    if (dirs[e.key]) {
      if (e.shiftKey) this.anchor ??= i;
      this.select(this.neighbour(i, ...dirs[e.key]), true, e.shiftKey);
    } else if (e.key === 'Enter' || e.key === 'f' || e.key === 'F') {
      this.opts.onOpen(i);
    } else if (e.key === 'Delete' || e.key === 'Backspace') {
      this.opts.onClear(i);
    } else if (e.key === 'Home') {
      this.select(0);
    } else if (e.key === 'End') {
      this.select(this.tiles.length - 1);
    } else {
      return;
    }
    e.preventDefault();
  }
}
