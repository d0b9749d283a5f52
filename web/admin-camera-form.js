// The camera form of the 摄像机 tab: create or edit one camera, and test its main stream before saving.
//
// "Test" sends what is typed (URL, username, password, transport) to POST /cameras/test, which opens the
// stream once on the server and answers its state, codec, resolution and a snapshot; nothing is stored.
// The password is write-only: it is never shown; when editing, an empty password keeps the stored one. For
// the same reason a test of the camera being edited sends its `camera_id`: the server fills what the form
// leaves empty (the password, even the URL) from the stored camera, so it is tested without retyping.
import { api, h, t, toast } from './core.js';
import { field, form, select, stateBadge, val } from './admin-kit.js';

/** The form; `onsaved(camera)` after a save, `edit(camera)` fills it, `reset()` empties it. */
export function cameraForm({ sites, site, onsaved }) {
  let editing = null;
  const result = h('div', { class: 'adm-test', 'aria-live': 'polite' });
  const testBtn = h('button', { type: 'button', class: 'secondary', text: t('adm_cam_test'),
    title: t('adm_cam_test_hint'), dataset: { action: 'test' } });
  const password = h('input', { name: 'password', type: 'password', autocomplete: 'new-password', maxlength: '200' });

  const f = form({
    name: 'camera',
    title: t('adm_cam_new'),
    extra: [testBtn],
    fields: [
      field('adm_cam_name', h('input', { name: 'name', required: true, maxlength: '100', autocomplete: 'off' })),
      field('adm_cam_site', select('site_id', sites.map((s) => [s.id, s.name]), site ?? sites[0]?.id, { required: true })),
      field('adm_cam_main', h('input', { name: 'main_url', required: true, autocomplete: 'off', spellcheck: 'false',
        placeholder: 'rtsp://' }), t('adm_cam_url_hint')),
      field('adm_cam_sub', h('input', { name: 'sub_url', autocomplete: 'off', spellcheck: 'false', placeholder: 'rtsp://' })),
      h('div', { class: 'adm-pair' },
        field('adm_cam_user', h('input', { name: 'username', autocomplete: 'off', maxlength: '200' })),
        field('adm_cam_password', password, t('adm_cam_password_hint'))),
      h('div', { class: 'adm-pair' },
        field('adm_cam_transport', select('transport', [['tcp', 'TCP'], ['udp', 'UDP']], 'tcp')),
        h('label', { class: 'adm-check adm-check-inline' },
          h('input', { type: 'checkbox', name: 'record', defaultChecked: true }), t('adm_cam_record')),
        h('label', { class: 'adm-check adm-check-inline', title: t('adm_cam_record_sub_hint') },
          h('input', { type: 'checkbox', name: 'record_sub' }), t('adm_cam_record_sub'))),
    ],
    onsubmit: async (el) => {
      const body = { name: val(el, 'name'), site_id: Number(val(el, 'site_id')), main_url: val(el, 'main_url'),
        transport: val(el, 'transport'), record: el.elements.record.checked };
      const sub = val(el, 'sub_url');
      // The sub stream is recorded only if there is one (the server refuses it otherwise).
      body.record_sub = el.elements.record_sub.checked && !!sub;
      const user = val(el, 'username');
      const pw = el.elements.password.value;
      if (editing) {
        // Empty strings clear the sub stream and the username; an empty password keeps the stored one.
        Object.assign(body, { sub_url: sub, username: user });
        if (pw) body.password = pw;
      } else {
        if (sub) body.sub_url = sub;
        if (user) body.username = user;
        if (pw) body.password = pw;
      }
      const cam = editing ? await api('PATCH', `/cameras/${editing.id}`, body) : await api('POST', '/cameras', body);
      toast(t('adm_saved'));
      reset();
      onsaved(cam);
    },
    oncancel: () => reset(),
  });
  f.append(result);

  const row = (label, value) => h('div', {}, h('dt', { text: t(label) }), h('dd', {}, value));

  testBtn.addEventListener('click', async () => {
    f.clearError();
    // A saved camera may be tested with an empty URL (the server uses the stored one); a new one may not.
    if (!editing && !f.elements.main_url.reportValidity()) return;
    const body = { transport: val(f, 'transport') };
    if (editing) body.camera_id = editing.id;
    if (val(f, 'main_url')) body.main_url = val(f, 'main_url');
    if (val(f, 'username')) body.username = val(f, 'username');
    if (f.elements.password.value) body.password = f.elements.password.value;
    testBtn.disabled = true;
    testBtn.textContent = t('adm_cam_testing');
    result.replaceChildren();
    result.dataset.state = 'testing';
    try {
      const r = await api('POST', '/cameras/test', body);
      const res = r.width && r.height ? `${r.width}×${r.height}` : '—';
      result.replaceChildren(h('h4', { text: t('adm_cam_test_title') }), h('dl', { class: 'adm-facts' },
        row('adm_state', stateBadge(r.state)),
        row('adm_cam_codec', r.codec || '—'),
        row('adm_cam_audio', r.audio ? r.audio.toUpperCase() : t('adm_cam_no_audio')),
        row('adm_cam_resolution', res),
        row('adm_cam_elapsed', r.elapsed_ms != null ? `${r.elapsed_ms} ms` : '—'),
        r.error ? row('adm_cam_error', h('span', { class: 'adm-error-text', text: r.error })) : null),
      r.snapshot ? h('img', { class: 'adm-snapshot', src: r.snapshot, alt: t('adm_cam_snapshot') }) : null);
      result.dataset.state = r.state;
    } catch (e) {
      delete result.dataset.state;
      f.fail(e.message);
    } finally {
      testBtn.disabled = false;
      testBtn.textContent = t('adm_cam_test');
    }
  });

  function reset() {
    editing = null;
    f.reset();
    f.clearError();
    result.replaceChildren();
    delete result.dataset.state;
    f.heading.textContent = t('adm_cam_new');
    password.placeholder = '';
    testBtn.title = t('adm_cam_test_hint');
  }

  f.edit = (cam) => {
    reset();
    editing = cam;
    f.heading.textContent = t('adm_cam_edit', { name: cam.name });
    const e = f.elements;
    e.name.value = cam.name;
    e.site_id.value = String(cam.site_id);
    e.main_url.value = cam.main_url;
    e.sub_url.value = cam.sub_url ?? '';
    e.username.value = cam.username ?? '';
    e.transport.value = cam.transport;
    e.record.checked = cam.record;
    e.record_sub.checked = !!cam.record_sub;
    password.placeholder = t('adm_cam_password_keep');
    testBtn.title = t('adm_cam_test_hint_edit');
    e.name.focus();
  };
  f.cancel = reset;
  return f;
}
