// The live wall's toolbar: layout choice (squares, templates and the user's saved layouts), merge/split,
// save, tours, the saved/touring status and the keyboard help. It only draws: every action is a method of
// the wall (web/wall.js), and the toolbar is drawn again whenever what it shows changes.
import { h, t } from './core.js';
import { isPreset, SQUARES, TEMPLATES } from './wall-grid.js';

/** Draws the toolbar of `wall` into `wall.toolbar`; keeps the merge and split buttons on `wall`. */
export function renderToolbar(wall) {
  const name = wall.layout.name;
  const squares = h('div', { class: 'seg', role: 'group', 'aria-label': t('layout') }, SQUARES.map((l) =>
    h('button', { type: 'button', class: 'secondary', dataset: { layout: l.name }, text: l.name,
      title: t('layout_n', { n: l.name }), 'aria-pressed': String(name === l.name), onclick: () => wall.chooseLayout(l) })));
  const customs = wall.doc.layouts.filter((l) => !isPreset(l.name));
  const more = h('select', { class: 'more-layouts', 'aria-label': t('more_layouts'), onchange: () => {
    const l = [...TEMPLATES, ...customs].find((x) => x.name === more.value);
    if (l) wall.chooseLayout(l);
  } },
  h('option', { value: '', text: t('more_layouts') }),
  h('optgroup', { label: t('tpl') }, TEMPLATES.map((l) => h('option', { value: l.name, text: t(`tpl_${l.name}`) }))),
  customs.length ? h('optgroup', { label: t('saved_layouts') }, customs.map((l) => h('option', { value: l.name, text: l.name }))) : null);
  more.value = [...TEMPLATES, ...customs].some((l) => l.name === name) ? name : '';
  wall.mergeBtn = h('button', { type: 'button', class: 'secondary merge', text: t('merge'), title: t('merge_title'), onclick: () => wall.mergeSelected() });
  wall.splitBtn = h('button', { type: 'button', class: 'secondary split', text: t('split'), title: t('split_title'), onclick: () => wall.splitSelected() });
  const saved = customs.some((l) => l.name === name);
  const tourSel = h('select', { class: 'tour-select', 'aria-label': t('tour'), onchange: () => { wall.selectedTour = tourSel.value; wall.renderChrome(); } },
    wall.doc.tours.length ? wall.doc.tours.map((x) => h('option', { value: x.name, text: x.name }))
      : h('option', { value: '', text: t('tours_none') }));
  const chosen = wall.tour?.tour.name ?? wall.selectedTour;
  if (wall.doc.tours.some((x) => x.name === chosen)) tourSel.value = chosen;
  const tourOf = () => wall.doc.tours.find((x) => x.name === tourSel.value);
  wall.toolbar.replaceChildren(h('div', { class: 'wall-tools' }, squares, more, wall.mergeBtn, wall.splitBtn,
    h('span', { class: 'sep' }),
    h('button', { type: 'button', class: 'save', text: t('save'), onclick: () => wall.save().catch(() => {}) }),
    h('button', { type: 'button', class: 'secondary save-as', text: t('save_as'), onclick: () => wall.saveAs().catch(() => {}) }),
    saved ? h('button', { type: 'button', class: 'secondary delete-layout', text: t('delete_layout'), onclick: () => wall.deleteLayout().catch(() => {}) }) : null,
    h('span', { class: 'sep' }),
    h('span', { class: 'label', text: t('tour') }), tourSel,
    wall.tour
      ? h('button', { type: 'button', class: 'tour-stop danger', text: t('tour_stop'), onclick: () => wall.stopTour() })
      : h('button', { type: 'button', class: 'tour-start', text: t('tour_start'), disabled: !wall.doc.tours.length,
        onclick: () => { const x = tourOf(); if (x) wall.startTour(x); } }),
    h('button', { type: 'button', class: 'secondary tour-new', text: '+', title: t('tour_new'), 'aria-label': t('tour_new'), onclick: () => wall.editTour(null) }),
    h('button', { type: 'button', class: 'secondary tour-edit', text: '✎', title: t('tour_edit'), 'aria-label': t('tour_edit'),
      disabled: !wall.doc.tours.length, onclick: () => { const x = tourOf(); if (x) wall.editTour(x); } }),
    wall.status,
    h('details', { class: 'wall-help' }, h('summary', { text: '?', title: t('help'), 'aria-label': t('help') }),
      h('p', { text: t('help_text') }))));
}

/** The status line: saved or not, or where the tour is. */
export function stateText(wall) {
  const saved = wall.doc.layouts.find((l) => l.name === wall.layout.name);
  const cells = (l) => JSON.stringify(l.cells.map((c) => [c.x, c.y, c.w, c.h, c.camera_id ?? null]));
  const same = !!saved && cells(saved) === cells(wall.layout);
  if (!wall.tour) return { text: same ? t('saved') : t('unsaved'), dirty: !same };
  const n = Math.max(1, wall.layout.cells.length - wall.pins.size);
  const pages = Math.max(1, Math.ceil(wall.tourIds().length / n));
  return { text: t('touring', { name: wall.tour.tour.name, page: Math.floor(wall.tour.offset / n) + 1, pages, s: wall.tour.tour.seconds }),
    dirty: !same };
}
