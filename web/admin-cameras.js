// Administration, 摄像机 tab: every camera in the admin's regions with its live state and whether it is
// recording now, filtered by site or text; the form beside it adds, edits and tests cameras
// (admin-camera-form.js). States follow the notifications socket (camera_status) at once and a poll every
// 5 s as a safety net; a poll only rewrites the state cells when the set of cameras is unchanged, so the
// keyboard focus in the table survives it.
import { api, bus, h, showError, t, toast } from './core.js';
import { dangerButton, field, load, own, select, smallButton, split, stateBadge, table } from './admin-kit.js';
import { cameraForm } from './admin-camera-form.js';

const POLL_MS = 5000;

export default {
  async mount(root, route) {
    let [cameras, sites] = await load('/cameras', '/sites');
    if (!sites.length) { root.replaceChildren(h('p', { class: 'empty', text: t('adm_cams_no_site') })); return; }
    const siteParam = Number(route.query.get('site')) || null;
    const siteName = (id) => sites.find((s) => s.id === id)?.name ?? `#${id}`;
    const listBox = h('div');
    const count = h('span', { class: 'adm-muted' });
    let drawnIds = '';

    const siteFilter = select('site', [['', t('adm_all')], ...sites.map((s) => [s.id, s.name])], siteParam ?? '',
      { onchange: () => drawList() });
    const search = h('input', { type: 'search', name: 'q', placeholder: t('adm_cams_search'),
      oninput: () => drawList() });
    const shown = () => {
      const site = Number(siteFilter.value) || null;
      const q = search.value.trim().toLowerCase();
      return cameras.filter((c) => (!site || c.site_id === site)
        && (!q || `${c.name} ${c.main_url} ${c.sub_url ?? ''}`.toLowerCase().includes(q)));
    };

    const f = cameraForm({ sites, site: siteParam, onsaved: () => refresh() });

    const recCell = (c) => h('span', { class: c.recording ? 'adm-rec' : 'adm-muted',
      text: c.recording ? `● ${t('adm_yes')}` : t('adm_no') });

    function drawList() {
      const list = shown();
      drawnIds = list.map((c) => c.id).join(',');
      count.textContent = t('adm_cams_count', { n: list.length });
      listBox.replaceChildren(table([
        ['adm_id', (c) => String(c.id)],
        ['adm_cam_name', (c) => c.name],
        ['adm_cams_site', (c) => siteName(c.site_id)],
        ['adm_state', (c) => h('span', { class: 'adm-cam-state' }, stateBadge(c.state))],
        ['adm_cams_recording', (c) => h('span', { class: 'adm-cam-rec' }, recCell(c))],
        ['adm_cams_streams', (c) => h('div', { class: 'adm-urls' }, h('code', { text: c.main_url }),
          c.sub_url ? h('code', { class: 'adm-muted', text: c.sub_url }) : null)],
        ['adm_cam_transport', (c) => c.transport.toUpperCase()],
        ['adm_cams_nvr', (c) => (c.nvr_id ? t('adm_cams_nvr_ch', { nvr: c.nvr_id, ch: c.channel }) : '')],
        ['adm_actions', (c) => h('div', { class: 'adm-row-actions' },
          smallButton('adm_edit', () => f.edit(c)),
          dangerButton('adm_delete', async () => {
            try {
              await api('DELETE', `/cameras/${c.id}`);
              toast(t('adm_deleted'));
              await refresh();
            } catch (e) { showError(e); }
          }))],
      ], list));
    }

    // Updates the state and recording cells in place; redraws only when the list itself changed.
    function drawStates() {
      const list = shown();
      if (list.map((c) => c.id).join(',') !== drawnIds) { drawList(); return; }
      for (const c of list) {
        const tr = listBox.querySelector(`tr[data-id="${c.id}"]`);
        tr?.querySelector('.adm-cam-state')?.replaceChildren(stateBadge(c.state));
        tr?.querySelector('.adm-cam-rec')?.replaceChildren(recCell(c));
      }
    }

    async function refresh() {
      cameras = own(await api('GET', '/cameras'));
      drawList();
    }

    const poll = setInterval(async () => {
      try { cameras = own(await api('GET', '/cameras')); drawStates(); } catch (_) { /* the next poll retries */ }
    }, POLL_MS);
    const onNote = (e) => {
      const m = e.detail;
      if (m?.type !== 'camera_status') return;
      const c = cameras.find((x) => x.id === m.camera_id);
      if (c) { c.state = m.state; drawStates(); }
    };
    bus.addEventListener('notification', onNote);

    const toolbar = h('div', { class: 'adm-toolbar' }, field('adm_cams_site', siteFilter),
      field('adm_filter', search), count);
    root.replaceChildren(toolbar, split(listBox, f));
    drawList();
    return () => { clearInterval(poll); bus.removeEventListener('notification', onNote); };
  },
};
