// The live wall's camera tree: region > site > position > camera (ARIA tree, roving tabindex).
//
// Cameras that cover no position hang directly under their site; a camera that covers several positions
// appears under each. Regions without any site below them are left out (the server also lists the
// regions above a user's own, so that the tree can be drawn down to them). Only what GET /cameras
// returned is ever shown: the server scopes it to the user's regions, the tree adds nothing.
//
// Two uses: the wall's picker (Enter or a click puts a camera, or a whole group, on the wall; rows can be
// dragged onto tiles) and, with `checkable`, the tour editor's camera chooser (Space or a click ticks).
import { api, h, t } from './core.js';

/** The label of a camera state of GET /cameras (`state`), or of a missing one. */
export const stateLabel = (s) => t(`st_${s || 'unknown'}`);

/** Reads everything the tree shows: { regions, sites, cameras, positions: Map(site id -> positions) }. */
export async function loadTreeData() {
  const [regions, sites, cameras] = await Promise.all([api('GET', '/regions'), api('GET', '/sites'),
    api('GET', '/cameras')]);
  const lists = await Promise.all(sites.map((s) => api('GET', `/sites/${s.id}/positions`).catch(() => [])));
  return { regions, sites, cameras, positions: new Map(sites.map((s, i) => [s.id, lists[i]])) };
}

const byName = (a, b) => a.label.localeCompare(b.label, 'zh-CN', { numeric: true });

/** Builds the nodes { kind, key, label, children, camera } from the lists. */
function buildNodes({ regions, sites, cameras, positions }) {
  const camNode = (c) => ({ kind: 'camera', key: `c${c.id}`, label: c.name, camera: c, children: [] });
  const siteNodes = new Map();
  for (const s of sites) {
    const cams = cameras.filter((c) => c.site_id === s.id);
    const covered = new Set();
    const posNodes = (positions.get(s.id) || []).map((p) => {
      const children = cams.filter((c) => p.camera_ids.includes(c.id)).map(camNode).sort(byName);
      children.forEach((n) => covered.add(n.camera.id));
      return { kind: 'position', key: `p${p.id}`, label: p.code, children };
    }).filter((n) => n.children.length).sort(byName);
    const loose = cams.filter((c) => !covered.has(c.id)).map(camNode).sort(byName);
    siteNodes.set(s.id, { kind: 'site', key: `s${s.id}`, label: s.name, region: s.region_code,
      children: [...posNodes, ...loose] });
  }
  const codes = new Set(regions.map((r) => r.code));
  const regionNode = (r) => {
    const subs = regions.filter((x) => x.parent_code === r.code).map(regionNode).filter(Boolean);
    const own = [...siteNodes.values()].filter((s) => s.region === r.code).sort(byName);
    if (!subs.length && !own.length) return null;
    return { kind: 'region', key: `r${r.code}`, label: r.name, children: [...subs.sort(byName), ...own] };
  };
  const roots = regions.filter((r) => !r.parent_code || !codes.has(r.parent_code)).map(regionNode)
    .filter(Boolean);
  // A site whose region the user cannot see drawn (should not happen) still shows, at the top.
  const placed = new Set();
  const walk = (n) => { if (n.kind === 'site') placed.add(n.key); n.children.forEach(walk); };
  roots.forEach(walk);
  return [...roots, ...[...siteNodes.values()].filter((s) => !placed.has(s.key))];
}

/** Every camera id the tree shows, in its order (regions, sites, positions), without repeats. */
export function treeOrder(data) {
  const ids = [];
  buildNodes(data).forEach((n) => cameraIds(n).forEach((id) => { if (!ids.includes(id)) ids.push(id); }));
  return ids;
}

/** Every camera id under a node, in tree order, without repeats. */
function cameraIds(node) {
  const ids = [];
  const walk = (n) => { if (n.camera && !ids.includes(n.camera.id)) ids.push(n.camera.id); n.children.forEach(walk); };
  walk(node);
  return ids;
}

