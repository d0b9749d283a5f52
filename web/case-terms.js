// The words of cases shared by the case search, the case page and playback: event kinds (受理 … 评标结束),
// case types, statuses, cards and clip coverage, in zh-CN and English. Unknown values show as they are.
import { bus, strings, t } from './core.js';

strings({
  'zh-CN': { ev_accepted: '受理', ev_processing: '承办', ev_reviewed: '审核', ev_approved: '批准', ev_completed: '办结',
    ev_opening_start: '开标开始', ev_opening_end: '开标结束', ev_evaluation_start: '评标开始', ev_evaluation_end: '评标结束',
    ty_approval: '办件', ty_bid: '招投标项目', st_open: '办理中', st_completed: '已办结',
    card_none: '无', card_yellow: '黄牌', card_red: '红牌',
    cov_full: '完整', cov_partial: '部分缺失', cov_missing: '无录像' },
  en: { ev_accepted: 'Accepted', ev_processing: 'Processing', ev_reviewed: 'Reviewed', ev_approved: 'Approved',
    ev_completed: 'Completed', ev_opening_start: 'Opening starts', ev_opening_end: 'Opening ends',
    ev_evaluation_start: 'Evaluation starts', ev_evaluation_end: 'Evaluation ends',
    ty_approval: 'Approval', ty_bid: 'Bid project', st_open: 'Open', st_completed: 'Completed',
    card_none: 'None', card_yellow: 'Yellow card', card_red: 'Red card',
    cov_full: 'Complete', cov_partial: 'Partly missing', cov_missing: 'No footage' },
});

const word = (prefix) => (v) => {
  const k = `${prefix}_${v}`;
  const s = t(k);
  return s === k ? String(v ?? '') : s;
};
export const kindLabel = word('ev');
export const typeLabel = word('ty');
export const statusLabel = word('st');
export const cardLabel = word('card');
export const coverageLabel = word('cov');

/** Renders the page again when the language changes (pages build their strings once): the router mounts
 *  the same address anew. Returns the function that stops listening. */
export function remountOnLang() {
  const again = () => window.dispatchEvent(new HashChangeEvent('hashchange'));
  bus.addEventListener('lang', again);
  return () => bus.removeEventListener('lang', again);
}
