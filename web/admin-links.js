// Administration, 联网 tab (docs/federation.md): this server's links to the servers below it (a province's
// cities, a city's districts) and the credentials it issued to the servers above it.
// - Links: each linked server with its state (up, down, paused), last contact, error and the cameras it
//   shares; pause, resume and delete; a form that links a server with the credential its admin issued.
// - Credentials: each one issued with the regions it shares, its state and last use; pause, resume and
//   revoke (for good); a form that issues one, shown once, like a token.
// Refreshes every 5 s while open, so that a city going down or coming back shows as it happens.
import { api, fmtTime, h, showError, t, toast } from './core.js';
import { checkedValues, dangerButton, field, form, load, regionChecks, secretBox, smallButton, table, val } from './admin-kit.js';
import { regionsText } from './admin-users.js';

const REFRESH_MS = 5000;
const STATE_CLASS = { up: 'state-online', down: 'state-offline', paused: 'state-connecting' };

const linkState = (l) => h('span', { class: STATE_CLASS[l.state] || '', text: t(`adm_ln_${l.state}`) });

function grantState(g) {
  if (g.revoked_at) return h('span', { class: 'adm-muted', text: t('adm_tok_revoked') });
  if (g.paused) return h('span', { class: 'state-connecting', text: t('adm_ln_paused') });
  return h('span', { class: 'state-online', text: t('adm_tok_active') });
}

/** Pause or resume `path` ({paused}), then `done`. */
const pauseButton = (paused, path, done) => smallButton(paused ? 'adm_ln_resume' : 'adm_ln_pause', async () => {
  try {
    await api('PATCH', path, { paused: !paused });
    await done();
  } catch (e) { showError(e); }
});

export default {
  async mount(root) {
    let regions = [];
    const linksBox = h('div', { 'aria-live': 'polite' });
    const grantsBox = h('div');
    const slot = h('div', { class: 'adm-secret-slot' });
    const regionSlot = h('div');

    const refresh = async () => {
      const [{ links }, { credentials }] = await load('/links', '/link-credentials');
      linksBox.replaceChildren(table([
        ['adm_ln_name', (l) => h('div', {}, h('strong', { text: l.name }), h('br'), h('small', { class: 'adm-muted', text: l.url }))],
        ['adm_ln_state', linkState],
        ['adm_ln_contact', (l) => (l.last_contact ? fmtTime(l.last_contact) : '—')],
        ['adm_ln_error', (l) => h('small', { text: l.error || '' })],
        ['adm_ln_cameras', (l) => String(l.cameras)],
        ['adm_actions', (l) => h('div', { class: 'adm-buttons' }, pauseButton(l.state === 'paused', `/links/${l.id}`, refresh),
          dangerButton('adm_delete', async () => {
            try {
              await api('DELETE', `/links/${l.id}`);
              toast(t('adm_ln_deleted', { name: l.name }));
              await refresh();
            } catch (e) { showError(e); }
          }))],
      ], links, { empty: 'adm_ln_none', rowProps: (l) => ({ dataset: { link: l.name, state: l.state } }) }));
      grantsBox.replaceChildren(table([
        ['adm_ln_grantee', (g) => g.name],
        ['adm_tok_regions', (g) => regionsText(regions, g.region_codes)],
        ['adm_tok_state', grantState],
        ['adm_tok_created', (g) => fmtTime(g.created_at)],
        ['adm_tok_by', (g) => g.created_by],
        ['adm_ln_used', (g) => (g.last_used_at ? fmtTime(g.last_used_at) : '—')],
        ['adm_actions', (g) => (g.revoked_at ? '' : h('div', { class: 'adm-buttons' },
          pauseButton(g.paused, `/link-credentials/${g.id}`, refresh),
          dangerButton('adm_tok_revoke', async () => {
            try {
              await api('DELETE', `/link-credentials/${g.id}`);
              toast(t('adm_tok_revoked'));
              await refresh();
            } catch (e) { showError(e); }
          })))],
      ], credentials, { empty: 'adm_ln_no_grants', rowProps: (g) => ({ dataset: { grant: g.name } }) }));
    };

    const linkForm = form({
      name: 'link',
      title: t('adm_ln_new'),
      submit: 'adm_ln_link',
      fields: [
        field('adm_ln_name', h('input', { name: 'name', required: true, maxlength: '100', autocomplete: 'off' }),
          t('adm_ln_name_hint')),
        field('adm_ln_url', h('input', { name: 'url', type: 'url', required: true, placeholder: 'https://city.example:8443' })),
        field('adm_ln_credential', h('input', { name: 'credential', required: true, autocomplete: 'off', spellcheck: 'false' }),
          t('adm_ln_credential_hint')),
      ],
      onsubmit: async (el) => {
        const r = await api('POST', '/links', { name: val(el, 'name'), url: val(el, 'url'), credential: val(el, 'credential') });
        el.reset();
        toast(t('adm_ln_linked', { name: r.name, n: r.cameras }));
        await refresh();
      },
      oncancel: (el) => { el.reset(); el.clearError(); },
    });

    const grantForm = form({
      name: 'grant',
      title: t('adm_ln_new_grant'),
      submit: 'adm_create',
      fields: [
        field('adm_ln_grantee', h('input', { name: 'name', required: true, maxlength: '100', autocomplete: 'off' }),
          t('adm_ln_grantee_hint')),
        h('fieldset', { class: 'adm-fieldset' }, h('legend', { text: t('adm_ln_shared') }), regionSlot),
      ],
      onsubmit: async (el) => {
        const g = await api('POST', '/link-credentials', { name: val(el, 'name'), region_codes: checkedValues(el, 'region_codes') });
        el.reset();
        secretBox(slot, { name: g.name, secret: g.credential, title: t('adm_ln_secret_title'), label: t('adm_ln_credential'),
          after: () => grantForm.elements.name.focus() });
        await refresh();
      },
      oncancel: (el) => { el.reset(); el.clearError(); },
    });

    [regions] = await load('/regions');
    regionSlot.replaceChildren(regionChecks('region_codes', regions));
    root.replaceChildren(h('div', { class: 'adm-split' },
      h('div', { class: 'adm-list' }, h('h3', { text: t('adm_ln_links') }), linksBox,
        h('h3', { text: t('adm_ln_grants') }), slot, grantsBox),
      h('aside', { class: 'adm-side' }, linkForm, grantForm)));
    await refresh();
    const timer = setInterval(() => { refresh().catch(() => {}); }, REFRESH_MS);
    return () => { clearInterval(timer); slot.replaceChildren(); };
  },
};
