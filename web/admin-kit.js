// Building blocks shared by the administration tabs (admin-*.js): labelled fields, forms that keep what was
// typed and show the server's message beside them, the region tree as options, a two-step delete button,
// percentage bars and camera-state badges.
//
// Invariants: a failed request never clears a form (the user corrects and sends again); every control is a
// real <button>/<input>/<select>, so the keyboard works without extra code; Escape in a form cancels it.
import { api, h, strings, t } from './core.js';

strings({
  'zh-CN': {
    adm_save: '保存', adm_cancel: '取消', adm_create: '新建', adm_edit: '编辑', adm_delete: '删除',
    adm_confirm: '确认删除？', adm_refresh: '刷新', adm_actions: '操作', adm_none: '（无）', adm_loading: '加载中…',
    adm_empty: '暂无数据', adm_saved: '已保存', adm_deleted: '已删除', adm_busy: '处理中…', adm_yes: '是', adm_no: '否',
    adm_keys: 'Enter 提交，Esc 取消', adm_all: '全部', adm_filter: '筛选', adm_state: '状态', adm_id: '编号',
    adm_state_connecting: '连接中', adm_state_online: '在线', adm_state_offline: '离线',
    adm_state_auth_failed: '认证失败', adm_state_unsupported: '编码不支持', adm_state_unknown: '未知',
    adm_level_province: '省', adm_level_city: '市', adm_level_district: '区/县',
    adm_kind_service_hall: '政务服务大厅', adm_kind_bid_evaluation: '评标场所',
    adm_cam_name: '名称', adm_cam_main: '主码流地址', adm_cam_user: '用户名', adm_cam_password: '密码',
    adm_cam_password_hint: '只写不读：保存后不再显示', adm_cam_transport: '传输', adm_cam_record: '录像',
    adm_cam_channel: '通道', adm_cam_password_keep: '留空则保持原密码',
    adm_role_admin: '管理员', adm_role_supervisor: '监察员', adm_role_investigator: '调查员', adm_role_integrator: '系统对接',
  },
  en: {
    adm_save: 'Save', adm_cancel: 'Cancel', adm_create: 'New', adm_edit: 'Edit', adm_delete: 'Delete',
    adm_confirm: 'Really delete?', adm_refresh: 'Refresh', adm_actions: 'Actions', adm_none: '(none)',
    adm_loading: 'Loading…', adm_empty: 'Nothing yet', adm_saved: 'Saved', adm_deleted: 'Deleted',
    adm_busy: 'Working…', adm_yes: 'yes', adm_no: 'no', adm_keys: 'Enter submits, Esc cancels', adm_all: 'All',
    adm_filter: 'Filter', adm_state: 'State', adm_id: 'ID',
    adm_state_connecting: 'connecting', adm_state_online: 'online', adm_state_offline: 'offline',
    adm_state_auth_failed: 'auth failed', adm_state_unsupported: 'unsupported codec', adm_state_unknown: 'unknown',
    adm_level_province: 'Province', adm_level_city: 'City', adm_level_district: 'District',
    adm_kind_service_hall: 'Service hall', adm_kind_bid_evaluation: 'Bid evaluation site',
    adm_cam_name: 'Name', adm_cam_main: 'Main stream URL', adm_cam_user: 'Username', adm_cam_password: 'Password',
    adm_cam_password_hint: 'Write-only: never shown after saving', adm_cam_transport: 'Transport',
    adm_cam_record: 'Record', adm_cam_channel: 'Channel',
    adm_cam_password_keep: 'Leave empty to keep the current password',
    adm_role_admin: 'Administrator', adm_role_supervisor: 'Supervisor', adm_role_investigator: 'Investigator',
    adm_role_integrator: 'Integration',
  },
});

/** A label wrapping its caption and control (so a click on the caption focuses it); `hint` below. */
export function field(labelKey, control, hint) {
  return h('label', { class: 'adm-field' }, h('span', { text: t(labelKey) }), control,
    hint ? h('small', { class: 'adm-hint', text: hint }) : null);
}

/** A <select> of [value, label] pairs with `value` chosen (set after the options, as a select needs). */
export function select(name, options, value, props = {}) {
  const chosen = value === undefined || value === null ? null : String(value);
  // defaultSelected, so that a form's reset() returns to this choice rather than to the first option.
  return h('select', { name, ...props }, options.map(([v, l]) =>
    h('option', { value: String(v), text: l, defaultSelected: String(v) === chosen })));
}

/**
 * A form with a title, fields, buttons and an error line (role=alert). Enter submits (native), Escape calls
 * `oncancel`. `onsubmit(form)` may throw: its message goes to the error line and nothing typed is lost.
 * Returns the <form>; `form.fail(message)` shows an error, `form.clearError()` hides it.
 */
export function form({ name, title, fields, submit = 'adm_save', extra = [], onsubmit, oncancel }) {
  const error = h('p', { class: 'adm-error', role: 'alert' });
  const ok = h('button', { type: 'submit', text: t(submit) });
  const cancel = h('button', { type: 'button', class: 'secondary', text: t('adm_cancel'), title: 'Esc',
    onclick: () => oncancel?.(f) });
  const heading = h('h3', { text: title });
  const f = h('form', { class: 'adm-form', dataset: { form: name }, title: t('adm_keys') },
    heading, fields, h('div', { class: 'adm-buttons' }, ok, extra, oncancel ? cancel : null), error);
  f.heading = heading;
  f.fail = (message) => { error.textContent = message; };
  f.clearError = () => { error.textContent = ''; };
  f.addEventListener('submit', async (e) => {
    e.preventDefault();
    f.clearError();
    ok.disabled = true;
    try {
      await onsubmit(f);
    } catch (err) {
      f.fail(err.message || String(err));
    } finally {
      ok.disabled = false;
    }
  });
  f.addEventListener('keydown', (e) => {
    if (e.key === 'Escape' && oncancel) { e.preventDefault(); e.stopPropagation(); oncancel(f); }
  });
  return f;
}

