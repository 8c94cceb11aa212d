// The Playground page: a streamed multi-turn chat through the gateway, each answer labelled with who served it,
// how many attempts failed first, latency and tokens; Stop aborts the stream.

import { el, session } from "./api.js";

function $(id) { return document.getElementById(id); }

let wired = false;
let conversation = [];
let conversationId = newId();
let inFlight = null;

function newId() {
  return `playground-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`;
}

export async function showPlayground() {
  if (!wired) {
    wired = true;
    $("pg-form").addEventListener("submit", send);
    $("pg-stop").addEventListener("click", () => inFlight?.abort());
    $("pg-clear").addEventListener("click", () => {
      conversation = [];
      conversationId = newId();
      $("pg-log").replaceChildren();
    });
    $("pg-input").addEventListener("keydown", (e) => {
      if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) $("pg-form").requestSubmit();
    });
  }
  const response = await fetch("/v1/models", { headers: { Authorization: `Bearer ${session.token}` } });
  // The playground chats, so embedding models are left out.
  const listed = response.ok ? (await response.json()).data : [{ id: "auto" }];
  const models = listed.filter((m) => m.type !== "embedding").map((m) => m.id);
  const current = $("pg-model").value;
  $("pg-model").replaceChildren(...models.map((id) => el("option", { value: id, selected: id === current }, id)));
}

function bubble(role, text) {
  const node = el("li", { class: role }, el("span", { class: "text" }, text));
  $("pg-log").append(node);
  return node;
}

// Reads an SSE body, calling `onEvent` with each parsed data payload.
async function readEvents(body, onEvent) {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += decoder.decode(value, { stream: true }).replace(/\r\n?/g, "\n");
    let cut;
    while ((cut = buffer.indexOf("\n\n")) >= 0) {
      const event = buffer.slice(0, cut);
      buffer = buffer.slice(cut + 2);
      const data = event.split("\n").filter((l) => l.startsWith("data:")).map((l) => l.slice(5).trimStart()).join("\n");
      if (data) onEvent(data);
    }
  }
}

async function send(event) {
  event.preventDefault();
  const text = $("pg-input").value.trim();
  if (!text || inFlight) return;
  $("pg-input").value = "";
  conversation.push({ role: "user", content: text });
  bubble("user", text);
  const answer = bubble("assistant", "");
  const textNode = answer.querySelector(".text");
  const meta = el("span", { class: "meta" }, "waiting…");
  answer.append(meta);
  const system = $("pg-system").value.trim();
  const messages = system ? [{ role: "system", content: system }, ...conversation] : conversation;
  inFlight = new AbortController();
  $("pg-stop").hidden = false;
  $("pg-send").disabled = true;
  const started = performance.now();
  let usage = null;
  let failure = null;
  let labels = [];
  try {
    const response = await fetch("/v1/chat/completions", {
      method: "POST",
      signal: inFlight.signal,
      headers: { Authorization: `Bearer ${session.token}`, "Content-Type": "application/json", "X-Session-Id": conversationId },
      body: JSON.stringify({ model: $("pg-model").value || "auto", messages, stream: true, stream_options: { include_usage: true } }),
    });
    if (!response.ok) {
      const data = await response.json().catch(() => null);
      throw new Error(data?.error?.message || `${response.status} ${response.statusText}`);
    }
    labels.push(`via ${response.headers.get("x-routed-via") ?? "?"}`);
    const attempts = response.headers.get("x-fallback-attempts");
    if (attempts) labels.push(`${attempts} fallback attempt${attempts === "1" ? "" : "s"}`);
    meta.textContent = labels.join(" · ");
    await readEvents(response.body, (data) => {
      if (data === "[DONE]") return;
      const chunk = JSON.parse(data);
      if (chunk.error) {
        failure = chunk.error.message;
        return;
      }
      if (chunk.usage) usage = chunk.usage;
      const delta = chunk.choices?.[0]?.delta?.content;
      if (delta) textNode.textContent += delta;
    });
  } catch (e) {
    failure = e.name === "AbortError" ? "stopped" : e.message;
  } finally {
    inFlight = null;
    $("pg-stop").hidden = true;
    $("pg-send").disabled = false;
  }
  labels.push(`${Math.round(performance.now() - started)} ms`);
  if (usage) labels.push(`${usage.prompt_tokens} in / ${usage.completion_tokens} out tokens`);
  if (failure) {
    labels.push(failure);
    answer.classList.add("failed");
  }
  if (!textNode.textContent && !failure) labels.push("empty answer");
  meta.textContent = labels.join(" · ");
  if (textNode.textContent) conversation.push({ role: "assistant", content: textNode.textContent });
}
