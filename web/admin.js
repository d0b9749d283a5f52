// 系统管理 (Administration), for admins: one tab per kind of thing an administrator keeps, at #/admin/<tab>
// (regions, sites, positions, cameras, NVR import, ONVIF discovery, GB/T 28181 devices, users, tokens, links to other
// servers, audit log, system health, cluster nodes).
//
// This module is only the frame: the tab bar and the loading of the tab's module (admin-<tab>.js), which
// exports { mount(root, route) } and may return a clean-up function, like a page of the shell. A language
// switch re-mounts the tab, so every string is drawn again in the new language. Everything a tab shows is
// scoped by the server to the admin's regions; the pages never filter for security.
import { bus, h, showError, stylesheet, t } from './core.js';

const TABS = ['regions', 'sites', 'positions', 'cameras', 'nvr', 'onvif', 'gb', 'users', 'tokens', 'links', 'audit', 'health',
  'nodes'];
const DEFAULT = 'sites';

export default {
  title: 'nav_admin',
  roles: ['admin'],
  async mount(root, route) {
    stylesheet('/admin.css');
    const tab = TABS.includes(route.parts[1]) ? route.parts[1] : DEFAULT;
    let cleanup = null;
    let gen = 0;

    const draw = async () => {
      const mine = ++gen;
      if (cleanup) { try { cleanup(); } catch (_) { /* a tab that fails to clean up must not block the next */ } }
      cleanup = null;
      const nav = h('nav', { class: 'adm-tabs', 'aria-label': t('adm_tabs'), title: t('adm_tab_keys') },
        TABS.map((id) => h('a', { href: `#/admin/${id}`, dataset: { tab: id }, text: t(`adm_tab_${id}`),
          'aria-current': id === tab ? 'page' : null })));
      const body = h('div', { class: `adm-body adm-${tab}` });
      root.replaceChildren(nav, body);
      try {
        const mod = (await import(`./admin-${tab}.js`)).default;
        if (mine !== gen) return;
        cleanup = (await mod.mount(body, route)) || null;
      } catch (e) {
        showError(e);
      }
    };

    // `[` and `]` step through the tabs, unless the user is typing.
    const onKey = (e) => {
      if (e.altKey || e.ctrlKey || e.metaKey || (e.key !== '[' && e.key !== ']')) return;
      if (e.target.closest?.('input, select, textarea')) return;
      const i = TABS.indexOf(tab) + (e.key === ']' ? 1 : -1);
      location.hash = `#/admin/${TABS[(i + TABS.length) % TABS.length]}`;
    };
    const onLang = () => { draw(); };
    bus.addEventListener('lang', onLang);
    document.addEventListener('keydown', onKey);
    await draw();
    // Coming from the tab bar, keep the keyboard on it rather than losing focus to <body>.
    root.querySelector(`.adm-tabs a[data-tab="${tab}"]`)?.focus({ preventScroll: true });
    return () => {
      gen += 1;
      bus.removeEventListener('lang', onLang);
      document.removeEventListener('keydown', onKey);
      if (cleanup) cleanup();
    };
  },
};
