// Administration, 接口令牌 tab: bearer tokens for machines (the approval and bid-trading systems post case
// events with one). The secret exists only in the answer that creates the token: it is shown once, with a
// copy button, and dropped from the page when the admin closes the box or leaves the tab; the list shows
// only names, roles, regions and dates. Revoking stops a token at once.
import { api, fmtTime, h, showError, t, toast } from './core.js';
import { checkedValues, dangerButton, field, form, load, regionChecks, secretBox, select, split, table, val } from './admin-kit.js';
import { HUMAN_ROLES, regionsText } from './admin-users.js';

function tokenState(tok) {
  if (tok.revoked_at) return h('span', { class: 'adm-muted', text: t('adm_tok_revoked') });
  if (!tok.active) return h('span', { class: 'state-offline', text: t('adm_tok_expired') });
  return h('span', { class: 'state-online', text: t('adm_tok_active') });
}

export default {
  async mount(root) {
    let tokens = [];
    let regions = [];
    const listBox = h('div');
    const slot = h('div', { class: 'adm-secret-slot' });
    const regionSlot = h('div');

    const f = form({
      name: 'token',
      title: t('adm_tok_new'),
      submit: 'adm_create',
      fields: [
        field('adm_tok_name', h('input', { name: 'name', required: true, maxlength: '64', pattern: '\\S+',
          autocomplete: 'off' }), t('adm_tok_name_hint')),
        field('adm_tok_role', select('role', HUMAN_ROLES.map((r) => [r, t(`adm_role_${r}`)]), 'integrator')),
        field('adm_tok_expires', h('input', { name: 'expires_at', type: 'datetime-local' })),
        h('fieldset', { class: 'adm-fieldset' }, h('legend', { text: t('adm_tok_regions') }), regionSlot,
          h('small', { class: 'adm-hint', text: t('adm_user_regions_hint') })),
      ],
      onsubmit: async (el) => {
        const body = { name: val(el, 'name'), role: val(el, 'role'), region_codes: checkedValues(el, 'region_codes') };
        const exp = val(el, 'expires_at');
        if (exp) body.expires_at = new Date(exp).toISOString();
        const tok = await api('POST', '/tokens', body);
        el.reset();
        showSecret(tok);
        await refresh();
      },
      oncancel: (el) => { el.reset(); el.clearError(); },
    });

    const showSecret = (tok) => secretBox(slot, { name: tok.name, secret: tok.token, title: t('adm_tok_secret_title'),
      label: t('adm_tok_secret'), after: () => f.elements.name.focus() });

    const drawList = () => listBox.replaceChildren(table([
      ['adm_id', (k) => String(k.id)],
      ['adm_tok_name', (k) => k.name],
      ['adm_tok_role', (k) => t(`adm_role_${k.role}`)],
      ['adm_tok_regions', (k) => regionsText(regions, k.region_codes)],
      ['adm_tok_created', (k) => fmtTime(k.created_at)],
      ['adm_tok_by', (k) => k.created_by ?? ''],
      ['adm_tok_expiry', (k) => (k.expires_at ? fmtTime(k.expires_at) : t('adm_tok_never'))],
      ['adm_tok_state', tokenState],
      ['adm_actions', (k) => (k.revoked_at ? '' : dangerButton('adm_tok_revoke', async () => {
        try {
          await api('DELETE', `/tokens/${k.id}`);
          toast(t('adm_tok_revoked'));
          await refresh();
        } catch (e) { showError(e); }
      }))],
    ], tokens));

    async function refresh() {
      [tokens, regions] = await load('/tokens', '/regions');
      if (!regionSlot.firstChild) regionSlot.replaceChildren(regionChecks('region_codes', regions));
      drawList();
    }

    root.replaceChildren(split(h('div', {}, slot, listBox), f));
    await refresh();
    return () => slot.replaceChildren();
  },
};
