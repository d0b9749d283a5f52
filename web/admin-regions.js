// Administration, 行政区划 tab: the GB/T 2260 region tree (province > city > district), a form to add a
// region, and per region a rename (in place: Enter saves, Escape cancels) and a two-step delete. A region's
// code, level and parent are what it is, so only its name changes; a region that still has regions below
// it, sites, or users or tokens bound to it is not deleted and the server's message says why. A regional
// admin sees the regions above their own too (the server sends them so the tree can be drawn) but may only
// change their own and below; the server's refusal is shown as a message.
import { api, h, showError, t, toast } from './core.js';
import { dangerButton, field, form, load, regionOptions, regionTree, select, smallButton, split, val }
  from './admin-kit.js';

const LEVELS = ['province', 'city', 'district'];
const NEXT_LEVEL = { province: 'city', city: 'district', district: 'district' };

export default {
  async mount(root) {
    let regions = [];
    const listBox = h('div', { class: 'adm-tree-box' });
    const f = form({
      name: 'region',
      title: t('adm_region_new'),
      submit: 'adm_create',
      fields: [
        field('adm_region_code', h('input', { name: 'code', required: true, pattern: '[0-9]{6}', inputmode: 'numeric',
          maxlength: '6', autocomplete: 'off' }), t('adm_region_code_hint')),
        field('adm_region_name', h('input', { name: 'name', required: true, maxlength: '100', autocomplete: 'off' })),
        field('adm_region_level', select('level', LEVELS.map((l) => [l, t(`adm_level_${l}`)]), 'city')),
        h('div', { class: 'adm-parent-slot' }),
      ],
      onsubmit: async (el) => {
        const body = { code: val(el, 'code'), name: val(el, 'name'), level: val(el, 'level'),
          parent_code: val(el, 'parent_code') || null };
        await api('POST', '/regions', body);
        toast(t('adm_saved'));
        el.reset();
        await refresh();
        el.elements.code.focus();
      },
      oncancel: (el) => { el.reset(); el.clearError(); },
    });

    const drawParent = () => {
      const keep = f.elements.parent_code?.value ?? '';
      f.querySelector('.adm-parent-slot').replaceChildren(field('adm_region_parent',
        select('parent_code', [['', t('adm_none')], ...regionOptions(regions)], keep)));
    };

    // The name becomes a one-field form in place; the tree is redrawn only once the server took the name.
    const rename = (r, row) => {
      const input = h('input', { name: 'name', required: true, maxlength: '100', value: r.name,
        'aria-label': t('adm_region_name'), autocomplete: 'off' });
      const back = () => drawTree();
      const rf = h('form', { class: 'adm-rename', dataset: { form: 'region-rename' } }, input,
        h('button', { type: 'submit', class: 'small', text: t('adm_save') }),
        h('button', { type: 'button', class: 'secondary small', text: t('adm_cancel'), onclick: back }));
      rf.addEventListener('submit', async (e) => {
        e.preventDefault();
        try {
          await api('PATCH', `/regions/${r.code}`, { name: input.value.trim() });
          toast(t('adm_saved'));
          await refresh();
        } catch (err) { showError(err); input.focus(); }
      });
      rf.addEventListener('keydown', (e) => {
        if (e.key === 'Escape') { e.preventDefault(); e.stopPropagation(); back(); }
      });
      row.replaceChildren(rf, h('code', { text: r.code }));
      input.focus();
      input.select();
    };

    // Nested lists: the tree reads as one to screen readers and to the eye.
    const drawTree = () => {
      const byParent = new Map();
      const codes = new Set(regions.map((r) => r.code));
      for (const r of regionTree(regions)) {
        const p = r.parent_code && codes.has(r.parent_code) ? r.parent_code : '';
        if (!byParent.has(p)) byParent.set(p, []);
        byParent.get(p).push(r);
      }
      const list = (parent) => {
        const kids = byParent.get(parent);
        if (!kids) return null;
        return h('ul', { class: 'adm-tree' }, kids.map((r) => h('li', { dataset: { code: r.code } },
          h('div', { class: 'adm-tree-row' },
            h('strong', { text: r.name }), h('code', { text: r.code }),
            h('span', { class: 'adm-muted', text: t(`adm_level_${r.level}`) || r.level }),
            r.level !== 'district' ? smallButton('adm_region_add_below', () => {
              f.elements.parent_code.value = r.code;
              f.elements.level.value = NEXT_LEVEL[r.level] || 'district';
              f.elements.code.value = r.code.slice(0, r.level === 'province' ? 2 : 4);
              f.elements.code.focus();
            }) : null,
            smallButton('adm_region_rename', (e) => rename(r, e.currentTarget.closest('.adm-tree-row'))),
            dangerButton('adm_delete', async () => {
              try {
                await api('DELETE', `/regions/${r.code}`);
                toast(t('adm_deleted'));
                await refresh();
              } catch (err) { showError(err); }
            })),
          list(r.code))));
      };
      listBox.replaceChildren(regions.length ? list('') : h('p', { class: 'empty', text: t('adm_empty') }));
    };

    const refresh = async () => {
      [regions] = await load('/regions');
      drawTree();
      drawParent();
    };

    root.replaceChildren(split(listBox, f));
    await refresh();
  },
};