export class CameraTree {
  /** opts: { onPick(ids, node) } for the wall, or { checkable: true } for a chooser. */
  constructor(opts = {}) {
    this.opts = opts;
    this.checked = new Set();
    this.nodes = [];
    this.items = new Map(); // li -> node
    this.filter = h('input', { type: 'search', class: 'tree-filter', placeholder: t('tree_filter'),
      'aria-label': t('tree_filter'), oninput: () => this.applyFilter() });
    this.list = h('ul', { role: 'tree', class: 'tree', 'aria-label': t('tree_label'),
      'aria-multiselectable': opts.checkable ? 'true' : null, onkeydown: (e) => this.onKey(e) });
    this.el = h('div', { class: 'camera-tree' }, this.filter, this.list);
  }

  setData(data) {
    this.nodes = buildNodes(data);
    this.cameraCount = data.cameras.length;
    this.render();
  }

  render() {
    const focusedKey = this.items.get(this.list.querySelector('[tabindex="0"]'))?.key;
    this.items.clear();
    // Small installations open fully; large ones open down to the sites.
    const open = (n) => n.kind === 'region' || this.cameraCount <= 64;
    const item = (n, level) => {
      const group = n.children.length ? h('ul', { role: 'group' }, n.children.map((c) => item(c, level + 1))) : null;
      const box = this.opts.checkable ? h('input', { type: 'checkbox', tabindex: '-1', 'aria-hidden': 'true',
        onclick: (e) => { e.stopPropagation(); this.toggle(n); } }) : null;
      const row = h('div', { class: `row row-${n.kind}`, style: { paddingLeft: `${level * 0.9}rem` } },
        n.children.length ? h('span', { class: 'caret', 'aria-hidden': 'true' }) : h('span', { class: 'caret-none' }),
        box,
        n.camera ? h('span', { class: 'dot', 'aria-hidden': 'true' }) : null,
        h('span', { class: 'label', text: n.label }),
        n.camera ? null : h('span', { class: 'count', text: String(cameraIds(n).length) }));
      const li = h('li', { role: 'treeitem', tabindex: '-1', 'aria-level': String(level),
        'aria-expanded': n.children.length ? String(open(n)) : null,
        dataset: n.camera ? { camera: String(n.camera.id) } : { group: n.key },
        draggable: this.opts.checkable ? null : 'true',
        ondragstart: (e) => {
          e.stopPropagation();
          e.dataTransfer.setData('application/x-vigil-cameras', JSON.stringify(cameraIds(n)));
          e.dataTransfer.effectAllowed = 'copy';
        },
        onclick: (e) => { e.stopPropagation(); this.focus(li); this.activate(n, li, e.target.closest('.caret')); },
        ondblclick: (e) => { e.stopPropagation(); if (!n.camera && !this.opts.checkable) this.opts.onPick?.(cameraIds(n), n); },
      }, row, group);
      this.items.set(li, n);
      return li;
    };
    this.list.replaceChildren(...this.nodes.map((n) => item(n, 1)));
    if (!this.nodes.length) this.list.append(h('li', { class: 'empty', text: t('tree_empty') }));
    const first = [...this.items.keys()].find((li) => this.items.get(li).key === focusedKey) || this.list.querySelector('[role=treeitem]');
    if (first) first.tabIndex = 0;
    this.updateChecks();
    this.applyFilter();
  }

  /** Click or Enter: a camera is picked (or ticked); a group opens or closes (a chooser ticks it). */
  activate(n, li, onCaret) {
    if (n.children.length && (onCaret || (!this.opts.checkable && !n.camera))) {
      li.setAttribute('aria-expanded', String(li.getAttribute('aria-expanded') !== 'true'));
      return;
    }
    if (this.opts.checkable) this.toggle(n);
    else this.opts.onPick?.(cameraIds(n), n);
  }

