// The live wall (实时监控) for supervisors and admins: a grid of live tiles (sub streams), a camera tree to
// fill it, saved layouts and tours (GET/PUT /me/wall, per user on the server), and an alarms panel whose
// new alarms pop their camera onto the wall.
//
// Invariants:
// - `this.layout` is the user's arrangement (what Save writes); what the grid shows is derived from it:
//   during a tour the tour's page replaces the cameras, and cameras popped by alarms during a tour are
//   pinned on their tile. Any hand edit (tree pick, drop, swap, clear, merge, split) stops a tour first;
//   switching layouts does not (the tour re-pages onto the new tile count).
// - Every stream stops when it is not shown: tiles out of view stop by themselves (live-player's
//   IntersectionObserver), the grid is hidden while a tile is open full screen, and leaving the page
//   removes every player and timer (the cleanup returned by mount).
// - Camera state comes from GET /cameras, then camera_status notifications, with a poll every 10 s in
//   case a message was missed. Only cameras of GET /cameras are ever shown: the server scopes them.
import { api, bus, h, showError, stylesheet, t, toast } from './core.js';
import { AlarmPanel } from './wall-alarms.js';
import { askLayoutName, editTour } from './wall-dialogs.js';
import { copyLayout, fill, merge, SQUARES, split, TEMPLATES, WallGrid } from './wall-grid.js';
import { renderToolbar, stateText } from './wall-toolbar.js';
import { CameraTree, loadTreeData, stateLabel, treeOrder } from './wall-tree.js';

const POLL_MS = 10000;
const DEFAULT_LAYOUT = '4';
/** Tiles a first wall fills at most: 16 on a screen, 4 on a phone (wall.css's phone width). */
const firstWallMax = () => (matchMedia('(max-width: 700px)').matches ? 4 : 16);

/** The wall of a user who never arranged one: the cameras of their regions in the tree's order, those online
 *  first, on the smallest square layout that holds them (up to firstWallMax()), so that it plays at once. */
function firstWall(data) {
  const state = new Map(data.cameras.map((c) => [c.id, c.state]));
  const order = treeOrder(data);
  const ids = [...order.filter((id) => state.get(id) === 'online'), ...order.filter((id) => state.get(id) !== 'online')]
    .slice(0, firstWallMax());
  const side = Math.max(1, Math.ceil(Math.sqrt(ids.length)));
  return fill(SQUARES.find((l) => l.name === String(side * side)) || SQUARES[1], ids);
}

export default {
  title: 'nav_wall',
  roles: ['admin', 'supervisor'],
  mount(root) {
    stylesheet('/wall.css');
    const wall = new Wall(root);
    // The cleanup is handed back at once, so that leaving while the wall still loads stops it too.
    wall.start().catch(showError);
    return () => wall.destroy();
  },
};

class Wall {
  constructor(root) {
    this.root = root;
    this.doc = { layouts: [], tours: [], current: { layout: null, tour: null } };
    this.cams = new Map();
    this.tour = null;
    this.pins = new Map(); // tile index -> camera id popped during a tour
    this.poppedAt = new Map(); // tile index -> when an alarm popped a camera there
    this.grid = new WallGrid({
      onSelect: () => this.updateButtons(),
      onDrop: (i, ids) => this.place(i, ids),
      onSwap: (a, b) => this.swap(a, b),
      onOpen: (i) => this.openFull(i),
      onClear: (i) => this.clearTile(i),
    });
    this.tree = new CameraTree({ onPick: (ids) => this.place(this.grid.selected, ids) });
    this.alarms = new AlarmPanel({
      cameraName: (id) => this.cams.get(id)?.name ?? null,
      onRaise: (e) => e.camera_ids.slice(0, 4).forEach((id) => this.pop(id)),
      onShow: (e) => e.camera_ids.slice(0, 4).forEach((id) => this.pop(id)),
    });
    this.onNotification = (ev) => this.notified(ev.detail);
    this.onLang = () => {
      this.tree.filter.placeholder = t('tree_filter');
      this.tree.render();
      this.tree.updateStates(this.cams);
      this.renderChrome();
    };
    this.onKey = (e) => { if (e.key === 'Escape' && this.full) { e.preventDefault(); this.closeFull(); } };
    this.onFullscreen = () => { if (this.full && !document.fullscreenElement) this.closeFull(); };
  }

