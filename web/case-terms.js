// The words of cases shared by the case search, the case page and playback: event kinds (受理 … 评标结束),
// case types, statuses, cards and clip coverage, in zh-CN and English. Unknown values show as they are.
import { bus, t } from './core.js';

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
