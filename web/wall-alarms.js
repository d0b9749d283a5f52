// The live wall's alarms panel: active alarms from GET /alarms?state=active at mount, then live from the
// notifications socket (types alarm and case_card). Camera-offline alarms and yellow/red cards are raised
// as they happen and call `onRaise(entry)` (the wall pops the camera); a cleared alarm leaves the list.
//
// One entry per alarm: an alarm has an id; a case card is keyed by case number and colour, so that the
// same card seen as GET /alarms row, `alarm` message and `case_card` message is listed once.
import { fmtTime, h, t } from './core.js';

const CARD_KIND = { yellow: 'case_yellow', red: 'case_red' };

/** What the message adds to the kind and camera names already shown: for a camera-offline alarm the
 *  server's "camera NAME is offline: REASON" comes down to its reason. */
function detail(e) {
  if (e.kind !== 'camera_offline') return e.message;
  const m = /^camera .* is offline(?::\s*(.*))?$/s.exec(e.message);
  return m ? (m[1] || '') : e.message;
}

/** The entry of a GET /alarms row or an `alarm` message. */
function fromAlarm(a) {
  const card = a.kind === 'case_yellow' || a.kind === 'case_red';
  return { key: card && a.case_no ? `case:${a.case_no}:${a.kind}` : `alarm:${a.id}`, id: a.id, kind: a.kind,
    camera_ids: a.camera_ids || [], message: a.message || '', at: a.raised_at || a.at, case_no: a.case_no };
}

export class AlarmPanel {
  /** opts: { cameraName(id) -> string|null, onRaise(entry), onShow(entry) } */
  constructor(opts) {
    this.opts = opts;
    this.entries = new Map();
    this.count = h('span', { class: 'count' });
    this.list = h('ul', { class: 'alarm-list', 'aria-live': 'polite' });
    this.title = h('h2', {}, h('span', { text: t('alarms') }), this.count);
    this.el = h('section', { class: 'wall-alarms', 'aria-label': t('alarms') }, this.title, this.list);
  }

  /** The ids of cameras with an active alarm. */
  cameraIds() { return new Set([...this.entries.values()].flatMap((e) => e.camera_ids)); }

  /** Replaces the list by the active alarms of the server (no pop: they are not new). */
  load(rows) {
    this.entries.clear();
    for (const a of rows) if (a.state !== 'cleared') { const e = fromAlarm(a); this.entries.set(e.key, e); }
    this.render();
  }

  /** Handles a message of the notifications socket; true when the list changed. */
  onMessage(m) {
    if (m.type === 'alarm') {
      const e = fromAlarm(m);
      if (m.state === 'cleared') {
        const gone = [...this.entries.values()].filter((x) => x.key === e.key || (m.id != null && x.id === m.id));
        gone.forEach((x) => this.entries.delete(x.key));
        this.render();
        return gone.length > 0;
      }
      return this.raise(e);
    }
    if (m.type === 'case_card' && CARD_KIND[m.card]) {
      return this.raise({ key: `case:${m.case_no}:${CARD_KIND[m.card]}`, id: null, kind: CARD_KIND[m.card],
        camera_ids: m.camera_ids || [], message: m.message || m.case_no, at: m.at, case_no: m.case_no });
    }
    return false;
  }

  raise(e) {
    const had = this.entries.get(e.key);
    this.entries.set(e.key, { ...had, ...e, id: e.id ?? had?.id });
    this.render();
    if (!had) this.opts.onRaise(e);
    return true;
  }

  render() {
    const items = [...this.entries.values()].sort((a, b) => String(b.at).localeCompare(String(a.at)));
    this.count.textContent = items.length ? ` ${items.length}` : '';
    this.title.firstChild.textContent = t('alarms');
    if (!items.length) { this.list.replaceChildren(h('li', { class: 'empty', text: t('alarms_none') })); return; }
    this.list.replaceChildren(...items.map((e) => {
      const names = e.camera_ids.map((id) => this.opts.cameraName(id)).filter(Boolean).join(t('list_sep'));
      const kind = ['camera_offline', 'case_yellow', 'case_red'].includes(e.kind) ? e.kind : 'other';
      return h('li', { class: `alarm alarm-${kind}`, dataset: { key: e.key, cameras: e.camera_ids.join(',') } },
        h('button', { type: 'button', class: 'alarm-show', title: t('alarm_show'),
          disabled: !e.camera_ids.length, onclick: () => this.opts.onShow(e) },
        h('span', { class: 'alarm-kind', text: t(`kind_${kind}`) }),
        h('span', { class: 'alarm-cams', text: names || e.case_no || '' }),
        h('span', { class: 'alarm-msg', text: detail(e) }),
        h('time', { class: 'alarm-at', text: fmtTime(e.at) })));
    }));
  }
}
