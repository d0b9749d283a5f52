// Administration, 集群节点 tab: the nodes sharing this server's database (GET /nodes): whether each is alive,
// draining, when it was last heard from, its capacity and load, its upload backlog to the bucket, the cameras it
// records (within the admin's regions) with their lease epochs. A single server has no nodes and says so. Refreshes every 5 s while
// open, so that a takeover or a drain shows as it happens.
import { api, fmtBytes, fmtTime, h, t } from './core.js';
import { rateBar, table } from './admin-kit.js';

const REFRESH_MS = 5000;

function state(n) {
  if (!n.alive) return h('span', { class: 'state-offline', text: t('adm_nd_dead') });
  if (n.draining) return h('span', { class: 'state-connecting', text: t('adm_nd_draining') });
  return h('span', { class: 'state-online', text: t('adm_nd_alive') });
}

const COLUMNS = [
  ['adm_nd_name', (n) => h('div', {}, h('strong', { text: n.name }), h('br'), h('small', { class: 'adm-muted', text: n.address }))],
  ['adm_nd_state', state],
  ['adm_nd_last_seen', (n) => fmtTime(n.last_seen)],
  ['adm_nd_started', (n) => fmtTime(n.started_at)],
  ['adm_nd_capacity', (n) => String(n.capacity)],
  ['adm_nd_load', (n) => rateBar(n.load)],
  ['adm_nd_cameras', (n) => String(n.cameras.length)],
  ['adm_nd_backlog', (n) => h('span', { class: n.upload_backlog.alarm ? 'state-offline' : '',
    text: `${n.upload_backlog.segments} / ${fmtBytes(n.upload_backlog.bytes)}${n.upload_backlog.alarm ? ` ${t('adm_nd_alarm')}` : ''}` })],
  ['adm_nd_leases', (n) => h('small', { text: n.leases.map((l) => `${l.camera_id}:${l.epoch}`).join(' ') || '—' })],
];

export default {
  async mount(root) {
    const box = h('section', { class: 'adm-node-list', 'aria-live': 'polite' });
    root.replaceChildren(h('h2', { text: t('adm_tab_nodes') }), box);
    const refresh = async () => {
      const { nodes } = await api('GET', '/nodes');
      box.replaceChildren(nodes.length
        ? table(COLUMNS, nodes.map((n) => ({ ...n, id: n.name })), { rowProps: (n) => ({ dataset: { node: n.name } }) })
        : h('p', { class: 'empty', text: t('adm_nd_single') }));
    };
    await refresh();
    const timer = setInterval(() => { refresh().catch(() => {}); }, REFRESH_MS);
    return () => clearInterval(timer);
  },
};
