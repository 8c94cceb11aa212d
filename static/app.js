// The dashboard shell: sign-in, navigation between pages, sign-out.

import { api, session, say, ApiError } from "./api.js";
import { showKeys } from "./keys.js";
import { showChain } from "./chain.js";
import { showClients } from "./clients.js";
import { showPlayground } from "./playground.js";
import { showAnalytics } from "./analytics.js";

const pages = { keys: showKeys, chain: showChain, clients: showClients, playground: showPlayground, analytics: showAnalytics };

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
  const name = location.hash.slice(1) in pages ? location.hash.slice(1) : "keys";
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

document.addEventListener("DOMContentLoaded", () => {
  $("login-form").addEventListener("submit", signIn);
  $("logout").addEventListener("click", () => {
    session.token = null;
    route();
  });
  window.addEventListener("hashchange", route);
  route();
});
