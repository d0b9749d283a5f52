// Administration, 点位 tab: the positions of one site (windows, rooms, seats that case events name) with the
// cameras that cover each; the form beside the list adds one or, after "编辑", changes its kind and cameras
// (picked among the site's own; the server replaces the ties with exactly the ticked ones). A position's
// code cannot change (case events name it), so the field is read-only while editing. Delete asks twice.
// The chosen site is kept in the address (#/admin/positions?site=ID) without reloading the page, so a link
// or a reload comes back to it.
import { api, h, showError, t, toast } from './core.js';
import { checkedValues, dangerButton, field, form, load, select, smallButton, split, stateBadge, table, val }
  from './admin-kit.js';

const KINDS = ['window', 'room', 'seat'];

export default {
  async mount(root, route) {
    const [sites, allCameras] = await load('/sites', '/cameras');
    if (!sites.length) { root.replaceChildren(h('p', { class: 'empty', text: t('adm_pos_no_site') })); return; }
    let siteId = Number(route.query.get('site')) || sites[0].id;
    if (!sites.some((s) => s.id === siteId)) siteId = sites[0].id;
    let editing = null;
    const cameras = () => allCameras.filter((c) => c.site_id === siteId);
    const byId = new Map(allCameras.map((c) => [c.id, c]));
    const name = (id) => byId.get(id)?.name ?? `#${id}`;
    const listBox = h('div');

    const picker = field('adm_pos_site', select('site', sites.map((s) => [s.id, s.name]), siteId, {
      onchange: (e) => {
        siteId = Number(e.target.value);
        history.replaceState(null, '', `#/admin/positions?site=${siteId}`);
        reset();
        drawCameras();
        refresh();
      },
    }));
    picker.classList.add('adm-toolbar-field');

    const code = h('input', { name: 'code', required: true, maxlength: '50', autocomplete: 'off' });
    const codeHint = h('small', { class: 'adm-hint', text: t('adm_pos_code_hint') });
    const camBox = h('div', { class: 'adm-checks', role: 'group' });
    const f = form({
      name: 'position',
      title: t('adm_pos_new'),
      submit: 'adm_create',
      fields: [
        h('label', { class: 'adm-field' }, h('span', { text: t('adm_pos_code') }), code, codeHint),
        field('adm_pos_kind', select('kind', KINDS.map((k) => [k, t(`adm_pos_kind_${k}`)]), 'window')),
        h('fieldset', { class: 'adm-fieldset' }, h('legend', { text: t('adm_pos_cameras') }), camBox),
      ],
      onsubmit: async (el) => {
        const body = { kind: val(el, 'kind'), camera_ids: checkedValues(el, 'camera_ids').map(Number) };
        if (editing) {
          await api('PATCH', `/sites/${siteId}/positions/${editing.id}`, body);
        } else {
          await api('POST', `/sites/${siteId}/positions`, { code: val(el, 'code'), ...body });
        }
        toast(t('adm_saved'));
        reset();
        await refresh();
        code.focus();
      },
      oncancel: () => reset(),
    });
    const submitBtn = f.querySelector('button[type=submit]');

    function reset() {
      editing = null;
      f.reset();
      f.clearError();
      f.heading.textContent = t('adm_pos_new');
      code.readOnly = false;
      codeHint.textContent = t('adm_pos_code_hint');
      submitBtn.textContent = t('adm_create');
    }

    // Fills the form with the position; the code stays read-only, so the kind gets the focus.
    function edit(p) {
      reset();
      editing = p;
      f.heading.textContent = t('adm_pos_edit', { code: p.code });
      code.value = p.code;
      code.readOnly = true;
      codeHint.textContent = t('adm_pos_code_fixed');
      submitBtn.textContent = t('adm_save');
      f.elements.kind.value = p.kind;
      for (const box of f.querySelectorAll('input[name=camera_ids]')) {
        box.checked = p.camera_ids.includes(Number(box.value));
      }
      f.elements.kind.focus();
    }

    function drawCameras() {
      const list = cameras();
      camBox.replaceChildren(...(list.length ? list.map((c) => h('label', { class: 'adm-check' },
        h('input', { type: 'checkbox', name: 'camera_ids', value: String(c.id) }), c.name))
        : [h('span', { class: 'adm-muted', text: t('adm_pos_no_cameras') })]));
    }

    async function refresh() {
      const positions = await api('GET', `/sites/${siteId}/positions`);
      listBox.replaceChildren(table([
        ['adm_pos_code', (p) => p.code],
        ['adm_pos_kind', (p) => t(`adm_pos_kind_${p.kind}`)],
        ['adm_pos_cameras', (p) => h('ul', { class: 'adm-inline-list' }, p.camera_ids.map((id) =>
          h('li', {}, name(id), ' ', byId.get(id)?.state ? stateBadge(byId.get(id).state) : null)))],
        ['adm_actions', (p) => h('div', { class: 'adm-row-actions' },
          smallButton('adm_edit', () => edit(p)),
          dangerButton('adm_delete', async () => {
            try {
              await api('DELETE', `/sites/${siteId}/positions/${p.id}`);
              toast(t('adm_deleted'));
              if (editing?.id === p.id) reset();
              await refresh();
            } catch (e) { showError(e); }
          }))],
      ], positions));
    }

    root.replaceChildren(h('div', { class: 'adm-toolbar' }, picker), split(listBox, f));
    drawCameras();
    await refresh();
  },
};
