// Administration, NVR 导入 tab: adds every channel of a site's NVR as cameras in one go (POST /nvrs, all or
// nothing on the server) and then lists the cameras it created with their state, which fills in as ingest
// connects (poll every 3 s while the tab is open). Hikvision and Dahua have known RTSP paths; a generic NVR
// needs a URL template with {channel} (and may use {host} and {port}).
import { api, h, t, toast } from './core.js';
import { field, form, select, split, stateBadge, table, val } from './admin-kit.js';

const VENDORS = ['hikvision', 'dahua', 'generic'];

/** `16` -> 16, `1,2, 5` -> [1,2,5]; null when it is neither. The server checks the ranges. */
function parseChannels(text) {
  const s = text.trim();
  if (/^\d+$/.test(s)) return Number(s);
  const parts = s.split(/[,，\s]+/).filter(Boolean);
  return parts.length && parts.every((p) => /^\d+$/.test(p)) ? parts.map(Number) : null;
}

export default {
  async mount(root) {
    const sites = (await api('GET', '/sites')).filter((x) => !x.link);
    if (!sites.length) { root.replaceChildren(h('p', { class: 'empty', text: t('adm_nvr_no_site') })); return; }
    let created = [];
    let poll = null;
    const resultBox = h('div', { class: 'adm-nvr-result' }, h('p', { class: 'empty', text: t('adm_nvr_none') }));
    const template = h('input', { name: 'url_template', autocomplete: 'off', spellcheck: 'false',
      placeholder: 'rtsp://{host}:{port}/cam{channel}' });
    const templateField = field('adm_nvr_template', template, t('adm_nvr_template_hint'));

    const f = form({
      name: 'nvr',
      title: t('adm_nvr_title'),
      submit: 'adm_nvr_import',
      fields: [
        field('adm_nvr_site', select('site_id', sites.map((s) => [s.id, s.name]), sites[0].id)),
        field('adm_nvr_vendor', select('vendor', VENDORS.map((v) => [v, t(`adm_nvr_vendor_${v}`)]), 'hikvision',
          { onchange: () => showTemplate() })),
        h('div', { class: 'adm-pair' },
          field('adm_nvr_host', h('input', { name: 'host', required: true, autocomplete: 'off', spellcheck: 'false' })),
          field('adm_nvr_port', h('input', { name: 'port', type: 'number', min: '1', max: '65535', value: '554' }))),
        field('adm_nvr_channels', h('input', { name: 'channels', required: true, autocomplete: 'off', value: '8' }),
          t('adm_nvr_channels_hint')),
        templateField,
        h('div', { class: 'adm-pair' },
          field('adm_cam_user', h('input', { name: 'username', autocomplete: 'off', maxlength: '200' })),
          field('adm_cam_password', h('input', { name: 'password', type: 'password', autocomplete: 'new-password' }),
            t('adm_cam_password_hint'))),
        h('div', { class: 'adm-pair' },
          field('adm_nvr_prefix', h('input', { name: 'name_prefix', autocomplete: 'off', maxlength: '80' })),
          field('adm_cam_transport', select('transport', [['tcp', 'TCP'], ['udp', 'UDP']], 'tcp'))),
        h('label', { class: 'adm-check' }, h('input', { type: 'checkbox', name: 'record', defaultChecked: true }),
          t('adm_cam_record')),
      ],
      onsubmit: async (el) => {
        const channels = parseChannels(val(el, 'channels'));
        if (channels === null) throw new Error(t('adm_nvr_bad_channels'));
        const body = { site_id: Number(val(el, 'site_id')), vendor: val(el, 'vendor'), host: val(el, 'host'),
          port: Number(val(el, 'port') || 554), channels, transport: val(el, 'transport'),
          record: el.elements.record.checked };
        for (const k of ['username', 'name_prefix', 'url_template']) if (val(el, k)) body[k] = val(el, k);
        if (el.elements.password.value) body.password = el.elements.password.value;
        const nvr = await api('POST', '/nvrs', body);
        toast(t('adm_nvr_created', { n: nvr.camera_ids.length }));
        created = nvr.camera_ids;
        el.elements.password.value = '';
        await drawResult();
        clearInterval(poll);
        poll = setInterval(() => drawResult().catch(() => {}), 3000);
      },
      oncancel: (el) => { el.reset(); el.clearError(); showTemplate(); },
    });

    // Hikvision and Dahua paths are built in; the template field is for a generic NVR only.
    function showTemplate() {
      const generic = f.elements.vendor.value === 'generic';
      templateField.hidden = !generic;
      template.required = generic;
    }

    async function drawResult() {
      const ids = new Set(created);
      const cams = (await api('GET', '/cameras')).filter((c) => ids.has(c.id)).sort((a, b) => a.channel - b.channel);
      resultBox.replaceChildren(h('h3', { text: t('adm_nvr_result') }), table([
        ['adm_cam_channel', (c) => String(c.channel ?? '')],
        ['adm_cam_name', (c) => c.name],
        ['adm_state', (c) => stateBadge(c.state)],
        ['adm_cam_main', (c) => h('code', { text: c.main_url })],
      ], cams));
    }

    root.replaceChildren(split(resultBox, f));
    showTemplate();
    return () => clearInterval(poll);
  },
};
