// Administration, 场所 tab: service halls and bid-evaluation sites, each in one region. List, create, edit,
// delete. Editing fills the same form (the list row stays as it was until the server accepts the change); a
// site that still has cameras or positions cannot be deleted and the server's message says why.
import { api, h, showError, t, toast } from './core.js';
import { dangerButton, field, form, load, regionName, regionOptions, select, smallButton, split, table, val }
  from './admin-kit.js';

const KINDS = ['service_hall', 'bid_evaluation'];

export default {
  async mount(root) {
    let sites = [];
    let regions = [];
    let cameras = [];
    let editing = null;
    const listBox = h('div');

    const f = form({
      name: 'site',
      title: t('adm_site_new'),
      fields: [
        field('adm_site_name', h('input', { name: 'name', required: true, maxlength: '100', autocomplete: 'off' })),
        field('adm_site_kind', select('kind', KINDS.map((k) => [k, t(`adm_kind_${k}`)]), 'service_hall')),
        h('div', { class: 'adm-region-slot' }),
      ],
      onsubmit: async (el) => {
        const body = { name: val(el, 'name'), kind: val(el, 'kind'), region_code: val(el, 'region_code') };
        if (editing) await api('PATCH', `/sites/${editing.id}`, body);
        else await api('POST', '/sites', body);
        toast(t('adm_saved'));
        reset();
        await refresh();
      },
      oncancel: () => reset(),
    });

    const drawRegions = (value) => {
      f.querySelector('.adm-region-slot').replaceChildren(field('adm_site_region',
        select('region_code', regionOptions(regions), value ?? f.elements.region_code?.value, { required: true })));
    };

    function reset() {
      editing = null;
      f.reset();
      f.clearError();
      f.heading.textContent = t('adm_site_new');
    }

    const edit = (s) => {
      editing = s;
      f.clearError();
      f.heading.textContent = t('adm_site_edit', { name: s.name });
      f.elements.name.value = s.name;
      f.elements.kind.value = s.kind;
      f.elements.region_code.value = s.region_code;
      f.elements.name.focus();
    };

    const drawList = () => {
      const count = (id) => cameras.filter((c) => c.site_id === id).length;
      listBox.replaceChildren(table([
        ['adm_id', (s) => String(s.id)],
        ['adm_site_name', (s) => s.name],
        ['adm_site_kind', (s) => t(`adm_kind_${s.kind}`)],
        ['adm_site_region', (s) => regionName(regions, s.region_code)],
        ['adm_site_cameras', (s) => h('a', { href: `#/admin/cameras?site=${s.id}`, text: String(count(s.id)) })],
        ['adm_actions', (s) => h('div', { class: 'adm-row-actions' },
          h('a', { class: 'button secondary small', href: `#/admin/positions?site=${s.id}`, text: t('adm_site_positions') }),
          smallButton('adm_edit', () => edit(s)),
          dangerButton('adm_delete', async () => {
            try {
              await api('DELETE', `/sites/${s.id}`);
              toast(t('adm_deleted'));
              if (editing?.id === s.id) reset();
              await refresh();
            } catch (e) { showError(e); }
          }))],
      ], sites));
    };

    async function refresh() {
      [sites, regions, cameras] = await load('/sites', '/regions', '/cameras');
      drawRegions();
      drawList();
    }

    root.replaceChildren(split(listBox, f));
    await refresh();
  },
};
