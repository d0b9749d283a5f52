// Administration, 国标设备 tab: the GB/T 28181 devices that registered to this server (GET /gb/devices): pending
// ones (not bound to a site yet) first, each with its state, address, last keepalive and catalog channels; an
// admin binds a device to a site with its media transport (POST /gb/devices/{id}/bind), which makes each channel a
// camera. Bound devices can be bound again to pick up channels added since. Refreshes every 5 s while open, so
// that a device that registers or goes offline shows as it happens.
import { api, fmtTime, h, showError, t, toast } from './core.js';
import { load, select, smallButton, table } from './admin-kit.js';

const REFRESH_MS = 5000;

const state = (d) => h('span', { class: d.state === 'online' ? 'state-online' : 'state-offline',
  dataset: { state: d.state }, text: t(d.state === 'online' ? 'adm_gb_online' : 'adm_gb_offline') });

function channels(d) {
  if (!d.channels.length) return h('span', { class: 'adm-muted', text: t('adm_gb_no_channels') });
  return h('ul', { class: 'adm-gb-channels' }, d.channels.map((c) => h('li', { dataset: { channel: c.channel_id } },
    h('span', { text: c.name || c.channel_id }), ' ', h('small', { class: 'adm-muted', text: c.channel_id }),
    c.camera_id ? h('a', { href: `#/wall?camera=${c.camera_id}`, text: ` #${c.camera_id}` }) : null)));
}

/** The bind control of a device: a site and a media transport, then 绑定 (or 重新绑定 once bound). */
function binder(d, sites, onBound) {
  const siteSel = select('site_id', sites.map((s) => [String(s.id), s.name]), String(d.site_id ?? sites[0]?.id ?? ''));
  const transport = select('media_transport', [['udp', 'UDP'], ['tcp', t('gb_tcp_passive')], ['tcp_active', t('gb_tcp_active')]], 'udp');
  const bind = async () => {
    const body = { site_id: Number(siteSel.value), media_transport: transport.value };
    const r = await api('POST', `/gb/devices/${encodeURIComponent(d.id)}/bind`, body);
    toast(t('adm_gb_bound', { n: r.camera_ids.length }));
    onBound();
  };
  return h('div', { class: 'adm-gb-bind' }, siteSel, transport,
    smallButton(d.site_id ? 'adm_gb_rebind' : 'adm_gb_bind', () => bind().catch(showError),
      { dataset: { bind: d.id }, disabled: !sites.length }));
}

/** The superior platforms this server registers to ([[gb28181.upstream]] of its configuration). */
function upstreamTable(upstreams) {
  const registered = (u) => h('span', { class: u.registered ? 'state-online' : 'state-offline',
    dataset: { registered: String(u.registered) }, text: t(u.registered ? 'adm_gb_up_registered' : 'adm_gb_up_not') });
  const columns = [
    ['adm_gb_up_name', (u) => h('div', {}, h('strong', { text: u.name }), h('br'),
      h('small', { class: 'adm-muted', text: `${u.server_id} @ ${u.server}` }))],
    ['adm_gb_up_local', (u) => u.local_id],
    ['adm_gb_up_regions', (u) => (u.region_codes.length ? u.region_codes.join(', ') : t('adm_gb_up_nothing'))],
    ['adm_gb_state', registered],
    ['adm_gb_keepalive', (u) => (u.last_keepalive ? fmtTime(u.last_keepalive) : '')],
    ['adm_gb_up_error', (u) => h('span', { class: 'adm-muted', text: u.error || '' })],
  ];
  return table(columns, upstreams, { empty: 'adm_gb_up_none', rowProps: (u) => ({ dataset: { upstream: u.name } }) });
}

export default {
  async mount(root) {
    const box = h('section', { class: 'adm-gb-list', 'aria-live': 'polite' });
    const up = h('section', { class: 'adm-gb-upstreams' });
    root.replaceChildren(h('h2', { text: t('adm_tab_gb') }), h('p', { class: 'adm-muted', text: t('adm_gb_hint') }), box,
      h('h3', { text: t('adm_gb_up_title') }), h('p', { class: 'adm-muted', text: t('adm_gb_up_hint') }), up);
    const refresh = async () => {
      const [{ devices }, sites, { upstreams }] = await load('/gb/devices', '/sites', '/gb/upstreams');
      up.replaceChildren(upstreamTable(upstreams));
      // Pending devices first: they wait for an admin.
      devices.sort((a, b) => (a.site_id !== null) - (b.site_id !== null));
      const siteName = (id) => sites.find((s) => s.id === id)?.name ?? String(id);
      const columns = [
        ['adm_gb_device', (d) => h('div', {}, h('strong', { text: d.name || d.id }), h('br'),
          h('small', { class: 'adm-muted', text: `${d.id} ${d.manufacturer} ${d.model}`.trim() }))],
        ['adm_gb_state', state],
        ['adm_gb_address', (d) => `${d.address} (${d.transport.toUpperCase()})`],
        ['adm_gb_keepalive', (d) => fmtTime(d.last_keepalive)],
        ['adm_gb_site', (d) => (d.site_id === null
          ? h('span', { class: 'state-connecting', dataset: { pending: '1' }, text: t('adm_gb_pending') })
          : siteName(d.site_id))],
        ['adm_gb_channels', channels],
        ['', (d) => binder(d, sites, () => { refresh().catch(() => {}); })],
      ];
      box.replaceChildren(table(columns, devices, { empty: 'adm_gb_none', rowProps: (d) => ({ dataset: { device: d.id } }) }));
    };
    await refresh();
    // Not while the admin is choosing a site: a redraw would reset the selects under their hand.
    const timer = setInterval(() => {
      if (!box.contains(document.activeElement)) refresh().catch(() => {});
    }, REFRESH_MS);
    return () => clearInterval(timer);
  },
};
