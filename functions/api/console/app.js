// The console's shell: asks for the API key once when the API needs one, then routes #/<page>
// to the page modules. Every page reads the public API only.
import { forgetKey, hasKey, keyRequired, loadConfig, setKey } from "./api.js";
import * as artist from "./artist.js";
import { errorBox, h } from "./dom.js";
import * as images from "./images.js";
import * as operations from "./operations.js";
import * as search from "./search.js";
import * as streams from "./streams.js";
import * as track from "./track.js";
import * as uploads from "./uploads.js";

const PAGES = {
  search: { nav: "search", render: search.render },
  track: { nav: "search", render: track.render },
  artist: { nav: "search", render: artist.render },
  uploads: { nav: "uploads", render: uploads.render },
  images: { nav: "images", render: images.render },
  image: { nav: "images", render: images.renderOne },
  streams: { nav: "streams", render: streams.render },
  stream: { nav: "streams", render: streams.renderOne },
  operations: { nav: "operations", render: operations.render },
};

let cleanup = null;
let generation = 0;

function parseHash() {
  const raw = location.hash.replace(/^#\/?/, "");
  const [path, query] = raw.split("?", 2);
  const [name, id] = path.split("/");
  return { name: name || "search", id, params: new URLSearchParams(query || "") };
}

let refused = false; // the last key sent was refused (401): say so when asking again

function askForKey(view) {
  const input = h("input", { type: "password", name: "key", required: true, autocomplete: "off" });
  const form = h(
    "form",
    { class: "bar" },
    h("label", {}, "API key", input),
    h("button", { type: "submit" }, "Use key"),
  );
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    setKey(input.value);
    refused = false;
    route();
  });
  view.replaceChildren(
    h("h1", {}, "API key"),
    h("p", {}, "This API needs a key. It is kept for this browser tab only and sent as a header."),
    refused ? h("p", { class: "error", role: "alert" }, "The API refused that key; enter it again.") : null,
    form,
  );
  input.focus();
}

async function route() {
  const mine = ++generation;
  if (cleanup) cleanup();
  cleanup = null;
  const main = document.getElementById("main");
  window.scrollTo(0, 0);
  // Each navigation renders into its own container, so a slow page left behind cannot write into the next.
  const view = h("div", {});
  main.replaceChildren(view);
  const forget = document.getElementById("forget-key");
  forget.hidden = !keyRequired() || !hasKey();
  if (keyRequired() && !hasKey()) {
    askForKey(view);
    return;
  }
  const { name, id, params } = parseHash();
  const page = PAGES[name] || PAGES.search;
  for (const link of document.querySelectorAll("nav a[data-page]")) {
    if (link.dataset.page === page.nav) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  main.setAttribute("aria-busy", "true");
  try {
    const done = await page.render(view, { id, params });
    if (mine === generation) cleanup = typeof done === "function" ? done : null;
    else if (typeof done === "function") done();
  } catch (err) {
    if (mine === generation) view.append(errorBox(err));
  } finally {
    if (mine === generation) {
      main.removeAttribute("aria-busy");
      const heading = view.querySelector("h1");
      document.title = heading ? `${heading.textContent} · contentfn` : "contentfn console";
    }
  }
}

async function start() {
  document.getElementById("forget-key").addEventListener("click", () => {
    forgetKey();
    route();
  });
  window.addEventListener("contentfn:unauthorized", () => {
    refused = true;
    route();
  });
  window.addEventListener("hashchange", () => {
    // "#main" is the skip link (the browser moves focus itself); pages live under "#/".
    if (location.hash && !location.hash.startsWith("#/")) return;
    route().then(() => document.getElementById("main").focus());
  });
  try {
    await loadConfig();
  } catch (err) {
    document.getElementById("main").replaceChildren(errorBox(err));
    return;
  }
  await route();
}

start();
