// The live wall's dialogs: naming a layout, and editing a tour (name, cameras picked from the tree,
// seconds per page). Native <dialog>: modal, Escape cancels, focus returns to the opener. The limits are
// those of PUT /me/wall (names 1-40 characters unique in their list, 1-256 cameras, 5-3600 seconds), checked
// here so that the user sees why before the server says no.
import { h, t } from './core.js';
import { CameraTree } from './wall-tree.js';

function validName(name, taken) {
  const n = name.trim();
  if (n.length < 1 || [...n].length > 40) return t('name_bad');
  if (taken.includes(n)) return t('name_taken');
  return '';
}

/** Opens a modal dialog; `build(close)` returns its form content. Resolves to what `close` is given. */
function modal(cls, title, build) {
  return new Promise((resolve) => {
    const dlg = h('dialog', { class: `wall-dialog ${cls}`, 'aria-label': title });
    let result = null;
    const close = (v) => { result = v; dlg.close(); };
    dlg.addEventListener('close', () => { dlg.remove(); resolve(result); });
    dlg.append(h('h2', { text: title }), build(close));
    document.body.append(dlg);
    dlg.showModal();
  });
}

/** Asks for a new layout name not in `taken`. Resolves to the name or null. */
export function askLayoutName(value, taken) {
  return modal('ask-name', t('layout_name'), (close) => {
    const input = h('input', { name: 'name', value, maxlength: '40', required: true, autofocus: true });
    const err = h('p', { class: 'form-error', role: 'alert' });
    return h('form', { method: 'dialog', onsubmit: (e) => {
      e.preventDefault();
      err.textContent = validName(input.value, taken);
      if (!err.textContent) close(input.value.trim());
    } },
    h('label', {}, h('span', { text: t('name') }), input), err,
    h('div', { class: 'actions' }, h('button', { type: 'submit', text: t('dlg_ok') }),
      h('button', { type: 'button', class: 'secondary', text: t('dlg_cancel'), onclick: () => close(null) })));
  });
}

/** Edits a tour ({name, camera_ids, seconds} or null for a new one). Resolves to
 *  { tour } (saved), { deleted: true } or null (cancelled). */
export function editTour(tour, treeData, taken) {
  return modal('tour-editor', tour ? t('tour_edit') : t('tour_new'), (close) => {
    const name = h('input', { name: 'name', value: tour?.name || '', maxlength: '40', required: true, autofocus: true });
    const seconds = h('input', { name: 'seconds', type: 'number', min: '5', max: '3600', step: '1',
      value: String(tour?.seconds ?? 10), required: true });
    const count = h('span', {});
    const tree = new CameraTree({ checkable: true, onCheck: () => { count.textContent = t('tour_cameras', { n: tree.checked.size }); } });
    tree.setData(treeData);
    tree.updateStates(new Map(treeData.cameras.map((c) => [c.id, c])));
    // Cameras no longer visible to the user are dropped from the tour when it is saved again.
    const visible = new Set(treeData.cameras.map((c) => c.id));
    tree.setChecked((tour?.camera_ids || []).filter((id) => visible.has(id)));
    count.textContent = t('tour_cameras', { n: tree.checked.size });
    const err = h('p', { class: 'form-error', role: 'alert' });
    const others = taken.filter((n) => n !== tour?.name);
    return h('form', { method: 'dialog', onsubmit: (e) => {
      e.preventDefault();
      const ids = tree.checkedIds();
      const s = Number(seconds.value);
      err.textContent = validName(name.value, others)
        || (!Number.isInteger(s) || s < 5 || s > 3600 ? t('seconds_bad') : '')
        || (!ids.length ? t('tour_no_cameras') : ids.length > 256 ? t('tour_too_many') : '');
      if (!err.textContent) close({ tour: { name: name.value.trim(), camera_ids: ids, seconds: s } });
    } },
    h('div', { class: 'fields' }, h('label', {}, h('span', { text: t('name') }), name),
      h('label', {}, h('span', { text: t('tour_seconds') }), seconds)),
    h('fieldset', {}, h('legend', {}, count), tree.el), err,
    h('div', { class: 'actions' }, h('button', { type: 'submit', text: t('dlg_ok') }),
      h('button', { type: 'button', class: 'secondary', text: t('dlg_cancel'), onclick: () => close(null) }),
      tour ? h('button', { type: 'button', class: 'danger', text: t('dlg_delete'), onclick: () => close({ deleted: true }) }) : null));
  });
}