  async start() {
    this.toolbar = h('div', { class: 'wall-toolbar' });
    this.status = h('span', { class: 'wall-status', role: 'status' });
    this.root.append(h('aside', { class: 'wall-side' }, this.tree.el, this.alarms.el),
      h('div', { class: 'wall-main' }, this.toolbar, this.grid.el));
    bus.addEventListener('notification', this.onNotification);
    bus.addEventListener('lang', this.onLang);
    document.addEventListener('keydown', this.onKey);
    document.addEventListener('fullscreenchange', this.onFullscreen);
    this.alive = true;
    const [data, doc, alarms] = await Promise.all([
      loadTreeData(),
      api('GET', '/me/wall').catch((e) => { toast(t('wall_load_failed', { msg: e.message }), 'error'); return null; }),
      api('GET', '/alarms?state=active').catch(showError),
    ]);
    if (!this.alive) return;
    this.setTreeData(data);
    if (doc) this.doc = doc;
    this.alarms.load((alarms || []).filter((a) => (a.camera_ids || []).length || a.case_no));
    const name = this.doc.current?.layout;
    const shape = this.doc.layouts.find((l) => l.name === name) || [...SQUARES, ...TEMPLATES].find((l) => l.name === name)
      || SQUARES.find((l) => l.name === DEFAULT_LAYOUT);
    this.layout = doc && !name && !this.doc.layouts.length && !this.doc.current?.tour
      ? firstWall(data) : copyLayout(shape);
    this.renderChrome();
    this.show();
    const tour = this.doc.tours.find((x) => x.name === this.doc.current?.tour);
    if (tour) this.startTour(tour, false);
    this.poll = setInterval(() => this.refresh(), POLL_MS);
  }

  destroy() {
    this.alive = false;
    clearInterval(this.poll);
    this.stopTimer();
    bus.removeEventListener('notification', this.onNotification);
    bus.removeEventListener('lang', this.onLang);
    document.removeEventListener('keydown', this.onKey);
    document.removeEventListener('fullscreenchange', this.onFullscreen);
    if (this.full) this.closeFull();
    document.querySelectorAll('dialog.wall-dialog').forEach((d) => d.close());
    this.grid.destroy();
    this.root.replaceChildren();
  }

  setTreeData(data) {
    this.treeData = data;
    this.cams = new Map(data.cameras.map((c) => [c.id, c]));
    this.grid.cams = this.cams;
    this.tree.setData(data);
    this.tree.updateStates(this.cams);
  }

  /** The slow fallback: camera states (and the tree when cameras came or went). */
  async refresh() {
    const cams = await api('GET', '/cameras').catch(() => null);
    if (!cams || !this.alive) return;
    const same = cams.length === this.cams.size && cams.every((c) => this.cams.has(c.id));
    if (!same) {
      const data = await loadTreeData().catch(() => null);
      if (data && this.alive) { this.setTreeData(data); this.grid.renderAll(); }
      return;
    }
    cams.forEach((c) => this.cams.set(c.id, c));
    this.tree.updateStates(this.cams);
    this.grid.renderAll();
  }

  notified(m) {
    if (!m || !this.layout) return;
    if (m.type === 'camera_status') {
      const c = this.cams.get(m.camera_id);
      if (!c) return;
      c.state = m.state;
      this.tree.updateStates(this.cams);
      this.grid.tiles.forEach((tile, i) => { if (tile.dataset.camera === String(c.id)) this.grid.renderTile(i); });
      return;
    }
    if (this.alarms.onMessage(m)) { this.grid.alarmed = this.alarms.cameraIds(); this.grid.renderAll(); }
  }

  // --- what the grid shows ------------------------------------------------------------------------
  /** The shown layout: the arrangement, or the tour's page around the pinned tiles. */
  view() {
    const v = copyLayout(this.layout);
    if (this.tour) {
      const free = v.cells.map((_, i) => i).filter((i) => !this.pins.has(i));
      const ids = this.tourIds();
      free.forEach((i, k) => { v.cells[i].camera_id = ids[this.tour.offset + k] ?? null; });
    }
    this.pins.forEach((id, i) => { if (v.cells[i]) v.cells[i].camera_id = id; });
    return v;
  }

  show() {
    this.grid.alarmed = this.alarms.cameraIds();
    this.grid.setLayout(this.view());
    this.renderState();
  }

  /** A hand edit of the arrangement: stops a tour, then applies `change` to a copy of the layout. */
  edit(change) {
    if (this.tour) this.stopTour();
    const l = copyLayout(this.layout);
    if (change(l) === false) return;
    this.layout = l;
    this.show();
  }

  /** Puts cameras on the tiles from i on (one camera: tile i, then selects the next tile). */
  place(i, ids) {
    this.edit((l) => { ids.slice(0, l.cells.length - i).forEach((id, k) => { l.cells[i + k].camera_id = id; }); });
    this.poppedAt.delete(i);
    this.grid.select(Math.min(i + ids.length, this.layout.cells.length - 1), false);
  }

  swap(a, b) {
    this.edit((l) => { [l.cells[a].camera_id, l.cells[b].camera_id] = [l.cells[b].camera_id, l.cells[a].camera_id]; });
  }

