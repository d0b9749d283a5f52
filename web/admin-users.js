// Administration, 用户 tab: the people who log in, their role and jurisdiction (regions; a region grants its
// whole subtree, none means global), and accounts locked by failed logins. Create, edit (role, regions,
// password), unlock, delete. Passwords are write-only: the form never shows one and, when editing, an
// empty password keeps the current one. The server refuses what the admin may not grant and says why.
import { api, h, showError, t, toast } from './core.js';
import { checkedValues, dangerButton, field, form, load, regionChecks, regionName, select, smallButton, split, table,
  val } from './admin-kit.js';

export const HUMAN_ROLES = ['admin', 'supervisor', 'investigator', 'integrator'];

/** A user's or token's regions as names, or "global". */
export const regionsText = (regions, codes) =>
  (codes.length ? codes.map((c) => regionName(regions, c)).join('、') : t('adm_user_global'));

export default {
  async mount(root) {
    let users = [];
    let regions = [];
    let editing = null;
    const listBox = h('div');
    const regionSlot = h('div');
    const password = h('input', { name: 'password', type: 'password', autocomplete: 'new-password', minlength: '8',
      required: true });

    const f = form({
      name: 'user',
      title: t('adm_user_new'),
      fields: [
        field('adm_user_name', h('input', { name: 'username', required: true, maxlength: '64', autocomplete: 'off',
          pattern: '\\S+' })),
        field('adm_cam_password', password, t('adm_user_password_hint')),
        field('adm_user_role', select('role', HUMAN_ROLES.map((r) => [r, t(`adm_role_${r}`)]), 'supervisor')),
        h('fieldset', { class: 'adm-fieldset' }, h('legend', { text: t('adm_user_regions') }), regionSlot,
          h('small', { class: 'adm-hint', text: t('adm_user_regions_hint') })),
      ],
      onsubmit: async (el) => {
        const body = { username: val(el, 'username'), role: val(el, 'role'), region_codes: checkedValues(el, 'region_codes') };
        if (el.elements.password.value) body.password = el.elements.password.value;
        if (editing) await api('PATCH', `/users/${editing.id}`, body);
        else await api('POST', '/users', body);
        toast(t('adm_saved'));
        reset();
        await refresh();
      },
      oncancel: () => reset(),
    });

    function reset() {
      editing = null;
      f.reset();
      f.clearError();
      f.heading.textContent = t('adm_user_new');
      password.required = true;
      password.placeholder = '';
      regionSlot.replaceChildren(regionChecks('region_codes', regions));
    }

    const edit = (u) => {
      reset();
      editing = u;
      f.heading.textContent = t('adm_user_edit', { name: u.username });
      f.elements.username.value = u.username;
      f.elements.role.value = u.role;
      password.required = false;
      password.placeholder = t('adm_cam_password_keep');
      regionSlot.replaceChildren(regionChecks('region_codes', regions, u.region_codes));
      f.elements.username.focus();
    };

    const act = (fn) => async () => { try { await fn(); await refresh(); } catch (e) { showError(e); } };

    const drawList = () => listBox.replaceChildren(table([
      ['adm_id', (u) => String(u.id)],
      ['adm_user_name', (u) => u.username],
      ['adm_user_role', (u) => t(`adm_role_${u.role}`)],
      ['adm_user_regions', (u) => regionsText(regions, u.region_codes)],
      ['adm_user_status', (u) => (u.locked ? h('span', { class: 'state-offline', text: t('adm_user_locked') })
        : h('span', { class: 'adm-muted', text: t('adm_user_active') }))],
      ['adm_actions', (u) => h('div', { class: 'adm-row-actions' },
        u.locked ? smallButton('adm_user_unlock', act(async () => {
          await api('POST', `/users/${u.id}/unlock`);
          toast(t('adm_user_unlocked'));
        })) : null,
        smallButton('adm_edit', () => edit(u)),
        dangerButton('adm_delete', act(async () => {
          await api('DELETE', `/users/${u.id}`);
          toast(t('adm_deleted'));
          if (editing?.id === u.id) reset();
        })))],
    ], users));

    async function refresh() {
      [users, regions] = await load('/users', '/regions');
      if (!editing && !regionSlot.firstChild) regionSlot.replaceChildren(regionChecks('region_codes', regions));
      drawList();
    }

    root.replaceChildren(split(listBox, f));
    await refresh();
  },
};
