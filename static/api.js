// The admin API client: keeps the unified key for the browser session only and sends it on every call.

const TOKEN_KEY = "freellmapi.token";

export const session = {
  get token() { return sessionStorage.getItem(TOKEN_KEY); },
  set token(value) {
    if (value) sessionStorage.setItem(TOKEN_KEY, value);
    else sessionStorage.removeItem(TOKEN_KEY);
  },
};

export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

// Calls the API; throws ApiError with the server's OpenAI-shaped message on failure.
export async function api(method, path, body, token = session.token) {
  const headers = { Authorization: `Bearer ${token || ""}` };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let response;
  try {
    response = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  } catch (e) {
    throw new ApiError(0, `The server cannot be reached (${e.message}).`);
  }
  if (response.status === 204) return null;
  const data = await response.json().catch(() => null);
  if (!response.ok) {
    throw new ApiError(response.status, data?.error?.message || `${response.status} ${response.statusText}`);
  }
  return data;
}

// Shows at most the last four characters of a secret.
export function mask(secret) {
  return secret.length > 11 ? `…${secret.slice(-4)}` : "…";
}

// Creates an element with attributes and children, so pages never build HTML from strings.
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === false || value === null || value === undefined) continue;
    if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else if (value === true) node.setAttribute(name, "");
    else node.setAttribute(name, value);
  }
  node.append(...children.filter((c) => c !== null && c !== undefined));
  return node;
}

// Runs a change from a list's row: its error (if any) shown in `errorNode`, then the list refreshed either way.
export async function change(errorNode, call, refresh) {
  say(errorNode, "");
  try {
    await call();
  } catch (e) {
    say(errorNode, e.message);
  }
  await refresh();
}

// Shows or hides a message element.
export function say(node, text) {
  node.textContent = text || "";
  node.hidden = !text;
}