  clearTile(i) {
    this.pins.delete(i);
    this.poppedAt.delete(i);
    this.edit((l) => { l.cells[i].camera_id = null; });
  }

  /** Brings a camera of a new alarm onto the wall: its tile if shown, else an empty tile, else the tile an
   *  alarm took longest ago, else the last tile. The tile is highlighted until clicked. */
  pop(id) {
    if (!this.cams.has(id) || !this.layout) return;
    const v = this.view();
    let i = v.cells.findIndex((c) => c.camera_id === id);
    if (i < 0) {
      i = v.cells.findIndex((c, k) => c.camera_id == null && !this.pins.has(k));
      if (i < 0 && this.poppedAt.size) i = [...this.poppedAt].sort((a, b) => a[1] - b[1])[0][0];
      if (i < 0) i = v.cells.length - 1;
      if (this.tour) this.pins.set(i, id); else this.layout.cells[i].camera_id = id;
    }
    this.poppedAt.set(i, Date.now());
    this.grid.popped.add(i);
    this.show();
  }

  // --- layouts ------------------------------------------------------------------------------------
  /** Switches to a layout shape; the cameras follow in tile order unless the user saved that layout. */
  chooseLayout(shape) {
    const saved = this.doc.layouts.find((l) => l.name === shape.name);
    this.layout = saved ? copyLayout(saved) : fill(shape, this.layout.cells.map((c) => c.camera_id));
    this.pins.clear();
    this.poppedAt.clear();
    this.show();
    this.renderChrome();
  }

  mergeSelected() {
    const { anchor, selected } = this.grid;
    if (anchor === null || anchor === selected) return;
    const l = merge(this.layout, anchor, selected);
    if (!l) { toast(t('merge_bad'), 'error'); return; }
    this.stopTour();
    const a = this.layout.cells[anchor];
    const b = this.layout.cells[selected];
    this.layout = { ...l, name: '' };
    this.show();
    // The merged tile takes the selection.
    this.grid.select(l.cells.findIndex((c) => c.x === Math.min(a.x, b.x) && c.y === Math.min(a.y, b.y)));
    this.renderChrome();
  }

  splitSelected() {
    const c = this.layout.cells[this.grid.selected];
    if (!c || c.w * c.h < 2) return;
    this.stopTour();
    this.layout = { ...split(this.layout, this.grid.selected), name: '' };
    this.show();
    this.renderChrome();
  }

  async save(name = this.layout.name) {
    if (!name) { this.saveAs(); return; }
    const layouts = this.doc.layouts.filter((l) => l.name !== name);
    if (layouts.length >= 32) { toast(t('limit_layouts'), 'error'); return; }
    const layout = { ...copyLayout(this.layout), name };
    await this.put({ ...this.doc, layouts: [...layouts, layout], current: { ...this.doc.current, layout: name } });
    this.layout.name = name;
    this.renderChrome();
    toast(t('saved'));
  }

  async saveAs() {
    const taken = [...this.doc.layouts.map((l) => l.name), ...SQUARES.map((l) => l.name), ...TEMPLATES.map((l) => l.name)];
    const name = await askLayoutName('', taken);
    if (name) await this.save(name);
  }

  async deleteLayout() {
    const name = this.layout.name;
    if (!this.doc.layouts.some((l) => l.name === name)) return;
    await this.put({ ...this.doc, layouts: this.doc.layouts.filter((l) => l.name !== name),
      current: { ...this.doc.current, layout: null } });
    this.chooseLayout(SQUARES.find((l) => l.name === DEFAULT_LAYOUT));
  }

  /** PUT /me/wall with only the fields of the document; keeps the server's answer. Throws on failure. */
  async put(doc) {
    const clean = {
      layouts: doc.layouts.map((l) => ({ name: l.name, cols: l.cols, rows: l.rows,
        cells: l.cells.map(({ x, y, w, h: hh, camera_id }) => ({ x, y, w, h: hh, camera_id: camera_id ?? null })) })),
      tours: doc.tours.map(({ name, camera_ids, seconds }) => ({ name, camera_ids, seconds })),
      current: { layout: doc.current?.layout ?? null, tour: doc.current?.tour ?? null },
    };
    try {
      this.doc = await api('PUT', '/me/wall', clean);
    } catch (e) {
      showError(e);
      throw e;
    }
  }

  // --- tours --------------------------------------------------------------------------------------
  startTour(tour, remember = true) {
    this.stopTimer();
    this.pins.clear();
    this.tour = { tour, offset: 0 };
    this.show();
    this.tour.timer = setInterval(() => this.nextPage(), tour.seconds * 1000);
    this.renderChrome();
    if (remember) this.put({ ...this.doc, current: { ...this.doc.current, tour: tour.name } }).catch(() => {});
  }

