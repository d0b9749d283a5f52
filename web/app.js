// A first console: log in, then every camera of the user's jurisdiction by site, with its state. Those who
// may watch live (admins, supervisors) get a live tile per camera (<vigil-live>, its own stream when the
// camera has a sub stream, never a transcode); others a snapshot refreshed every few seconds. The live
// wall, playback and administration pages replace it.
import './live-player.js';
const T = {
  'zh-CN': { title: '视频监察', login: '登录', username: '用户名', password: '密码', signin: '登录', logout: '退出',
    lang: 'English', bad: '用户名或密码错误', none: '没有可查看的摄像机',
    states: { online: '在线', offline: '离线', connecting: '连接中', auth_failed: '认证失败', unsupported: '不支持' } },
  en: { title: 'Video supervision', login: 'Log in', username: 'Username', password: 'Password', signin: 'Log in',
    logout: 'Log out', lang: '中文', bad: 'Wrong username or password', none: 'No camera to show',
    states: { online: 'online', offline: 'offline', connecting: 'connecting', auth_failed: 'auth failed', unsupported: 'unsupported' } },
};
let lang = localStorage.getItem('vigil.lang') || 'zh-CN';
let csrf = sessionStorage.getItem('vigil.csrf');
let timer;
let canWatch = false;
const $ = (s) => document.querySelector(s);
const t = (k) => T[lang][k];

function translate() {
  document.documentElement.lang = lang;
  document.querySelectorAll('[data-t]').forEach((el) => { el.textContent = t(el.dataset.t); });
  $('#lang').textContent = t('lang');
}

async function api(method, path, body) {
  const headers = { 'Content-Type': 'application/json' };
  if (csrf) headers['X-CSRF-Token'] = csrf;
  const r = await fetch('/api/v1' + path, { method, headers, body: body ? JSON.stringify(body) : undefined });
  if (r.status === 401) { showLogin(); throw new Error('unauthorized'); }
  return r.status === 204 ? null : r.json();
}

function showLogin() {
  clearInterval(timer);
  $('#login').hidden = false; $('#cameras').hidden = true; $('#logout').hidden = true;
}

async function showCameras() {
  $('#login').hidden = true; $('#cameras').hidden = false; $('#logout').hidden = false;
  const [sites, cameras] = await Promise.all([api('GET', '/sites'), api('GET', '/cameras')]);
  const root = $('#cameras');
  root.replaceChildren();
  if (!cameras.length) { root.textContent = t('none'); return; }
  for (const site of sites) {
    const mine = cameras.filter((c) => c.site_id === site.id);
    if (!mine.length) continue;
    const sec = document.createElement('div'); sec.className = 'site';
    const h = document.createElement('h2'); h.textContent = site.name; sec.append(h);
    const grid = document.createElement('div'); grid.className = 'grid';
    for (const cam of mine) {
      const tile = document.createElement('figure'); tile.className = 'tile'; tile.dataset.camera = cam.id;
      tile.style.margin = '0';
      const img = canWatch ? document.createElement('vigil-live') : document.createElement('img');
      if (canWatch) {
        img.setAttribute('camera', cam.id);
        img.setAttribute('stream', cam.sub_url ? 'sub' : 'main');
      } else {
        img.alt = cam.name;
      }
      const label = document.createElement('figcaption'); label.className = 'label';
      const name = document.createElement('span'); name.textContent = cam.name;
      const state = document.createElement('span'); state.className = 'state';
      label.append(name, state); tile.append(img, label); grid.append(tile);
    }
    sec.append(grid); root.append(sec);
  }
  refresh();
  clearInterval(timer);
  timer = setInterval(refresh, 5000);
}

async function refresh() {
  for (const tile of document.querySelectorAll('.tile')) {
    const id = tile.dataset.camera;
    const st = await api('GET', `/cameras/${id}/status`).catch(() => null);
    if (!st) continue;
    const el = tile.querySelector('.state');
    el.className = `state state-${st.state}`;
    el.textContent = t('states')[st.state] + (st.fps ? ` ${Math.round(st.fps)} fps` : '');
    const img = tile.querySelector('img');
    if (img && st.state === 'online') img.src = `/api/v1/cameras/${id}/snapshot.jpg?width=480&t=${Date.now()}`;
  }
}

$('#login').addEventListener('submit', async (e) => {
  e.preventDefault();
  const f = new FormData(e.target);
  const r = await fetch('/api/v1/session', { method: 'POST', headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ username: f.get('username'), password: f.get('password') }) });
  if (!r.ok) { $('#login-error').textContent = t('bad'); return; }
  csrf = (await r.json()).csrf_token; sessionStorage.setItem('vigil.csrf', csrf);
  $('#login-error').textContent = '';
  start();
});
$('#logout').addEventListener('click', async () => { await api('DELETE', '/session').catch(() => {}); csrf = null; sessionStorage.removeItem('vigil.csrf'); showLogin(); });
$('#lang').addEventListener('click', () => { lang = lang === 'en' ? 'zh-CN' : 'en'; localStorage.setItem('vigil.lang', lang); translate(); refresh(); });

translate();
async function start() {
  const me = await api('GET', '/me');
  canWatch = me.role === 'admin' || me.role === 'supervisor';
  await showCameras();
}
api('GET', '/me').then(start).catch(showLogin);
