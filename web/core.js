// What every page of the console shares: the API client, strings and the language switch, an element
// builder, time formats, the notifications socket and toasts. Pages import from here and from nothing else
// of the shell (see app.js for the page contract).
import en from './i18n-en.js';
import zhCN from './i18n-zh-CN.js';

/** The strings of each language, one table per language (i18n-*.js); zh-CN is the reference. */
const STRINGS = { 'zh-CN': zhCN, en };
export const LANGS = ['zh-CN', 'en'];
export let lang = LANGS.includes(localStorage.getItem('vigil.lang')) ? localStorage.getItem('vigil.lang') : 'zh-CN';

/** Events: 'lang' (language changed), 'notification' (detail: a message of GET /notifications),
 *  'unauthorized' (the session ended). */
export const bus = new EventTarget();

/** The string of `key` in the current language; `{name}` placeholders are filled from `vars`. */
export function t(key, vars) {
  let s = STRINGS[lang][key] ?? STRINGS['zh-CN'][key] ?? key;
  if (vars) for (const [k, v] of Object.entries(vars)) s = s.replaceAll(`{${k}}`, String(v));
  return s;
}

export function setLang(l) {
  lang = l;
  localStorage.setItem('vigil.lang', l);
  document.documentElement.lang = l;
  bus.dispatchEvent(new Event('lang'));
}

/** Who is logged in: GET /me ({username, role, region_codes, ...}), set by the shell. */
export const session = { me: null };
export const can = (...roles) => !!session.me && roles.includes(session.me.role);

let csrf = sessionStorage.getItem('vigil.csrf');
export function setCsrf(token) {
  csrf = token;
  if (token) sessionStorage.setItem('vigil.csrf', token); else sessionStorage.removeItem('vigil.csrf');
}

export class ApiError extends Error {
  constructor(status, code, message) { super(message); this.status = status; this.code = code; }
}

// The server explains itself in English. A zh-CN reader gets the kind of refusal in Chinese first and the
// server's detail after it (it names the field, the limit or what is left), or a whole Chinese sentence
// where the detail adds nothing. English readers get the server's message as it is.
const WHOLE_SENTENCE = new Set(['not_found', 'internal', 'unauthorized', 'bad_credentials', 'no_footage',
  'too_many_requests']);

/** The message of an API error in the reader's language (see above). */
export function errorText(code, message) {
  const key = `err_${code}`;
  if (lang !== 'zh-CN' || !(key in STRINGS['zh-CN'])) return message;
  return WHOLE_SENTENCE.has(code) || !message ? t(key) : `${t(key)}：${message}`;
}

/** Calls /api/v1`path`. Resolves to the JSON answer (null for 204); rejects with an ApiError carrying the
 *  server's message. A 401 also tells the shell, which shows the login. */
export async function api(method, path, body) {
  const headers = {};
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  if (csrf && method !== 'GET') headers['X-CSRF-Token'] = csrf;
  const r = await fetch('/api/v1' + path, {
    method, headers, body: body === undefined ? undefined : JSON.stringify(body), credentials: 'same-origin',
  });
  if (r.status === 204) return null;
  const type = r.headers.get('content-type') || '';
  const data = type.includes('json') ? await r.json().catch(() => null) : null;
  if (!r.ok) {
    if (r.status === 401 && path !== '/session') bus.dispatchEvent(new Event('unauthorized'));
    const code = data?.error?.code || String(r.status);
    throw new ApiError(r.status, code, errorText(code, data?.error?.message || r.statusText));
  }
  return data;
}

/** Builds an element: h('button', {class: 'x', onclick: f, text: 'Go'}, child, [more children]).
 *  Props: class, text, html is deliberately absent (never inject markup), dataset, style (object or string),
 *  on<event> handlers, anything else as an attribute (false/null omits it, true sets it empty). */
export function h(tag, props, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(props || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === 'class') el.className = v;
    else if (k === 'text') el.textContent = v;
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else if (k === 'style' && typeof v === 'object') Object.assign(el.style, v);
    else if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (k in el && typeof v !== 'string') el[k] = v;
    else el.setAttribute(k, v === true ? '' : v);
  }
  const add = (c) => {
    if (c === null || c === undefined || c === false) return;
    if (Array.isArray(c)) c.forEach(add);
    else el.append(c instanceof Node ? c : String(c));
  };
  children.forEach(add);
  return el;
}

const pad = (n, w = 2) => String(n).padStart(w, '0');
/** Local date `YYYY-MM-DD` of a Date. */
export const ymd = (d) => `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`;
/** Local `YYYY-MM-DD HH:mm:ss` of an RFC 3339 string, a Date or milliseconds. */
export function fmtTime(v) {
  if (v === null || v === undefined || v === '') return '';
  const d = v instanceof Date ? v : new Date(v);
  if (Number.isNaN(d.getTime())) return String(v);
  return `${ymd(d)} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}
/** `HH:mm:ss` of a Date or milliseconds. */
export function fmtClock(v) {
  const d = v instanceof Date ? v : new Date(v);
  return `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}
/** The local day `YYYY-MM-DD` as [start, end) Dates. */
export function dayBounds(day) {
  const [y, m, d] = day.split('-').map(Number);
  return [new Date(y, m - 1, d), new Date(y, m - 1, d + 1)];
}
export function fmtBytes(n) {
  if (n === null || n === undefined) return '';
  const u = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (n >= 1024 && i < u.length - 1) { n /= 1024; i += 1; }
  return `${n.toFixed(i ? 1 : 0)} ${u[i]}`;
}

const MAX_TOASTS = 4;

/** A short message at the bottom of the screen; kind: 'info' | 'error'. */
export function toast(message, kind = 'info') {
  const box = document.getElementById('toasts');
  if (!box) return;
  const el = h('div', { class: `toast toast-${kind}`, role: kind === 'error' ? 'alert' : 'status', text: message });
  box.append(el);
  // A burst of actions (a tour, a batch of alarms) must not bury the screen: the newest few stay.
  while (box.children.length > MAX_TOASTS) box.firstElementChild.remove();
  setTimeout(() => el.remove(), kind === 'error' ? 8000 : 4000);
}

/** Shows an error of an API call as a toast and returns null, for `.catch(showError)`. */
export function showError(e) {
  if (!(e instanceof ApiError && e.status === 401)) toast(e.message || String(e), 'error');
  return null;
}

let ws = null;
let wsRetry = 1000;
/** Keeps one WebSocket on GET /notifications while logged in; each message is dispatched on `bus`. */
export function connectNotifications() {
  if (ws) return;
  const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
  ws = new WebSocket(`${proto}//${location.host}/api/v1/notifications`);
  ws.onopen = () => { wsRetry = 1000; };
  ws.onmessage = (ev) => {
    let m;
    try { m = JSON.parse(ev.data); } catch (_) { return; }
    bus.dispatchEvent(new CustomEvent('notification', { detail: m }));
  };
  ws.onclose = () => {
    const was = ws;
    ws = null;
    if (was && was.vigilStopped) return;
    setTimeout(() => { if (session.me) connectNotifications(); }, wsRetry);
    wsRetry = Math.min(wsRetry * 2, 30000);
  };
}
export function disconnectNotifications() {
  if (!ws) return;
  ws.vigilStopped = true;
  ws.close();
  ws = null;
}

/** Adds a page's own stylesheet (`/wall.css`, ...) once. */
export function stylesheet(href) {
  if (document.querySelector(`link[rel=stylesheet][href="${href}"]`)) return;
  document.head.append(h('link', { rel: 'stylesheet', href }));
}
