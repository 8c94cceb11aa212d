// The Aliases card on the Fallback chain page: names a client may use as `model`, each trying its targets in
// order. Lists them from GET /api/aliases, edits them as rows (name; targets separated by commas), and saves the
// whole list with PUT /api/aliases, which refuses names that are models and targets that name none.

import { api, el, say } from "./api.js";

function $(id) { return document.getElementById(id); }

let wired = false;

export async function showAliases() {
  if (!wired) {
    wired = true;
    $("alias-add").addEventListener("click", () => {
      const added = row({ name: "", targets: [] });
      $("aliases").append(added);
      added.querySelector("input").focus();
    });
    $("alias-save").addEventListener("click", save);
  }
  const aliases = await api("GET", "/api/aliases");
  say($("alias-status"), "");
  $("aliases").replaceChildren(...aliases.map(row));
}

function row(alias) {
  const node = el("li", { class: "alias" },
    el("label", {}, "Name ", el("input", { class: "alias-name", value: alias.name, autocomplete: "off",
      placeholder: "e.g. team-default", spellcheck: "false" })),
    el("label", {}, "Targets ", el("input", { class: "alias-targets", value: alias.targets.join(", "),
      autocomplete: "off", placeholder: "groq/llama-3.3-70b-versatile, gpt-oss-120b", spellcheck: "false" })),
    el("button", { type: "button", class: "quiet", onclick: () => { node.remove(); say($("alias-status"), "Removed; save to keep it."); } },
      "Remove"));
  return node;
}

async function save() {
  const aliases = [...$("aliases").children].map((li) => ({
    name: li.querySelector(".alias-name").value.trim(),
    targets: li.querySelector(".alias-targets").value.split(",").map((t) => t.trim()).filter(Boolean),
  })).filter((a) => a.name || a.targets.length);
  try {
    await api("PUT", "/api/aliases", aliases);
    say($("alias-status"), "Aliases saved.");
  } catch (e) {
    say($("alias-status"), `Not saved: ${e.message}`);
  }
}
