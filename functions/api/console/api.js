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

/**
 * Where to show an image from: the short-lived signed URL the API gives in the cloud (read with no
 * key: the key never travels to the bucket's host), else its bytes fetched with the key, as a blob:
 * URL (revoke when done; revoking a signed URL does nothing).
 */
export async function imageUrl(id) {
  const link = await get(`images/${id}/link`);
  if (link.signed) return link.url;
  const response = await checked(await fetch(link.url, { headers: headers({ Accept: "image/*" }) }));
  return URL.createObjectURL(await response.blob());
}

/**
 * Send a file's bytes where POST /uploads said, reporting progress (XMLHttpRequest, since fetch has
 * no upload progress). A signed bucket URL gets exactly the signed headers; the API, the key too.
 */
export function putFile(target, file, onProgress) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open(target.method, target.url);
    const sent = target.via === "api" ? headers(target.headers) : target.headers;
    for (const [name, value] of Object.entries(sent)) xhr.setRequestHeader(name, value);
    xhr.upload.addEventListener("progress", (event) => {
      if (event.lengthComputable) onProgress(event.loaded, event.total);
    });
    xhr.addEventListener("load", () => {
      if (xhr.status >= 200 && xhr.status < 300) {
        onProgress(file.size, file.size);
        resolve(xhr.status);
        return;
      }
      let problem = { title: xhr.statusText || "Upload refused", detail: "", status: xhr.status };
      try {
        if (target.via === "api") problem = JSON.parse(xhr.responseText);
      } catch {
        // a bucket answers XML; its status is what the page can say
      }
      reject(new ApiError(xhr.status, problem));
    });
    xhr.addEventListener("error", () => reject(new Error("the upload could not reach its destination")));
    xhr.addEventListener("abort", () => reject(new Error("the upload was stopped")));
    xhr.send(file);
  });
}
