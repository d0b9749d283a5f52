// Administration, ONVIF 发现 tab: finds the ONVIF cameras on the site's network (POST /onvif/discover: a
// WS-Discovery probe from the interfaces given, or the server's default one, then each camera described
// with the credentials typed), shows make, model and media profiles with their sizes, and adds a camera the
// admin picks under the site probed with its main and sub streams (POST /cameras). Answers that pointed elsewhere
// than their sender are listed as set aside. Nothing is added without the admin's click.
import { api, h, showError, t, toast } from './core.js';
import { field, form, load, select, smallButton, table, val } from './admin-kit.js';

function profiles(d) {
  if (d.error) return h('span', { class: 'adm-error', text: d.error });
  return h('ul', { class: 'adm-onvif-profiles' }, d.profiles.map((p) => h('li', { dataset: { profile: p.token } },
    `${p.name} ${p.width}×${p.height}`, ' ', h('small', { class: 'adm-muted', text: p.stream_uri }))));
}

/** Adds `d` under the site probed: the first profile as the main stream, the second as the sub stream. */
function adder(d, siteId, creds) {
  const add = async () => {
    const [main, sub] = d.profiles;
    const body = { site_id: siteId, name: d.name.slice(0, 80), main_url: main.stream_uri,
      sub_url: sub?.stream_uri ?? null, record: true };
    // A camera with PTZ remembers where its commands go (the wall's 云台).
    if (d.ptz) body.onvif = { device_url: d.address, profile_token: main.token };
    if (creds.username) Object.assign(body, creds);
    const cam = await api('POST', '/cameras', body);
    toast(t('adm_onvif_added', { name: cam.name }));
  };
  return h('div', { class: 'adm-onvif-add' },
    smallButton('adm_onvif_add', () => add().catch(showError),
      { dataset: { add: d.address }, disabled: !d.profiles.length }));
}

export default {
  async mount(root) {
    const [sites] = await load('/sites');
    const results = h('section', { class: 'adm-onvif-results', 'aria-live': 'polite' });
    const f = form({
      name: 'onvif',
      title: t('adm_onvif_probe'),
      submit: 'adm_onvif_discover',
      fields: [
        field('adm_onvif_site', select('site_id', sites.map((x) => [String(x.id), x.name]), String(sites[0]?.id ?? ''))),
        field('adm_onvif_interfaces', h('input', { name: 'interfaces', placeholder: '192.168.1.10' }), t('adm_onvif_interfaces_hint')),
        field('adm_cam_user', h('input', { name: 'username', autocomplete: 'off' })),
        field('adm_cam_password', h('input', { name: 'password', type: 'password', autocomplete: 'new-password' })),
      ],
      onsubmit: async (form) => {
        const interfaces = val(form, 'interfaces').split(/[\s,]+/).filter(Boolean);
        const creds = { username: val(form, 'username'), password: form.elements.password.value };
        const siteId = Number(form.elements.site_id.value);
        results.replaceChildren(h('p', { class: 'adm-muted', text: t('adm_onvif_probing') }));
        const r = await api('POST', '/onvif/discover', { site_id: siteId, interfaces, ...creds });
        const columns = [
          ['adm_onvif_device', (d) => h('div', {}, h('strong', { text: d.name }), h('br'),
            h('small', { class: 'adm-muted', text: d.address }))],
          ['adm_onvif_model', (d) => `${d.manufacturer} ${d.model}`.trim()],
          ['adm_onvif_profiles', profiles],
          ['', (d) => adder(d, siteId, creds)],
        ];
        const rejected = r.rejected.length ? [h('h3', { text: t('adm_onvif_rejected') }),
          table([['adm_onvif_from', (x) => x.from], ['adm_onvif_points', (x) => x.xaddrs], ['adm_onvif_why', (x) => x.why]],
            r.rejected)] : [];
        results.replaceChildren(table(columns, r.devices, { empty: 'adm_onvif_none',
          rowProps: (d) => ({ dataset: { device: d.address } }) }), ...rejected);
      },
    });
    root.replaceChildren(h('h2', { text: t('adm_tab_onvif') }), h('p', { class: 'adm-muted', text: t('adm_onvif_hint') }),
      f, results);
  },
};
