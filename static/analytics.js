// The Analytics page: totals, SVG charts drawn here, per-provider figures and recent requests with attempts.

import { api, el } from "./api.js";

function $(id) { return document.getElementById(id); }

const SVG = "http://www.w3.org/2000/svg";
let range = "24h";
let wired = false;

export async function showAnalytics() {
  if (!wired) {
    wired = true;
    for (const button of $("an-range").querySelectorAll("button")) {
      button.addEventListener("click", () => {
        range = button.dataset.range;
        for (const b of $("an-range").querySelectorAll("button")) b.setAttribute("aria-checked", String(b === button));
        showAnalytics();
      });
    }
  }
  const [data, recent] = await Promise.all([api("GET", `/api/analytics?range=${range}`), api("GET", "/api/requests?limit=50")]);
  const t = data.totals;
  const figure = (value, label) => el("div", {}, el("b", {}, value), el("span", {}, label));
  $("an-totals").replaceChildren(
    figure(t.requests.toLocaleString(), "requests"),
    figure(`${(t.success_rate * 100).toFixed(1)} %`, "success rate"),
    figure(t.prompt_tokens.toLocaleString(), "tokens in"),
    figure(t.completion_tokens.toLocaleString(), "tokens out"),
    figure(`${t.latency_p50_ms} ms`, "latency p50"),
    figure(`${t.latency_p95_ms} ms`, "latency p95"));
  const label = (p) => new Date(p.t).toLocaleString([], range === "24h" ? { hour: "2-digit", minute: "2-digit" } : { month: "short", day: "numeric" });
  $("an-requests").replaceChildren(chart(data.series.map((p) => ({ label: label(p), a: p.successes, b: p.requests - p.successes }))));
  $("an-tokens").replaceChildren(chart(data.series.map((p) => ({ label: label(p), a: p.tokens, b: 0 }))));
  $("an-latency").replaceChildren(chart(data.by_provider.map((p) => ({ label: p.model, a: Math.round(p.avg_latency_ms), b: 0 }))));
  $("an-providers").replaceChildren(...data.by_provider.map((p) => el("tr", {},
    el("td", {}, `${p.platform}/${p.model}`), el("td", {}, String(p.requests)),
    el("td", {}, `${((p.successes / p.requests) * 100).toFixed(0)} %`), el("td", {}, `${Math.round(p.avg_latency_ms)} ms`),
    el("td", {}, p.tokens.toLocaleString()))));
  $("an-empty").hidden = recent.length > 0;
  $("an-recent").replaceChildren(...recent.map(requestRow));
}

function requestRow(r) {
  // An attempt that broke after its 200 says how it ended; a continuation says where it took over.
  const outcome = (a) => (a.resumed_after != null ? `resumed after ${a.resumed_after} characters`
    : a.status === 200 && a.outcome !== "ok" ? a.outcome : a.status ?? a.outcome);
  const attempts = (r.attempt_log || []).map((a) => `${a.platform}/${a.model}: ${outcome(a)}`).join(", ");
  return el("tr", {},
    el("td", {}, new Date(r.ts).toLocaleString()),
    el("td", {}, r.requested_model),
    el("td", {}, r.cached ? `cache (${r.model})` : r.platform ? `${r.platform}/${r.model}` : "—"),
    el("td", {}, String(r.status), r.error ? el("div", { class: "muted" }, r.error) : null),
    el("td", {}, `${r.latency_ms} ms`),
    el("td", {}, `${r.prompt_tokens} / ${r.completion_tokens}`),
    el("td", { title: attempts }, `${r.attempts}${r.stream ? " · stream" : ""}`, attempts ? el("div", { class: "muted" }, attempts) : null));
}

// A bar chart of stacked values a (accent) and b (danger), one bar per point, drawn as SVG.
function chart(points) {
  const width = 320;
  const height = 160;
  const svg = document.createElementNS(SVG, "svg");
  svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
  svg.setAttribute("class", "chart");
  svg.setAttribute("role", "img");
  if (points.length === 0) {
    svg.setAttribute("aria-label", "No data yet");
    svg.append(text("No data yet", width / 2 - 28, height / 2));
    return svg;
  }
  const max = Math.max(1, ...points.map((p) => p.a + p.b));
  const plot = height - 18;
  const step = width / points.length;
  const barWidth = Math.max(1, step * 0.7);
  svg.setAttribute("aria-label", `${points.length} bars, largest ${max}`);
  points.forEach((p, i) => {
    const x = i * step + (step - barWidth) / 2;
    const ha = (p.a / max) * (plot - 4);
    const hb = (p.b / max) * (plot - 4);
    svg.append(rect(x, plot - ha, barWidth, ha, "a", `${p.label}: ${p.a}`));
    if (p.b > 0) svg.append(rect(x, plot - ha - hb, barWidth, hb, "b", `${p.label}: ${p.b} failed`));
  });
  const axis = document.createElementNS(SVG, "line");
  for (const [k, v] of Object.entries({ x1: 0, x2: width, y1: plot, y2: plot, class: "axis" })) axis.setAttribute(k, v);
  svg.append(axis, text(points[0].label, 0, height - 4), text(String(max), 0, 10));
  if (points.length > 1) svg.append(text(points[points.length - 1].label, width - 60, height - 4));
  return svg;
}

function rect(x, y, w, h, cls, title) {
  const r = document.createElementNS(SVG, "rect");
  for (const [k, v] of Object.entries({ x, y, width: w, height: Math.max(h, 0), class: cls })) r.setAttribute(k, v);
  const t = document.createElementNS(SVG, "title");
  t.textContent = title;
  r.append(t);
  return r;
}

function text(value, x, y) {
  const t = document.createElementNS(SVG, "text");
  t.setAttribute("x", x);
  t.setAttribute("y", y);
  t.textContent = value;
  return t;
}