/** The trimmed text of a form's field, or '' when it has none. */
export const val = (f, name) => (f.elements[name]?.value ?? '').trim();

/** A button that asks once more before doing something destructive: the first press arms it for 4 s. */
export function dangerButton(labelKey, action) {
  let armed = null;
  const b = h('button', { type: 'button', class: 'danger small', text: t(labelKey) });
  b.addEventListener('click', async () => {
    if (!armed) {
      b.textContent = t('adm_confirm');
      armed = setTimeout(() => { armed = null; b.textContent = t(labelKey); }, 4000);
      return;
    }
    clearTimeout(armed);
    armed = null;
    b.disabled = true;
    try { await action(); } finally { b.disabled = false; b.textContent = t(labelKey); }
  });
  return b;
}

export const smallButton = (labelKey, onclick, props = {}) =>
  h('button', { type: 'button', class: 'secondary small', text: t(labelKey), onclick, ...props });

/** Regions in tree order (parents before children, siblings by code), each with its `depth`. */
export function regionTree(regions) {
  const codes = new Set(regions.map((r) => r.code));
  const kids = new Map();
  for (const r of regions) {
    const p = r.parent_code && codes.has(r.parent_code) ? r.parent_code : '';
    if (!kids.has(p)) kids.set(p, []);
    kids.get(p).push(r);
  }
  const out = [];
  const walk = (p, depth) => {
    for (const r of (kids.get(p) || []).sort((a, b) => a.code.localeCompare(b.code))) {
      out.push({ ...r, depth });
      walk(r.code, depth + 1);
    }
  };
  walk('', 0);
  return out;
}

/** [code, indented name] pairs of the region tree, for a select. */
export const regionOptions = (regions) =>
  regionTree(regions).map((r) => [r.code, `${'\u3000'.repeat(r.depth)}${r.name} (${r.code})`]);

/** `name (code)` of a region code, or the code alone when unknown. */
export function regionName(regions, code) {
  const r = regions.find((x) => x.code === code);
  return r ? `${r.name} (${code})` : code;
}

/** A box of checkboxes, one per region in tree order, named `name`; `checked` codes are ticked. */
export function regionChecks(name, regions, checked = []) {
  return h('div', { class: 'adm-checks', role: 'group' }, regionTree(regions).map((r) =>
    h('label', { class: 'adm-check', style: { paddingLeft: `${r.depth * 1.2}rem` } },
      h('input', { type: 'checkbox', name, value: r.code, checked: checked.includes(r.code) }),
      `${r.name} (${r.code})`)));
}

/** The values of a form's ticked checkboxes named `name`. */
export const checkedValues = (f, name) =>
  [...f.querySelectorAll(`input[type=checkbox][name="${name}"]:checked`)].map((i) => i.value);

/** A camera (or test) state as a coloured word; `data-state` carries the raw value for tests. */
export function stateBadge(state) {
  const s = state || 'unknown';
  return h('span', { class: `adm-state state-${s}`, dataset: { state: s }, text: t(`adm_state_${s}`) });
}

/** A bar of a rate 0..1 with its percentage written on it; null reads as "—". Colour by threshold. */
export function rateBar(rate) {
  if (rate === null || rate === undefined) return h('span', { class: 'adm-muted', text: '—' });
  const pct = Math.max(0, Math.min(100, rate * 100));
  const level = pct >= 95 ? 'good' : pct >= 80 ? 'fair' : 'poor';
  const text = `${pct.toFixed(pct === 100 || pct === 0 ? 0 : 1)}%`;
  return h('div', { class: `adm-bar adm-bar-${level}`, role: 'meter', 'aria-valuemin': '0', 'aria-valuemax': '100',
    'aria-valuenow': pct.toFixed(1), 'aria-label': text, dataset: { rate: String(rate) } },
  h('div', { class: 'adm-bar-fill', style: { width: `${pct}%` } }), h('span', { text }));
}

/** A table: columns are [labelKey, row => cell content]; rows get `data-id` from `row.id`. */
export function table(columns, rows, { empty = 'adm_empty', rowProps } = {}) {
  if (!rows.length) return h('p', { class: 'empty', text: t(empty) });
  return h('table', { class: 'adm-table' },
    h('thead', {}, h('tr', {}, columns.map(([label]) => h('th', { scope: 'col', text: label ? t(label) : '' })))),
    h('tbody', {}, rows.map((r) => h('tr', { dataset: { id: String(r.id ?? '') }, ...(rowProps ? rowProps(r) : {}) },
      columns.map(([, cell]) => h('td', {}, cell(r)))))));
}

/** GET several API paths at once; resolves to their answers in order. */
export const load = (...paths) => Promise.all(paths.map((p) => api('GET', p)));

/** A two-column tab body: the list on the left, the form on the right (stacked on narrow screens). */
export const split = (list, side) => h('div', { class: 'adm-split' }, h('div', { class: 'adm-list' }, list),
  h('aside', { class: 'adm-side' }, side));
