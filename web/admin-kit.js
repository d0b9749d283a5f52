// Building blocks shared by the administration tabs (admin-*.js): labelled fields, forms that keep what was
// typed and show the server's message beside them, the region tree as options, a two-step delete button,
// percentage bars and camera-state badges.
//
// Invariants: a failed request never clears a form (the user corrects and sends again); every control is a
// real <button>/<input>/<select>, so the keyboard works without extra code; Escape in a form cancels it.
import { api, h, t } from './core.js';

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

/**
 * Shows a secret the server gives once (a token, a link credential) in `slot`, with a copy button; it lives
 * only in the box's input, and closing the box (or Escape) drops it, then calls `after`.
 */
export function secretBox(slot, { name, secret, title, label, after }) {
  const input = h('input', { class: 'adm-secret', readonly: true, value: secret, 'aria-label': label,
    spellcheck: 'false', onfocus: (e) => e.target.select() });
  const copied = h('span', { class: 'adm-muted', role: 'status' });
  const copy = h('button', { type: 'button', dataset: { action: 'copy' }, text: t('adm_tok_copy'), onclick: async () => {
    input.select();
    try { await navigator.clipboard.writeText(secret); } catch (_) { document.execCommand('copy'); }
    copied.textContent = t('adm_tok_copied');
  } });
  const done = h('button', { type: 'button', class: 'secondary', text: t('adm_tok_done'),
    onclick: () => { slot.replaceChildren(); after?.(); } });
  const box = h('div', { class: 'adm-secret-box', role: 'alert' },
    h('h3', { text: title }), h('p', { text: `${name}: ${t('adm_tok_secret_once')}` }),
    h('div', { class: 'adm-secret-row' }, input, copy, done), copied);
  box.addEventListener('keydown', (e) => { if (e.key === 'Escape') done.click(); });
  slot.replaceChildren(box);
  input.focus();
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
/** This server's own objects: the sites and cameras linked cities share (`link`) are managed at the city. */
export const own = (list) => (Array.isArray(list) ? list.filter((x) => !x.link) : list);
export const load = (...paths) => Promise.all(paths.map((p) => api('GET', p).then(own)));

/** A two-column tab body: the list on the left, the form on the right (stacked on narrow screens). */
export const split = (list, side) => h('div', { class: 'adm-split' }, h('div', { class: 'adm-list' }, list),
  h('aside', { class: 'adm-side' }, side));
