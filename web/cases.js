// Case search (案件调阅), route #/cases?q=&from=&to=&site_id=&case_type=&card=, and the case page at
// #/cases/<case_no> (case.js). An investigator starts from a case or bid project number (a prefix is
// enough), narrows by days, site, type and card, and opens a case.
//
// Invariants: the search lives in the address (submitting sets it, the router remounts and searches), so a
// search can be bookmarked and the back button returns to it; days are local days, sent as the RFC 3339
// bounds of [first day 00:00, day after the last 00:00) and matched against each case's activity
// (GET /cases: last_at >= from and first_at < to); pages of 50 follow `next_after`.
import { api, dayBounds, fmtTime, h, showError, stylesheet, t } from './core.js';
import { cardLabel, remountOnLang, statusLabel, typeLabel } from './case-terms.js';

const FIELDS = ['q', 'from', 'to', 'site_id', 'case_type', 'card'];

/** The GET /cases query of the search form's values (days become RFC 3339 bounds). */
function apiQuery(v, after) {
  const p = new URLSearchParams();
  if (v.q) p.set('q', v.q);
  if (v.from) p.set('from', dayBounds(v.from)[0].toISOString());
  if (v.to) p.set('to', dayBounds(v.to)[1].toISOString());
  for (const k of ['site_id', 'case_type', 'card']) if (v[k]) p.set(k, v[k]);
  if (after) p.set('after', after);
  return p.toString();
}

function select(name, label, value, options) {
  return h('label', {}, label, h('select', { name },
    h('option', { value: '', text: t('cs_any') }),
    options.map(([v, text]) => h('option', { value: v, text, selected: v === value }))));
}

async function search(root, route) {
  const v = Object.fromEntries(FIELDS.map((k) => [k, route.query.get(k) || '']));
  const sites = (await api('GET', '/sites').catch(showError)) || [];
  const siteName = new Map(sites.map((s) => [s.id, s.name]));
  const form = h('form', { class: 'cs-form', role: 'search', title: t('cs_help') },
    h('label', { class: 'cs-q' }, t('cs_q'), h('input', { name: 'q', value: v.q, placeholder: t('cs_q_hint'),
      autocomplete: 'off', maxlength: '64' })),
    h('label', {}, t('cs_from'), h('input', { type: 'date', name: 'from', value: v.from })),
    h('label', {}, t('cs_to'), h('input', { type: 'date', name: 'to', value: v.to })),
    select('site_id', t('cs_site'), v.site_id, sites.map((s) => [String(s.id), s.name])),
    select('case_type', t('cs_type'), v.case_type, [['approval', typeLabel('approval')], ['bid', typeLabel('bid')]]),
    select('card', t('cs_card'), v.card, ['none', 'yellow', 'red'].map((c) => [c, cardLabel(c)])),
    h('div', { class: 'cs-buttons' },
      h('button', { type: 'submit', text: t('cs_search') }),
      h('button', { type: 'button', class: 'secondary', text: t('cs_reset'), onclick: () => { location.hash = '#/cases'; } })));
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    const f = new FormData(form);
    const p = new URLSearchParams();
    for (const k of FIELDS) { const x = String(f.get(k) || '').trim(); if (x) p.set(k, x); }
    const next = `#/cases?${p}`;
    // The same search again (after new events arrived) must still run: the router only reacts to changes.
    if (location.hash === next) window.dispatchEvent(new HashChangeEvent('hashchange'));
    else location.hash = next;
  });
  const body = h('tbody');
  const count = h('p', { class: 'muted', role: 'status' });
  const more = h('button', { type: 'button', class: 'secondary', text: t('cs_more'), hidden: true });
  const table = h('table', { class: 'cs-results' },
    h('thead', {}, h('tr', {}, [t('cs_no'), t('cs_type'), t('cs_status'), t('cs_card'), t('cs_site'), t('cs_first'),
      t('cs_last'), t('cs_events')].map((x) => h('th', { scope: 'col', text: x })))),
    body);
  root.append(h('h2', { text: t('cs_title') }), form, count, table, more);
  form.querySelector('input[name=q]').focus();

  let shown = 0;
  const load = async (after) => {
    more.disabled = true;
    const r = await api('GET', `/cases?${apiQuery(v, after)}`).catch(showError);
    more.disabled = false;
    if (!r) return;
    for (const c of r.cases) {
      // A linked city's case (at a province) opens through its link, named beside its number.
      const via = c.link ? `?link=${encodeURIComponent(c.link)}` : '';
      const href = `#/cases/${encodeURIComponent(c.case_no)}${via}`;
      body.append(h('tr', { dataset: { case: c.case_no } },
        h('td', {}, h('a', { href, text: c.case_no }), c.link ? h('span', { class: 'tag badge-link', title: t('badge_link_hint'), text: c.link }) : null),
        h('td', { text: typeLabel(c.case_type) }),
        h('td', { text: statusLabel(c.status) }),
        h('td', { class: `card-${c.card}`, text: c.card === 'none' ? '' : cardLabel(c.card) }),
        h('td', { text: siteName.get(c.site_id) || String(c.site_id) }),
        h('td', { text: fmtTime(c.first_at) }),
        h('td', { text: fmtTime(c.last_at) }),
        h('td', { class: 'num', text: String(c.events) })));
    }
    shown += r.cases.length;
    count.textContent = shown ? t('cs_count', { n: shown }) : t('cs_none');
    more.hidden = !r.next_after;
    more.onclick = () => load(r.next_after);
  };
  root.dataset.search = apiQuery(v);
  await load(null);
  root.dataset.ready = 'true';
  return remountOnLang();
}

export default {
  title: 'nav_cases',
  roles: ['admin', 'investigator'],
  async mount(root, route) {
    stylesheet('/cases.css');
    if (route.parts[1]) return (await import('./case.js')).mountCase(root, route.parts[1], route);
    return search(root, route);
  },
};
