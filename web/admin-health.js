// Administration, 运行状况 tab: what an upper level assesses a site by, camera online rate (now, and over the
// period from samples) and recording completeness over the last hours (GET /health), per site as a sortable
// table of percentage bars, with the
// totals and the disk (total, free, taken by recordings) above. Worst sites come first by default. Refreshes
// every 30 s while open; sorting is kept across refreshes.
import { api, fmtBytes, h, t } from './core.js';
import { field, rateBar, regionName, select, smallButton } from './admin-kit.js';

const REFRESH_MS = 30000;
/** A duration in seconds: seconds below a minute, minutes below an hour, else hours with one decimal. */
function span(s) {
  if (s < 60) return t('adm_hl_seconds', { n: Math.round(s) });
  if (s < 3600) return t('adm_hl_minutes', { n: Math.round(s / 60) });
  return t('adm_hl_hours_n', { n: (s / 3600).toFixed(1) });
}

// Sortable columns: [key, label, value for sorting, cell].
const COLUMNS = [
  ['name', 'adm_hl_site', (s) => s.name, (s) => h('a', { href: `#/admin/cameras?site=${s.site_id}`, text: s.name })],
  ['kind', 'adm_hl_kind', (s) => s.kind, (s) => t(`adm_kind_${s.kind}`)],
  ['region_code', 'adm_hl_region', (s) => s.region_code, (s, regions) => regionName(regions, s.region_code)],
  ['cameras', 'adm_hl_online', (s) => s.online, (s) => `${s.online} / ${s.cameras}`],
  ['online_rate', 'adm_hl_online_rate', (s) => s.online_rate, (s) => rateBar(s.online_rate)],
  ['online_time_rate', 'adm_hl_online_time', (s) => s.online_time_rate, (s) => rateBar(s.online_time_rate)],
  ['recording_cameras', 'adm_hl_recording', (s) => s.recording_cameras, (s) => String(s.recording_cameras)],
  ['completeness', 'adm_hl_completeness', (s) => s.completeness, (s) => rateBar(s.completeness)],
  ['recorded_seconds', 'adm_hl_recorded', (s) => s.recorded_seconds,
    (s) => `${span(s.recorded_seconds)} / ${span(s.expected_seconds)}`],
];

export default {
  async mount(root) {
    let data = null;
    // Names for the region column; a failure only costs the names (codes are shown instead).
    const regions = await api('GET', '/regions').catch(() => []);
    let sort = { key: 'online_rate', dir: 1 };
    const hours = select('hours', [[24, t('adm_hl_h24')], [72, t('adm_hl_h72')], [168, t('adm_hl_h168')]], 24,
      { onchange: () => refresh() });
    const diskBox = h('section', { class: 'adm-disk', 'aria-label': t('adm_hl_disk') });
    const sitesBox = h('section', { class: 'adm-health-sites' });

    function drawDisk() {
      const d = data.disk;
      if (!d || !d.total_bytes) { diskBox.replaceChildren(h('p', { class: 'adm-muted', text: t('adm_hl_no_disk') })); return; }
      const used = Math.max(0, d.total_bytes - d.free_bytes);
      const other = Math.max(0, used - d.recordings_bytes);
      const pct = (n) => (d.total_bytes ? (100 * n) / d.total_bytes : 0);
      diskBox.replaceChildren(h('h3', { text: t('adm_hl_disk') }),
        h('div', { class: 'adm-diskbar', role: 'img', 'aria-label':
          `${t('adm_hl_recordings')} ${fmtBytes(d.recordings_bytes)}, ${t('adm_hl_free')} ${fmtBytes(d.free_bytes)}` },
        h('div', { class: 'adm-disk-rec', style: { width: `${pct(d.recordings_bytes)}%` } }),
        h('div', { class: 'adm-disk-other', style: { width: `${pct(other)}%` } })),
        h('dl', { class: 'adm-facts adm-facts-row' },
          ...[['adm_hl_total', d.total_bytes, ''], ['adm_hl_recordings', d.recordings_bytes, 'adm-key-rec'],
            ['adm_hl_other', other, 'adm-key-other'], ['adm_hl_free', d.free_bytes, 'adm-key-free']]
            .map(([k, n, cls]) => h('div', { class: cls }, h('dt', { text: t(k) }),
              h('dd', { text: `${fmtBytes(n)}${k === 'adm_hl_total' ? '' : ` (${pct(n).toFixed(1)}%)`}` })))));
    }

    function drawSites() {
      const col = COLUMNS.find((c) => c[0] === sort.key) || COLUMNS[0];
      // Nulls (no cameras) last whichever way; text compares in the reader's language.
      const rows = [...data.sites].sort((a, b) => {
        const x = col[2](a);
        const y = col[2](b);
        if (x === null || x === undefined) return y === null || y === undefined ? 0 : 1;
        if (y === null || y === undefined) return -1;
        return sort.dir * (typeof x === 'string' ? x.localeCompare(y, document.documentElement.lang) : x - y);
      });
      const sum = (k) => data.sites.reduce((n, s) => n + (s[k] || 0), 0);
      const cams = sum('cameras');
      const expected = sum('expected_seconds');
      const samples = sum('uptime_samples');
      const onlineSamples = data.sites.reduce((n, s) => n + (s.online_time_rate || 0) * (s.uptime_samples || 0), 0);
      const head = h('tr', {}, COLUMNS.map(([key, label]) => h('th', { scope: 'col',
        'aria-sort': sort.key === key ? (sort.dir > 0 ? 'ascending' : 'descending') : null },
      h('button', { type: 'button', class: 'adm-sort', title: t('adm_hl_sort'), dataset: { sort: key },
        text: `${t(label)}${sort.key === key ? (sort.dir > 0 ? ' ▲' : ' ▼') : ''}`,
        onclick: () => { sort = { key, dir: sort.key === key ? -sort.dir : 1 }; drawSites(); sitesBox.querySelector(`[data-sort="${key}"]`)?.focus(); } }))));
      const total = h('tr', { class: 'adm-total' },
        h('th', { scope: 'row', colspan: '3', text: t('adm_hl_overall') }),
        h('td', { text: `${sum('online')} / ${cams}` }), h('td', {}, rateBar(cams ? sum('online') / cams : null)),
        h('td', {}, rateBar(samples ? onlineSamples / samples : null)),
        h('td', { text: String(sum('recording_cameras')) }),
        h('td', {}, rateBar(expected ? Math.min(1, sum('recorded_seconds') / expected) : null)),
        h('td', { text: `${span(sum('recorded_seconds'))} / ${span(expected)}` }));
      sitesBox.replaceChildren(h('h3', { text: t('adm_hl_sites') }),
        h('table', { class: 'adm-table adm-health-table' }, h('thead', {}, head),
          h('tbody', {}, rows.map((s) => h('tr', { dataset: { id: String(s.site_id) } },
            COLUMNS.map(([, , , cell]) => h('td', {}, cell(s, regions)))))),
          h('tfoot', {}, total)),
        h('p', { class: 'adm-hint', text: t('adm_hl_legend') }));
    }

    async function refresh() {
      data = await api('GET', `/health?hours=${hours.value}`);
      drawDisk();
      drawSites();
    }

    root.replaceChildren(h('div', { class: 'adm-toolbar' }, field('adm_hl_hours', hours),
      smallButton('adm_refresh', () => refresh(), { dataset: { action: 'refresh' } })), diskBox, sitesBox);
    await refresh();
    const timer = setInterval(() => refresh().catch(() => {}), REFRESH_MS);
    return () => clearInterval(timer);
  },
};
