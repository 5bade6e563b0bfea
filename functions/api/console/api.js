// The console's only way to the data: the public API, relative to the page (so a stage prefix
// works), with the key from session storage sent as a header, never in a URL.

const KEY = "contentfn.apiKey";
let config = null;

export class ApiError extends Error {
  constructor(status, problem) {
    super(problem.detail || problem.title || `HTTP ${status}`);
    this.status = status;
    this.problem = problem;
  }
}

export async function loadConfig() {
  const response = await fetch("console/config", { headers: { Accept: "application/json" } });
  if (!response.ok) throw new ApiError(response.status, await problemOf(response));
  config = await response.json();
  return config;
}

export const keyRequired = () => Boolean(config && config.key_required);
export const hasKey = () => Boolean(sessionStorage.getItem(KEY));
export const setKey = (key) => sessionStorage.setItem(KEY, key);
export const forgetKey = () => sessionStorage.removeItem(KEY);

function headers(extra) {
  const out = { Accept: "application/json", ...extra };
  const key = sessionStorage.getItem(KEY);
  if (key) out["X-API-Key"] = key;
  return out;
}

async function problemOf(response) {
  try {
    return await response.json();
  } catch {
    return { title: response.statusText || "Error", detail: "", status: response.status };
  }
}

async function checked(response) {
  if (response.ok) return response;
  const problem = await problemOf(response);
  if (response.status === 401) {
    forgetKey();
    window.dispatchEvent(new Event("contentfn:unauthorized"));
  }
  throw new ApiError(response.status, problem);
}

function withQuery(path, query) {
  const params = new URLSearchParams();
  for (const [name, value] of Object.entries(query || {})) {
    if (value !== undefined && value !== null && value !== "") params.set(name, String(value));
  }
  const text = params.toString();
  return text ? `${path}?${text}` : path;
}

export async function get(path, query) {
  const response = await checked(await fetch(withQuery(path, query), { headers: headers() }));
  return response.json();
}

export async function send(method, path, body) {
  const init = { method, headers: headers(body === undefined ? {} : { "Content-Type": "application/json" }) };
  if (body !== undefined) init.body = JSON.stringify(body);
  const response = await checked(await fetch(path, init));
  return response.json();
}

/** An image's bytes fetched with the key, as a blob: URL the page can show (revoke when done). */
export async function imageUrl(id) {
  const response = await checked(await fetch(`images/${id}/content`, { headers: headers({ Accept: "image/*" }) }));
  return URL.createObjectURL(await response.blob());
}
