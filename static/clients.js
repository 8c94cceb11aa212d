// The Clients page: client keys for the apps and people sharing this gateway. Creates a key (shown once, with a
// copy button), edits its limits and models, enables or disables it, deletes it, and shows today's use.

import { api, change, el, say } from "./api.js";

function $(id) { return document.getElementById(id); }

const LIMITS = ["rpm", "rpd", "tpm", "tpd"];
const LIMIT_LABELS = { rpm: "Requests per minute", rpd: "Requests per day", tpm: "Tokens per minute", tpd: "Tokens per day" };
let wired = false;
let editing = null;

export async function showClients() {
  if (!wired) wire();
  await refresh();
}

function wire() {
  wired = true;
  const fields = LIMITS.map((limit) => el("div", {},
    el("label", { for: `client-${limit}` }, LIMIT_LABELS[limit]),
    el("input", { id: `client-${limit}`, name: limit, type: "number", min: "0", step: "1", inputmode: "numeric" })));
  $("client-submit").parentElement.before(...fields);
  $("client-form").addEventListener("submit", save);
  $("client-cancel").addEventListener("click", () => edit(null));
  $("client-key-copy").addEventListener("click", async () => {
    await navigator.clipboard.writeText($("client-key").textContent).catch(() => {});
    say($("client-key-note"), "Copied to the clipboard.");
  });
}

// The form's fields as an API body: empty limits are none, an empty model list allows every model.
function body(form) {
  const out = { name: form.name.value.trim() };
  const models = form.models.value.split(",").map((m) => m.trim()).filter(Boolean);
  out.models = models.length ? models : null;
  for (const limit of LIMITS) {
    const text = form[limit].value.trim();
    out[limit] = text === "" ? null : Number(text);
  }
  return out;
}

async function save(event) {
  event.preventDefault();
  const form = event.target;
  say($("client-error"), "");
  try {
    if (editing) {
      await api("PATCH", `/api/clients/${editing.id}`, body(form));
      edit(null);
    } else {
      const made = await api("POST", "/api/clients", body(form));
      $("client-key").textContent = made.key;
      $("client-key-name").textContent = made.name;
      say($("client-key-note"), "");
      $("client-new").hidden = false;
      $("client-key-copy").focus();
      form.reset();
    }
  } catch (e) {
    say($("client-error"), e.message);
    return;
  }
  await refresh();
}

// Puts a client into the form for editing, or (null) back to creating one.
function edit(client) {
  editing = client;
  const form = $("client-form");
  form.reset();
  $("client-form-title").textContent = client ? `Edit client ${client.name}` : "New client key";
  $("client-submit").textContent = client ? "Save changes" : "Create key";
  $("client-cancel").hidden = !client;
  if (client) {
    form.name.value = client.name;
    form.models.value = (client.models || []).join(", ");
    for (const limit of LIMITS) form[limit].value = client[limit] ?? "";
    $("client-new").hidden = true;
    form.name.focus();
  }
}

async function refresh() {
  const clients = await api("GET", "/api/clients");
  $("clients-loading").hidden = true;
  $("clients-empty").hidden = clients.length > 0;
  $("client-rows").replaceChildren(...clients.map(row));
}

// "used / limit" for one window, or just the use where there is no limit.
function usage(client, limit) {
  const used = client.used[limit];
  return client[limit] === null ? `${used}` : `${used} / ${client[limit]}`;
}

function row(client) {
  const toggle = el("input", {
    type: "checkbox", checked: client.enabled, "aria-label": `Enable client ${client.name}`,
    onchange: (e) => act(() => api("PATCH", `/api/clients/${client.id}`, { enabled: e.target.checked })),
  });
  const change = el("button", { type: "button", class: "quiet", "aria-label": `Edit client ${client.name}`,
    onclick: () => edit(client) }, "Edit");
  const remove = el("button", { type: "button", class: "quiet danger", "aria-label": `Delete client ${client.name}`,
    onclick: () => confirm(`Delete the client key ${client.name} (${client.masked})? Apps using it stop at once.`)
      && act(() => api("DELETE", `/api/clients/${client.id}`)) }, "Delete");
  const models = client.models ? client.models.join(", ") : el("span", { class: "muted" }, "all");
  return el("tr", { "data-client-id": client.id },
    el("td", {}, client.name),
    el("td", {}, el("code", {}, client.masked)),
    el("td", {}, models),
    el("td", {}, `${usage(client, "rpd")} requests, ${usage(client, "tpd")} tokens`),
    el("td", { class: "muted" }, `${usage(client, "rpm")} requests, ${usage(client, "tpm")} tokens`),
    el("td", {}, toggle),
    el("td", {}, change, " ", remove));
}

function act(call) {
  return change($("client-error"), call, refresh);
}
