// The dashboard shell: sign-in (with the unified key, or once with a first-run link), navigation between pages,
// sign-out.

import { api, session, say, ApiError } from "./api.js";
import { showCapacity } from "./capacity.js";
import { showKeys } from "./keys.js";
import { showChain } from "./chain.js";
import { showClients } from "./clients.js";
import { showPlayground } from "./playground.js";
import { showAnalytics } from "./analytics.js";

const pages = { capacity: showCapacity, keys: showKeys, chain: showChain, clients: showClients, playground: showPlayground,
  analytics: showAnalytics };

function $(id) { return document.getElementById(id); }

function signedIn(yes) {
  $("login").hidden = yes;
  $("nav").hidden = !yes;
  $("logout").hidden = !yes;
  for (const page of document.querySelectorAll(".page")) page.hidden = true;
}

async function route() {
  if (!session.token) {
    signedIn(false);
    $("login-key").focus();
    return;
  }
  signedIn(true);
  const name = location.hash.slice(1) in pages ? location.hash.slice(1) : "capacity";
  for (const link of document.querySelectorAll("nav a")) {
    if (link.dataset.page === name) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  $(`page-${name}`).hidden = false;
  try {
    await pages[name]();
  } catch (e) {
    if (e instanceof ApiError && e.status === 401) {
      session.token = null;
      route();
    } else {
      throw e;
    }
  }
}

async function signIn(event) {
  event.preventDefault();
  const key = $("login-key").value.trim();
  say($("login-error"), "");
  try {
    await api("GET", "/api/keys", undefined, key);
  } catch (e) {
    say($("login-error"), e.status === 401 ? "That key is not the unified key. Check it and try again." : e.message);
    return;
  }
  session.token = key;
  $("login-key").value = "";
  route();
}

// A first-run sign-in link (`#signin=<code>`, printed once in the log): its code is exchanged once for the
// unified key, kept for this browser session like a typed key; the address loses the code at once.
async function signInByLink() {
  const match = /^#signin=([0-9a-f]+)$/.exec(location.hash);
  if (!match) return;
  history.replaceState(null, "", location.pathname);
  try {
    const answer = await api("POST", "/api/signin", undefined, match[1]);
    session.token = answer.token;
  } catch (e) {
    say($("login-error"), e.status === 401
      ? "This sign-in link was used already or has expired. Sign in with the unified key (`freellmapi token` prints it)."
      : e.message);
  }
}

document.addEventListener("DOMContentLoaded", async () => {
  $("login-form").addEventListener("submit", signIn);
  $("logout").addEventListener("click", () => {
    session.token = null;
    route();
  });
  window.addEventListener("hashchange", route);
  await signInByLink();
  route();
});
