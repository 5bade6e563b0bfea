// Search: semantic search over lyrics (GET /search), and "more like this" (GET /tracks/{id}/similar).
import { get } from "./api.js";
import { announce, errorBox, h } from "./dom.js";

export function hitList(hits) {
  if (!hits.length) return h("p", { class: "muted" }, "No tracks found.");
  return h(
    "ol",
    { class: "results" },
    hits.map((hit) =>
      h(
        "li",
        { "data-track": hit.id },
        h(
          "div",
          { class: "hit-head" },
          h("a", { href: `#/track/${hit.id}` }, `${hit.artist} — ${hit.title}`),
          h("span", { class: "score" }, `score ${hit.score.toFixed(3)}`),
          h("a", { href: `#/search?like=${hit.id}`, "aria-label": `More like ${hit.artist} — ${hit.title}` }, "more like this"),
        ),
        h("p", { class: "snippet" }, hit.snippet),
      ),
    ),
  );
}

export async function render(view, { params }) {
  const q = params.get("q") || "";
  const like = params.get("like");
  const k = params.get("k") || "10";
  const artist = params.get("artist") || "";
  const input = h("input", { type: "search", name: "q", value: q, required: true, maxlength: 1000 });
  const form = h(
    "form",
    { class: "bar", role: "search" },
    h("label", {}, "Search lyrics", input),
    h("label", {}, "Artist", h("input", { type: "text", name: "artist", value: artist })),
    h(
      "label",
      {},
      "Results",
      h("select", { name: "k" }, ["10", "20", "50"].map((n) => h("option", { value: n, selected: n === k }, n))),
    ),
    h("button", { type: "submit" }, "Search"),
  );
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const data = new FormData(form);
    const next = new URLSearchParams();
    for (const name of ["q", "artist", "k"]) if (data.get(name)) next.set(name, data.get(name));
    location.hash = `#/search?${next}`;
  });
  const results = h("section", { "aria-label": "Results", id: "results" });
  view.append(h("h1", {}, "Search"), form, results);
  if (like) {
    const answer = await get(`tracks/${like}/similar`, { k });
    results.append(h("h2", {}, "More like this"), hitList(answer.results));
    announce(`${answer.results.length} similar tracks`);
  } else if (q) {
    const started = performance.now();
    try {
      const answer = await get("search", { q, k, artist });
      results.append(
        h("p", { class: "muted" }, `${answer.results.length} results · embed ${answer.timings_ms.embed} ms · db ${answer.timings_ms.db} ms`),
        hitList(answer.results),
      );
      announce(`${answer.results.length} results`);
    } catch (err) {
      results.append(errorBox(err));
    }
    results.dataset.ms = String(Math.round(performance.now() - started));
  } else {
    input.focus();
  }
}
