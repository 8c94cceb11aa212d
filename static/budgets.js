// Renders rows of GET /api/budgets: each window's use against its limit, the bench, the limits the provider
// stated and the rate limits nobody predicted (prediction misses).

import { el } from "./api.js";

const WINDOWS = ["rpm", "rpd", "tpm", "tpd"];

function compact(n) {
  if (n >= 1e6) return `${+(n / 1e6).toFixed(1)}M`;
  if (n >= 1e4) return `${+(n / 1e3).toFixed(1)}k`;
  return String(n);
}

function clock(iso) {
  return new Date(iso).toLocaleTimeString();
}

// Whether a budget is cooling now.
export function cooling(b) {
  return Boolean(b.cooldown_until) && Date.parse(b.cooldown_until) > Date.now();
}

// Whether a budget has anything worth showing: use, a bench, a lesson or a miss.
export function eventful(b) {
  return WINDOWS.some((w) => b[w].used > 0) || cooling(b) || b.misses.count > 0 || Object.keys(b.learned).length > 0;
}

// "rpm 3/5 · rpd 6/20 · tpm 1.5k/30k": every window that has a limit or some use.
export function usage(b) {
  return WINDOWS.filter((w) => b[w].limit !== null || b[w].used > 0)
    .map((w) => `${w} ${compact(b[w].used)}${b[w].limit === null ? "" : `/${compact(b[w].limit)}`}`)
    .join(" · ");
}

// One budget as a list item named `name`: use, bench, stated limits, then its last miss.
export function budgetItem(b, name) {
  const parts = [usage(b)];
  if (cooling(b)) parts.push(`cooling until ${clock(b.cooldown_until)}`);
  const stated = Object.entries(b.learned).map(([w, limit]) => `${w} ${compact(limit)}`);
  if (stated.length) parts.push(`provider says ${stated.join(", ")}`);
  const item = el("li", { class: "budget" }, el("b", {}, name), " ", parts.join(" · "));
  const m = b.misses;
  if (m.count > 0) {
    const what = `${m.count} unpredicted 429${m.count === 1 ? "" : "s"}, last at ${clock(m.last_at)}`
      + `${m.window ? ` on ${m.window}` : ""}${m.message ? `: ${m.message}` : ""}`;
    item.append(el("div", { class: "miss" }, what));
  }
  return item;
}