  toggle(n) {
    const ids = cameraIds(n);
    const all = ids.every((id) => this.checked.has(id));
    ids.forEach((id) => (all ? this.checked.delete(id) : this.checked.add(id)));
    this.updateChecks();
    this.opts.onCheck?.();
  }

  /** The ticked cameras in tree order. */
  checkedIds() { return this.nodes.flatMap(cameraIds).filter((id, i, a) => this.checked.has(id) && a.indexOf(id) === i); }

  setChecked(ids) { this.checked = new Set(ids); this.updateChecks(); }

  updateChecks() {
    if (!this.opts.checkable) return;
    for (const [li, n] of this.items) {
      const ids = cameraIds(n);
      const on = ids.filter((id) => this.checked.has(id)).length;
      const box = li.querySelector(':scope > .row input');
      box.checked = ids.length > 0 && on === ids.length;
      box.indeterminate = on > 0 && on < ids.length;
      li.setAttribute('aria-checked', box.indeterminate ? 'mixed' : String(box.checked));
    }
  }

  /** Shows each camera's state: { id -> camera of GET /cameras }. */
  updateStates(cams) {
    for (const [li, n] of this.items) {
      if (!n.camera) continue;
      const st = cams.get(n.camera.id)?.state;
      const dot = li.querySelector(':scope > .row .dot');
      dot.className = `dot state-${st || 'unknown'}`;
      li.title = `${n.label}: ${stateLabel(st)}`;
    }
  }

  applyFilter() {
    const q = this.filter.value.trim().toLowerCase();
    const walk = (li) => {
      const n = this.items.get(li);
      const kids = [...li.querySelectorAll(':scope > ul > li')];
      const anyKid = kids.map(walk).some(Boolean);
      const show = !q || anyKid || (n.camera && n.label.toLowerCase().includes(q));
      li.hidden = !show;
      return show;
    };
    [...this.list.querySelectorAll(':scope > li[role=treeitem]')].forEach(walk);
    if (q) this.list.classList.add('filtering'); else this.list.classList.remove('filtering');
  }

  visibleItems() {
    const filtering = this.list.classList.contains('filtering');
    return [...this.list.querySelectorAll('[role=treeitem]')].filter((li) => !li.hidden
      && !li.parentElement.closest('[hidden]')
      && (filtering || !li.parentElement.closest('[aria-expanded=false]')));
  }

  focus(li) {
    if (!li) return;
    this.list.querySelectorAll('[role=treeitem][tabindex="0"]').forEach((x) => { x.tabIndex = -1; });
    li.tabIndex = 0;
    li.focus();
  }

  onKey(e) {
    const li = e.target.closest('[role=treeitem]');
    if (!li || e.target !== li) return;
    const n = this.items.get(li);
    const vis = this.visibleItems();
    const i = vis.indexOf(li);
    const open = li.getAttribute('aria-expanded');
    switch (e.key) {
      case 'ArrowDown': this.focus(vis[i + 1]); break;
      case 'ArrowUp': this.focus(vis[i - 1]); break;
      case 'Home': this.focus(vis[0]); break;
      case 'End': this.focus(vis[vis.length - 1]); break;
      case 'ArrowRight':
        if (open === 'false') li.setAttribute('aria-expanded', 'true');
        else if (open === 'true') this.focus(li.querySelector(':scope > ul > li:not([hidden])'));
        break;
      case 'ArrowLeft':
        if (open === 'true') li.setAttribute('aria-expanded', 'false');
        else this.focus(li.parentElement.closest('[role=treeitem]'));
        break;
      case 'Enter':
        if (this.opts.checkable) this.toggle(n);
        else this.opts.onPick?.(cameraIds(n), n);
        break;
      case ' ':
        if (this.opts.checkable) this.toggle(n);
        else this.activate(n, li, false);
        break;
      default: return;
    }
    e.preventDefault();
  }
}
