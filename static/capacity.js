// The Capacity page, the dashboard's first: how much free LLM is left today. Per platform and in total, the
// requests and tokens its keys' daily budgets have left and when each window resets; a bar of today's use against
// capacity; and the keys that are invalid or benched, with why. It only reads GET /api/budgets and GET /api/keys.

import { api, el } from "./api.js";

function $(id) { return document.getElementById(id); }

export async function showCapacity() {
  const [budgets, keys] = await Promise.all([api("GET", "/api/budgets"), api("GET", "/api/keys")]);
  const rows = budgets.filter((b) => b.scope !== "key");
  const shared = budgets.filter((b) => b.scope === "key");
  const platforms = [...new Set(rows.map((b) => b.platform))].sort();
  const perPlatform = new Map(platforms.map((p) => [p, sum(rows.filter((b) => b.platform === p), shared)]));
  const totals = combine([...perPlatform.values()]);
  $("cap-loading").hidden = true;
  $("cap-total").replaceChildren(
    el("p", { class: "big" }, `${left(totals.requests)} requests and ${left(totals.tokens)} tokens left today`),
    el("p", { class: "muted" }, rows.length ? `across ${platforms.length} platform${platforms.length === 1 ? "" : "s"} and ${keys.length} key${keys.length === 1 ? "" : "s"}`
      : "No budgets yet: add a provider key on the Keys page."));
  $("cap-platforms").replaceChildren(...platforms.map((platform) => {
    const s = perPlatform.get(platform);
    return el("tr", {},
      el("th", { scope: "row" }, platform),
      el("td", {}, usage(s.requests, `${platform} requests today`)),
      el("td", {}, usage(s.tokens, `${platform} tokens today`)),
      el("td", {}, resets(rows.filter((b) => b.platform === platform))));
  }));
  const trouble = keys.filter((k) => !k.enabled || k.status === "invalid" || k.status === "error");
  const cooling = budgets.filter((b) => b.cooldown_until && Date.parse(b.cooldown_until) > Date.now());
  const items = [
    ...trouble.map((k) => el("li", {}, el("strong", {}, `${k.label || k.platform} ${k.masked}`), ` ${k.enabled ? k.status : "disabled"}`,
      k.last_error ? el("span", { class: "muted" }, ` · ${k.last_error}`) : null)),
    ...cooling.map((b) => el("li", {}, el("strong", {}, b.model ? `${b.platform}/${b.model}` : `${b.platform} key ${b.key_id} (all models)`),
      ` benched until ${new Date(b.cooldown_until).toLocaleTimeString()}`,
      b.misses?.message ? el("span", { class: "muted" }, ` · ${b.misses.message}`) : null)),
  ];
  $("cap-trouble").replaceChildren(...(items.length ? items : [el("li", { class: "muted" }, "Every key is usable.")]));
}

// One platform's daily use and limits, key by key: a key's models add up, but never past a limit the key shares
// across its models (OpenRouter's free models share 50 requests a day, say). Windows with no published limit are
// counted apart.
function sum(rows, shared) {
  const byKey = new Map();
  for (const b of rows) byKey.set(b.key_id, [...(byKey.get(b.key_id) ?? []), b]);
  const perKey = [...byKey.entries()].map(([key, own]) => {
    const keyWide = shared.find((s) => s.key_id === key && s.platform === own[0].platform);
    const windowOf = (window) => {
      const models = own.reduce((acc, b) => (b[window].limit === null
        ? { ...acc, unlimited: acc.unlimited + 1 }
        : { used: acc.used + b[window].used, limit: acc.limit + b[window].limit, unlimited: acc.unlimited }),
      { used: 0, limit: 0, unlimited: 0 });
      const cap = keyWide?.[window];
      if (!cap || cap.limit === null) return models;
      return { used: cap.used, limit: Math.min(cap.limit, models.unlimited ? cap.limit : models.limit), unlimited: 0 };
    };
    return { requests: windowOf("rpd"), tokens: windowOf("tpd") };
  });
  return combine(perKey);
}

function combine(parts) {
  const add = (window) => parts.reduce((acc, p) => ({ used: acc.used + p[window].used, limit: acc.limit + p[window].limit,
    unlimited: acc.unlimited + p[window].unlimited }), { used: 0, limit: 0, unlimited: 0 });
  return { requests: add("requests"), tokens: add("tokens") };
}

function left(total) {
  if (total.limit === 0 && total.unlimited) return "unmetered";
  return Math.max(0, total.limit - total.used).toLocaleString();
}

// A bar of today's use against capacity, with the numbers in words beside it.
function usage(total, label) {
  if (total.limit === 0) return el("span", { class: "muted" }, total.unlimited ? "no daily limit published" : "–");
  const words = `${total.used.toLocaleString()} of ${total.limit.toLocaleString()} used, ${left(total)} left`;
  return el("span", { class: "usage" },
    el("meter", { min: "0", max: String(total.limit), value: String(Math.min(total.used, total.limit)),
      high: String(Math.round(total.limit * 0.8)), "aria-label": label }),
    el("span", {}, words));
}

function resets(rows) {
  const limited = rows.filter((b) => b.rpd.limit !== null || b.tpd.limit !== null);
  const times = limited.map((b) => b.day_resets_at).filter(Boolean).map(Date.parse);
  if (times.length) return `resets ${new Date(Math.min(...times)).toLocaleString()}`;
  return limited.length ? "rolling: each use counts for 24 h" : "–";
}
