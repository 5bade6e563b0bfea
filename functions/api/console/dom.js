// Building the page without markup: every value is set as text or as a checked attribute, so
// nothing a user stored (lyrics, metadata, file names, labels, URLs, error texts) is ever parsed as HTML.

const SVG_NS = "http://www.w3.org/2000/svg";

function setProps(el, props) {
  for (const [name, value] of Object.entries(props || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name === "class") el.setAttribute("class", value);
    else if (name.startsWith("on")) el.addEventListener(name.slice(2), value);
    else if (name === "href") el.setAttribute("href", internalHref(value));
    else el.setAttribute(name, value === true ? "" : String(value));
  }
}

function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

// Links the console makes point inside the console (or to its own API reference); a value from
// the data never becomes a navigable URL, so a stored "javascript:" link stays inert text.
function internalHref(value) {
  const href = String(value);
  return href.startsWith("#/") || href === "docs" ? href : "#/";
}

/** An HTML element with its properties and children (strings become text nodes). */
export function h(tag, props, ...children) {
  const el = document.createElement(tag);
  setProps(el, props);
  append(el, children);
  return el;
}

/** An SVG element (charts, boxes): numbers and text only. */
export function s(tag, props, ...children) {
  const el = document.createElementNS(SVG_NS, tag);
  for (const [name, value] of Object.entries(props || {})) {
    if (value !== undefined && value !== null) el.setAttribute(name, String(value));
  }
  append(el, children);
  return el;
}

/** A problem answer (or any error) as a readable, text-only notice. */
export function errorBox(err) {
  const problem = err && err.problem;
  const title = problem ? `${problem.title} (${err.status})` : "The request failed";
  const detail = problem ? problem.detail : String((err && err.message) || err);
  return h("div", { class: "error", role: "alert" }, h("strong", {}, title), " ", detail);
}

export function facts(pairs) {
  return h("dl", { class: "facts" }, pairs.map(([k, v]) => [h("dt", {}, k), h("dd", {}, v ?? "—")]));
}

export function table(headers, rows, caption) {
  return h(
    "table",
    {},
    caption ? h("caption", { class: "visually-hidden" }, caption) : null,
    h("thead", {}, h("tr", {}, headers.map((x) => h("th", { scope: "col" }, x)))),
    h("tbody", {}, rows.map((cells) => h("tr", {}, cells.map((c) => (c instanceof Node && c.tagName === "TD" ? c : h("td", {}, c)))))),
  );
}

export function when(iso) {
  if (!iso) return "—";
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? String(iso) : d.toLocaleString();
}

export function announce(text) {
  const region = document.getElementById("announce");
  if (region) region.textContent = text;
}
