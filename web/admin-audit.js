// Administration, 审计日志 tab: who logged in, watched, played back, exported or changed what (GET /audit),
// newest first, filtered by actor, action and time. The server caps each answer (limit); "older" asks for
// the rows before the oldest shown, so a long log is read page by page without loading it all. The log is
// append-only and hash-chained on the server; this page only reads it.
import { api, fmtTime, h, t } from './core.js';
import { field, form, select, table, val } from './admin-kit.js';

// The audit actions the server writes (api::routes and the login), offered as suggestions.
const ACTIONS = ['login', 'login_failed', 'login_locked', 'login_throttled', 'logout', 'live.start', 'live.stop',
  'playback', 'camera.snapshot', 'camera.test', 'camera.create', 'camera.update', 'camera.delete', 'nvr.import',
  'region.create', 'site.create', 'site.update', 'site.delete', 'position.create', 'case_rules.update',
  'events.post', 'case.view', 'export.create', 'export.download', 'hold.create', 'user.create', 'user.update',
  'user.delete', 'user.unlock', 'token.create', 'token.revoke', 'live.stats_reset'];

/** A datetime-local value as RFC 3339 (the browser's zone), or null when empty. */
const rfc3339 = (local) => (local ? new Date(local).toISOString() : null);

export default {
  async mount(root) {
    let rows = [];
    let query = null;
    const listBox = h('div', { class: 'adm-audit-list' });
    const more = h('button', { type: 'button', class: 'secondary', text: t('adm_aud_older'), hidden: true,
      onclick: () => page(true).catch((e) => f.fail(e.message)) });
    const count = h('span', { class: 'adm-muted', role: 'status' });

    const f = form({
      name: 'audit',
      title: t('adm_aud_filters'),
      submit: 'adm_aud_search',
      fields: h('div', { class: 'adm-filters' },
        field('adm_aud_actor', h('input', { name: 'actor', autocomplete: 'off' })),
        field('adm_aud_action', h('input', { name: 'action', list: 'adm-actions', autocomplete: 'off' })),
        h('datalist', { id: 'adm-actions' }, ACTIONS.map((a) => h('option', { value: a }))),
        field('adm_aud_from', h('input', { name: 'from', type: 'datetime-local', step: '1' })),
        field('adm_aud_to', h('input', { name: 'to', type: 'datetime-local', step: '1' })),
        field('adm_aud_limit', select('limit', [[100, '100'], [500, '500'], [1000, '1000']], 100))),
      onsubmit: async (el) => {
        query = { actor: val(el, 'actor'), action: val(el, 'action'), from: rfc3339(val(el, 'from')),
          to: rfc3339(val(el, 'to')), limit: Number(val(el, 'limit')) };
        await page(false);
      },
      oncancel: (el) => { el.reset(); el.clearError(); el.requestSubmit(); },
    });
    f.classList.add('adm-form-wide');

    // One page: the first (older=false) or the rows before the oldest shown. `to` is exclusive on the
    // server, so the next page starts 1 ms after the oldest row and rows already shown are skipped by id.
    async function page(older) {
      const q = new URLSearchParams();
      for (const k of ['actor', 'action', 'from']) if (query[k]) q.set(k, query[k]);
      const oldest = rows[rows.length - 1];
      const to = older && oldest ? new Date(Date.parse(oldest.at) + 1).toISOString() : query.to;
      if (to) q.set('to', to);
      q.set('limit', String(query.limit));
      const got = await api('GET', `/audit?${q}`);
      const seen = new Set(older ? rows.map((r) => r.id) : []);
      const fresh = got.filter((r) => !seen.has(r.id));
      rows = older ? rows.concat(fresh) : got;
      more.hidden = got.length < query.limit || (older && !fresh.length);
      count.textContent = `${t('adm_aud_count', { n: rows.length })}${more.hidden && rows.length ? ` · ${t('adm_aud_end')}` : ''}`;
      draw();
    }

    function draw() {
      listBox.replaceChildren(table([
        ['adm_aud_at', (r) => h('time', { datetime: r.at, text: fmtTime(r.at) })],
        ['adm_aud_actor', (r) => r.actor],
        ['adm_aud_role', (r) => (r.role ? t(`adm_role_${r.role}`) : '')],
        ['adm_aud_action', (r) => h('code', { text: r.action })],
        ['adm_aud_target', (r) => r.target ?? ''],
        ['adm_aud_region', (r) => r.region_code ?? ''],
        ['adm_aud_status', (r) => h('span', { class: r.status >= 400 ? 'state-offline' : 'adm-muted', text: String(r.status) })],
        ['adm_aud_client', (r) => r.client ?? ''],
        ['adm_aud_detail', (r) => r.detail ?? ''],
      ], rows, { rowProps: (r) => ({ dataset: { id: String(r.id), action: r.action } }) }));
    }

    root.replaceChildren(f, h('div', { class: 'adm-toolbar' }, count), listBox, h('div', { class: 'adm-more' }, more));
    f.requestSubmit();
  },
};
