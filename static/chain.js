// The Fallback chain page: reorder by drag and drop or from the keyboard (Alt+↑/↓), enable or disable
// entries, see each entry's live state, and save with PUT /api/chain.

import { api, el, say } from "./api.js";
import { showAliases } from "./aliases.js";
import { budgetItem, cooling } from "./budgets.js";

function $(id) { return document.getElementById(id); }

let wired = false;

export async function showChain() {
  if (!wired) {
    wired = true;
    $("chain-save").addEventListener("click", save);
    wireDrag($("chain"));
  }
  const [chain, budgets, keys] = await Promise.all([api("GET", "/api/chain"), api("GET", "/api/budgets"),
    api("GET", "/api/keys")]);
  const keyNames = new Map(keys.map((k) => [k.id, `${k.label || k.platform} ${k.masked}`]));
  $("chain-loading").hidden = true;
  say($("chain-status"), "");
  $("chain").replaceChildren(...chain.map((entry) => item(entry, budgets, keyNames)));
  await showAliases();
}

function liveState(rows) {
  if (rows.length === 0) return "no keys";
  const benched = rows.filter(cooling);
  const used = rows.reduce((n, b) => n + b.rpd.used, 0);
  const limit = rows.every((b) => b.rpd.limit !== null) ? rows.reduce((n, b) => n + b.rpd.limit, 0) : null;
  const day = rows[0].day_window === "rolling-24h" ? "last 24 h" : "today";
  const parts = [`${rows.length - benched.length}/${rows.length} keys usable`, `${day} ${used}${limit === null ? "" : ` of ${limit}`}`];
  if (benched.length) {
    const until = new Date(Math.min(...benched.map((b) => Date.parse(b.cooldown_until))));
    parts.push(`cooling until ${until.toLocaleTimeString()}`);
  }
  const misses = rows.reduce((n, b) => n + b.misses.count, 0);
  if (misses) parts.push(`${misses} unpredicted 429${misses === 1 ? "" : "s"}`);
  return parts.join(" · ");
}

function item(entry, budgets, keyNames) {
  const name = `${entry.platform}/${entry.model}`;
  const rows = budgets.filter((b) => b.platform === entry.platform && b.model === entry.model);
  const node = el("li", { draggable: "true", tabindex: "0", "data-platform": entry.platform, "data-model": entry.model,
    "aria-label": name, onkeydown: (e) => moveByKey(e, node) },
    el("input", { type: "checkbox", checked: entry.enabled, "aria-label": `Use ${name} for auto` }),
    el("span", { class: "name" }, name),
    el("span", { class: "state" }, liveState(rows)));
  if (rows.length) {
    node.append(el("details", { class: "budgets" }, el("summary", {}, "Budgets per key"),
      el("ul", {}, ...rows.map((b) => budgetItem(b, keyNames.get(b.key_id) ?? `key ${b.key_id}`)))));
  }
  return node;
}

function moveByKey(event, node) {
  if (!event.altKey || (event.key !== "ArrowUp" && event.key !== "ArrowDown")) return;
  event.preventDefault();
  const sibling = event.key === "ArrowUp" ? node.previousElementSibling : node.nextElementSibling;
  if (!sibling) return;
  if (event.key === "ArrowUp") sibling.before(node);
  else sibling.after(node);
  node.focus();
  say($("chain-status"), "Order changed; save to keep it.");
}

function wireDrag(list) {
  let dragged = null;
  list.addEventListener("dragstart", (e) => {
    dragged = e.target.closest("li");
    dragged?.classList.add("dragging");
    e.dataTransfer.effectAllowed = "move";
    e.dataTransfer.setData("text/plain", dragged?.getAttribute("aria-label") || "");
  });
  list.addEventListener("dragend", () => {
    dragged?.classList.remove("dragging");
    dragged = null;
  });
  list.addEventListener("dragover", (e) => {
    e.preventDefault();
    const over = e.target.closest("li");
    if (!dragged || !over || over === dragged) return;
    const box = over.getBoundingClientRect();
    if (e.clientY < box.top + box.height / 2) over.before(dragged);
    else over.after(dragged);
    say($("chain-status"), "Order changed; save to keep it.");
  });
  list.addEventListener("drop", (e) => e.preventDefault());
}

async function save() {
  const entries = [...$("chain").children].map((li) => ({
    platform: li.dataset.platform,
    model: li.dataset.model,
    enabled: li.querySelector("input").checked,
  }));
  try {
    await api("PUT", "/api/chain", entries);
    say($("chain-status"), "Saved.");
  } catch (e) {
    say($("chain-status"), `Not saved: ${e.message}`);
  }
}
