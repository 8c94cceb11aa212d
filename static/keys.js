// The Keys page: add, list (masked), enable/disable, check and delete provider keys; show and rotate the
// unified key.

import { api, change, el, mask, say, session } from "./api.js";
import { budgetItem, eventful } from "./budgets.js";

const PLATFORMS = ["google", "groq", "cerebras", "sambanova", "nvidia", "mistral", "openrouter", "github",
  "huggingface", "cohere", "cloudflare", "zhipu", "moonshot", "minimax", "custom"];

function $(id) { return document.getElementById(id); }

let wired = false;

export async function showKeys() {
  if (!wired) wire();
  showToken();
  await refresh();
}

function wire() {
  wired = true;
  const select = $("key-platform");
  select.replaceChildren(...PLATFORMS.map((p) => el("option", { value: p }, p)));
  select.addEventListener("change", () => {
    for (const field of document.querySelectorAll(".custom-only")) field.hidden = select.value !== "custom";
    $("key-secret").placeholder = select.value === "cloudflare" ? "ACCOUNT_ID:API_TOKEN" : "";
  });
  $("key-form").addEventListener("submit", addKey);
  $("token-copy").addEventListener("click", async () => {
    await navigator.clipboard.writeText(session.token).catch(() => {});
    say($("token-note"), "Copied to the clipboard.");
  });
  $("token-rotate").addEventListener("click", rotate);
}

async function addKey(event) {
  event.preventDefault();
  const form = event.target;
  const body = { platform: form.platform.value, key: form.key.value.trim() };
  if (form.label.value.trim()) body.label = form.label.value.trim();
  if (body.platform === "custom") {
    body.base_url = form.base_url.value.trim();
    body.models = form.models.value.split(",").map((m) => m.trim()).filter(Boolean);
  }
  say($("key-error"), "");
  try {
    await api("POST", "/api/keys", body);
  } catch (e) {
    say($("key-error"), e.message);
    return;
  }
  form.key.value = "";
  form.label.value = "";
  await refresh();
}

async function refresh() {
  const [keys, budgets] = await Promise.all([api("GET", "/api/keys"), api("GET", "/api/budgets")]);
  $("keys-loading").hidden = true;
  $("keys-empty").hidden = keys.length > 0;
  $("key-rows").replaceChildren(...keys.map((key) => row(key, budgets.filter((b) => b.key_id === key.id))));
}

// The key's budgets: first the limits it shares across all its models (a key-wide row, always shown, since
// it has a limit), then each model's that has something to show.
function budgetsCell(budgets) {
  const models = budgets.filter((b) => b.scope !== "key");
  const shown = [...budgets.filter((b) => b.scope === "key"), ...models.filter(eventful)];
  if (shown.length === 0) return el("span", { class: "muted" }, models.length ? "unused" : "—");
  return el("ul", { class: "budgets" },
    ...shown.map((b) => budgetItem(b, b.scope === "key" ? "all models" : b.model)));
}

function row(key, budgets) {
  const status = el("span", { class: `badge ${key.status}` }, key.status.replace("_", " "));
  const detail = key.last_error ? el("div", { class: "muted" }, key.last_error) : null;
  const toggle = el("input", {
    type: "checkbox", checked: key.enabled, "aria-label": `Enable ${key.platform} key ${key.label || key.id}`,
    onchange: (e) => act(() => api("PATCH", `/api/keys/${key.id}`, { enabled: e.target.checked })),
  });
  const check = el("button", { type: "button", class: "quiet",
    onclick: () => act(() => api("POST", `/api/keys/${key.id}/check`)) }, "Check now");
  const remove = el("button", { type: "button", class: "quiet danger",
    onclick: () => confirm(`Delete the ${key.platform} key ${key.masked}?`) && act(() => api("DELETE", `/api/keys/${key.id}`)) },
    "Delete");
  return el("tr", { "data-key-id": key.id },
    el("td", {}, key.platform),
    el("td", {}, key.label || el("span", { class: "muted" }, "—")),
    el("td", {}, el("code", {}, key.masked)),
    el("td", {}, status, detail),
    el("td", {}, budgetsCell(budgets)),
    el("td", {}, toggle),
    el("td", {}, check, " ", remove));
}

function act(call) {
  return change($("key-error"), call, refresh);
}

function showToken() {
  $("token-masked").textContent = mask(session.token || "");
}

async function rotate() {
  if (!confirm("Rotate the unified key? Every client must switch to the new one.")) return;
  try {
    const { token } = await api("POST", "/api/token/rotate");
    session.token = token;
    showToken();
    say($("token-note"), "Rotated. Copy the new key into your clients.");
  } catch (e) {
    say($("token-note"), e.message);
  }
}
