// The console's shell: login, the navigation by role, the language switch and the router.
//
// Pages are ES modules loaded on first use. Each exports a default object:
//   { title: 'string key', roles: ['admin', ...], mount(root, route) }
// `mount` fills `root` (an empty <section>) and may return a function that the shell calls when the page is
// left (stop players, timers, listeners). `route` is { parts: ['cases', 'ZW-1'], query: URLSearchParams }
// from the address `#/cases/ZW-1?x=y`. Pages talk to the server only through core.js's `api`.
import { api, bus, can, connectNotifications, disconnectNotifications, h, lang, LANGS, session, setCsrf, setLang,
  showError, t } from './core.js';

/** The pages, in the order of the navigation. */
const PAGES = [
  { id: 'wall', label: 'nav_wall', module: './wall.js', roles: ['admin', 'supervisor'], key: '1' },
  { id: 'cases', label: 'nav_cases', module: './cases.js', roles: ['admin', 'investigator'], key: '2' },
  { id: 'playback', label: 'nav_playback', module: './playback.js', roles: ['admin', 'supervisor', 'investigator'], key: '3' },
  { id: 'admin', label: 'nav_admin', module: './admin.js', roles: ['admin'], key: '4' },
];

const $ = (s) => document.querySelector(s);
let leave = null;
let shown = null;

function translate() {
  document.documentElement.lang = lang;
  document.title = `Vigil ${t('title')}`;
  document.querySelectorAll('[data-t]').forEach((el) => { el.textContent = t(el.dataset.t); });
  $('#lang').textContent = t('lang_switch');
  renderNav();
}

function renderNav() {
  const nav = $('#pages');
  nav.replaceChildren();
  if (!session.me) return;
  for (const p of PAGES.filter((p) => can(...p.roles))) {
    nav.append(h('a', { href: `#/${p.id}`, dataset: { page: p.id }, text: t(p.label),
      title: `Alt+${p.key}`, 'aria-current': shown === p.id ? 'page' : null }));
  }
}

function parseRoute() {
  const [path, q] = location.hash.replace(/^#\/?/, '').split('?');
  return { parts: path.split('/').filter(Boolean).map(decodeURIComponent), query: new URLSearchParams(q || '') };
}

/** Counts route() calls: an address changed while a page module was loading supersedes it. */
let routing = 0;

async function route() {
  if (!session.me) return;
  const mine = ++routing;
  const r = parseRoute();
  const allowed = PAGES.filter((p) => can(...p.roles));
  if (!r.parts.length) {
    if (allowed.length) location.replace(`#/${allowed[0].id}`);
    else show(null, h('p', { class: 'empty', text: t('no_console') }));
    return;
  }
  const page = allowed.find((p) => p.id === r.parts[0]);
  if (!page) { show(null, h('p', { class: 'empty', text: t('not_found') })); return; }
  let mod;
  try {
    mod = (await import(page.module)).default;
  } catch (e) {
    if (mine === routing) show(null, h('p', { class: 'empty', role: 'alert', text: `${t('page_failed')}: ${e.message}` }));
    return;
  }
  // Modules load in any order: a page asked for later (the shell's redirect to the first page, then a click,
  // or two quick clicks) must not be replaced by one asked for earlier whose module arrived last.
  if (mine !== routing) return;
  const root = h('section', { class: `page page-${page.id}`, id: 'view-root' });
  show(page.id, root);
  let cleanup = null;
  try {
    cleanup = (await mod.mount(root, r)) || null;
  } catch (e) {
    showError(e);
  }
  // The user may have left while the page was loading: its cleanup then runs at once, and never stands in
  // for the cleanup of the page now shown.
  if (root.isConnected) leave = cleanup;
  else if (cleanup) { try { cleanup(); } catch (_) { /* ignore */ } }
}

function show(id, content) {
  if (leave) { try { leave(); } catch (_) { /* a page that fails to clean up must not stop the next */ } }
  leave = null;
  shown = id;
  document.body.dataset.page = id || '';
  $('#view').replaceChildren(content);
  renderNav();
}

function showLogin() {
  if (leave) { try { leave(); } catch (_) { /* ignore */ } leave = null; }
  session.me = null;
  disconnectNotifications();
  $('#view').replaceChildren();
  $('#login').hidden = false;
  $('#whoami').hidden = true;
  $('#logout').hidden = true;
  renderNav();
  $('#login input[name=username]').focus();
}

async function start() {
  session.me = await api('GET', '/me');
  if (session.me.csrf_token) setCsrf(session.me.csrf_token);
  $('#login').hidden = true;
  $('#logout').hidden = false;
  $('#whoami').hidden = false;
  $('#whoami').textContent = session.me.name;
  connectNotifications();
  renderNav();
  await route();
}

$('#login').addEventListener('submit', async (e) => {
  e.preventDefault();
  const f = new FormData(e.target);
  try {
    const r = await api('POST', '/session', { username: f.get('username'), password: f.get('password') });
    setCsrf(r.csrf_token);
    $('#login-error').textContent = '';
    e.target.reset();
    await start();
  } catch (err) {
    $('#login-error').textContent = err.status === 429 ? t('locked') : t('bad_login');
  }
});
$('#logout').addEventListener('click', async () => {
  await api('DELETE', '/session').catch(() => {});
  setCsrf(null);
  showLogin();
});
$('#lang').addEventListener('click', () => setLang(LANGS[(LANGS.indexOf(lang) + 1) % LANGS.length]));
bus.addEventListener('lang', translate);
bus.addEventListener('unauthorized', showLogin);
window.addEventListener('hashchange', route);
document.addEventListener('keydown', (e) => {
  if (!e.altKey || e.ctrlKey || e.metaKey) return;
  const p = PAGES.find((x) => x.key === e.key && can(...x.roles));
  if (p) { e.preventDefault(); location.hash = `#/${p.id}`; }
});

translate();
start().catch(showLogin);