  /** The tour's cameras the user may still see (one deleted or moved out of scope meanwhile is skipped). */
  tourIds() { return this.tour ? this.tour.tour.camera_ids.filter((id) => this.cams.has(id)) : []; }

  nextPage() {
    if (!this.tour) return;
    const n = this.layout.cells.length - this.pins.size;
    const next = this.tour.offset + Math.max(1, n);
    this.tour.offset = next >= this.tourIds().length ? 0 : next;
    this.show();
  }

  stopTimer() { if (this.tour) clearInterval(this.tour.timer); }

  stopTour() {
    if (!this.tour) return;
    this.stopTimer();
    this.tour = null;
    this.pins.clear();
    this.show();
    this.renderChrome();
    this.put({ ...this.doc, current: { ...this.doc.current, tour: null } }).catch(() => {});
  }

  async editTour(existing) {
    const r = await editTour(existing, { ...this.treeData, cameras: [...this.cams.values()] }, this.doc.tours.map((x) => x.name));
    if (!r) return;
    // By name: the document may have been replaced by a PUT's answer while the dialog was open.
    const same = (x) => existing && x.name === existing.name;
    let tours = this.doc.tours.filter((x) => !same(x));
    if (r.tour) {
      if (!existing && tours.length >= 32) { toast(t('limit_tours'), 'error'); return; }
      tours = existing ? this.doc.tours.map((x) => (same(x) ? r.tour : x)) : [...tours, r.tour];
    }
    const touring = this.tour?.tour.name;
    const current = { ...this.doc.current };
    if (existing && touring === existing.name) current.tour = r.tour ? r.tour.name : null;
    await this.put({ ...this.doc, tours, current }).catch(() => {});
    this.selectedTour = r.tour?.name ?? null;
    if (existing && touring === existing.name) {
      if (r.tour) this.startTour(r.tour, false); else { this.stopTimer(); this.tour = null; this.show(); }
    }
    this.renderChrome();
  }

  // --- full screen --------------------------------------------------------------------------------
  openFull(i) {
    const id = this.view().cells[i]?.camera_id;
    const cam = id == null ? null : this.cams.get(id);
    if (!cam) return;
    const close = h('button', { type: 'button', class: 'secondary', text: t('fullscreen_close'), onclick: () => this.closeFull() });
    // The tile's own player moves here and goes over to the main stream as it grows, showing the sub
    // stream's picture until the main stream's first frame: opening never shows a black screen.
    const player = this.grid.tiles[i]?.querySelector('vigil-live')
      || h('vigil-live', { camera: String(id), stream: 'auto' });
    const box = h('div', { class: 'wall-full', role: 'dialog', 'aria-modal': 'true', 'aria-label': cam.name },
      h('div', { class: 'wall-full-bar' }, h('span', { text: `${cam.name} · ${t('main_stream')}` }),
        cam.state && cam.state !== 'online' ? h('span', { class: `badge state-${cam.state}`, text: stateLabel(cam.state) }) : null,
        close),
      player);
    this.full = { box, tile: i, player };
    // Hidden tiles leave the viewport for the IntersectionObserver: their streams stop meanwhile.
    this.grid.el.hidden = true;
    this.root.append(box);
    close.focus();
    box.requestFullscreen?.().catch(() => {});
  }

  closeFull() {
    if (!this.full) return;
    const { box, tile, player } = this.full;
    this.full = null;
    if (document.fullscreenElement) document.exitFullscreen().catch(() => {});
    // The player goes back to its tile (still that camera's) and down to the sub stream as it shrinks.
    this.grid.el.hidden = false;
    const el = this.grid.tiles[tile];
    if (el && el.dataset.camera === player.getAttribute('camera')) {
      const stand = el.querySelector('vigil-live');
      if (stand) stand.replaceWith(player); else el.prepend(player);
    }
    box.remove();
    this.grid.fit();
    this.grid.select(tile);
  }

  // --- toolbar ------------------------------------------------------------------------------------
  renderChrome() {
    if (!this.layout) return;
    renderToolbar(this);
    this.alarms.render();
    this.grid.renderAll();
    this.renderState();
    this.updateButtons();
  }

  renderState() {
    if (!this.status || !this.layout) return;
    const { text, dirty } = stateText(this);
    this.status.textContent = text;
    this.status.dataset.dirty = String(dirty);
  }

  updateButtons() {
    if (!this.mergeBtn) return;
    const { anchor, selected } = this.grid;
    this.mergeBtn.disabled = anchor === null || anchor === selected;
    const c = this.layout.cells[selected];
    this.splitBtn.disabled = !c || c.w * c.h < 2;
  }
}
