// Search: by meaning, by words or both (GET /search?mode=), browsing with the same filters when no
// text is given (GET /tracks, cursor paging), "more like this" (GET /tracks/{id}/similar), and
// recommendations from the tracks the user selects (POST /recommend).
import { get, send } from "./api.js";
import { artistHref } from "./artist.js";
import { announce, errorBox, h } from "./dom.js";

const MODES = ["hybrid", "semantic", "keyword"];
const SORTS = ["newest", "oldest", "artist", "title", "quality"];
const FILTERS = ["artist", "sentiment", "theme", "quality_min", "quality_max", "explicit", "analyzer", "source", "since", "until"];
const KEEP = ["q", "mode", "k", "sort", ...FILTERS];

/** The browse filters named in the page's address, as the API takes them (empty ones left out). */
function filtersOf(params) {
  const out = {};
  for (const name of FILTERS) if (params.get(name)) out[name] = params.get(name);
  return out;
}

/** The same filters as the typed body of POST /recommend wants them. */
function bodyFilters(filters) {
  const out = { ...filters };
  for (const name of ["quality_min", "quality_max"]) if (out[name] !== undefined) out[name] = Number(out[name]);
  if (out.explicit !== undefined) out.explicit = out.explicit === "true";
  return out;
}

function profileLine(item) {
  const bits = [];
  const p = item.profile;
  if (p) {
    bits.push(h("span", { class: "tag" }, p.sentiment), h("span", { class: "tag" }, `quality ${p.quality}/10`));
    for (const theme of p.themes) bits.push(h("span", { class: "tag theme" }, theme));
    bits.push(h("span", { class: "muted" }, `by ${p.analyzer}`));
  } else if (item.profile === null) {
    bits.push(h("span", { class: "muted" }, "not analysed yet"));
  }
  if (item.explicit === true) bits.push(h("span", { class: "tag" }, "explicit"));
  return bits.length ? h("p", { class: "profile" }, bits) : null;
}

/** Search hits, similar tracks or browsed tracks; with a checkbox each when ``selection`` is given. */
export function hitList(hits, selection) {
  if (!hits.length) return h("p", { class: "muted" }, "No tracks found.");
  return h(
    "ol",
    { class: "results" },
    hits.map((hit) => {
      const name = `${hit.artist} — ${hit.title}`;
      let pick = null;
      if (selection) {
        pick = h("input", { type: "checkbox", "aria-label": `Select ${name}`, checked: selection.has(hit.id), "data-pick": hit.id });
        pick.addEventListener("change", () => selection.toggle(hit.id, pick.checked));
      }
      return h(
        "li",
        { "data-track": hit.id },
        h(
          "div",
          { class: "hit-head" },
          pick,
          h("a", { href: `#/track/${hit.id}` }, name),
          typeof hit.score === "number" ? h("span", { class: "score" }, `score ${hit.score.toFixed(3)}`) : null,
          h("a", { href: artistHref(hit.artist), class: "artist-link", "aria-label": `Artist page of ${hit.artist}` }, "artist page"),
          h("a", { href: `#/search?like=${hit.id}`, "aria-label": `More like ${name}` }, "more like this"),
        ),
        hit.snippet !== undefined ? h("p", { class: "snippet" }, hit.snippet) : null,
        profileLine(hit),
      );
    }),
  );
}

function field(label, name, value, extra) {
  return h("label", {}, label, h("input", { type: "text", name, value: value || "", ...extra }));
}

function choice(label, name, options, value) {
  return h(
    "label",
    {},
    label,
    h("select", { name }, options.map(([v, text]) => h("option", { value: v, selected: v === value }, text))),
  );
}

function searchForm(params) {
  const input = h("input", { type: "search", name: "q", value: params.get("q") || "", maxlength: 1000 });
  const any = [["", "any"]];
  const form = h(
    "form",
    { class: "bar", role: "search" },
    h("label", {}, "Search lyrics (empty: browse)", input),
    choice("Mode", "mode", MODES.map((m) => [m, m]), params.get("mode") || "hybrid"),
    choice("Results", "k", ["10", "20", "50"].map((n) => [n, n]), params.get("k") || "10"),
    choice("Browse order", "sort", SORTS.map((s) => [s, s]), params.get("sort") || "newest"),
    h(
      "fieldset",
      { class: "filters" },
      h("legend", {}, "Filters"),
      field("Artist", "artist", params.get("artist"), { maxlength: 500 }),
      choice("Sentiment", "sentiment", any.concat(["positive", "negative", "neutral", "mixed"].map((s) => [s, s])), params.get("sentiment") || ""),
      field("Theme", "theme", params.get("theme"), { maxlength: 60 }),
      h("label", {}, "Quality from", h("input", { type: "number", name: "quality_min", min: 1, max: 10, value: params.get("quality_min") || "" })),
      h("label", {}, "Quality to", h("input", { type: "number", name: "quality_max", min: 1, max: 10, value: params.get("quality_max") || "" })),
      choice("Explicit", "explicit", any.concat([["true", "yes"], ["false", "no"]]), params.get("explicit") || ""),
      field("Analyzer", "analyzer", params.get("analyzer"), { maxlength: 100 }),
      field("Source", "source", params.get("source"), { maxlength: 200 }),
      h("label", {}, "Added since", h("input", { type: "date", name: "since", value: params.get("since") || "" })),
      h("label", {}, "Added before", h("input", { type: "date", name: "until", value: params.get("until") || "" })),
    ),
    h("button", { type: "submit" }, "Search"),
  );
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const data = new FormData(form);
    const next = new URLSearchParams();
    for (const name of KEEP) if (data.get(name)) next.set(name, data.get(name));
    location.hash = `#/search?${next}`;
  });
  return { form, input };
}

/** The tracks picked for recommendations, and the button and list that use them. */
function recommender(filters) {
  const picked = new Set();
  const button = h("button", { type: "button", disabled: true, id: "recommend" }, "Recommend from selected (0)");
  const out = h("section", { "aria-label": "Recommendations", id: "recommendations" });
  const selection = {
    has: (id) => picked.has(id),
    toggle(id, on) {
      if (on) picked.add(id);
      else picked.delete(id);
      button.textContent = `Recommend from selected (${picked.size})`;
      button.disabled = picked.size === 0;
    },
  };
  button.addEventListener("click", async () => {
    // The list lands below the results: focus its heading so the keyboard (and the eye) follows.
    const heading = h("h2", { tabindex: "-1" }, "Recommended");
    out.replaceChildren(heading);
    try {
      const answer = await send("POST", "recommend", { liked: [...picked], k: 10, filters: bodyFilters(filters) });
      out.append(hitList(answer.results));
      heading.focus();
      announce(`${answer.results.length} recommendations`);
    } catch (err) {
      out.append(errorBox(err));
    }
  });
  return { selection, tools: h("div", { class: "actions" }, button), out };
}

async function browse(results, params, filters, selection) {
  const sort = params.get("sort") || "newest";
  const limit = params.get("k") || "10";
  const list = h("div", {});
  const more = h("button", { type: "button", class: "secondary", id: "more" }, "More tracks");
  const status = h("p", { class: "muted", id: "browse-status" });
  let shown = 0;
  const load = async (cursor) => {
    more.disabled = true;
    const page = await get("tracks", { ...filters, sort, limit, cursor });
    shown += page.items.length;
    list.append(hitList(page.items, selection));
    more.hidden = !page.next_cursor;
    more.disabled = false;
    status.textContent = `${shown} tracks shown, ${sort} first${page.next_cursor ? "" : " · end of list"}`;
    announce(status.textContent);
    more.onclick = () => load(page.next_cursor).catch((err) => list.append(errorBox(err)));
  };
  results.append(h("h2", {}, "Browse"), status, list, more);
  await load(undefined);
}

export async function render(view, { params }) {
  const q = params.get("q") || "";
  const like = params.get("like");
  const k = params.get("k") || "10";
  const mode = params.get("mode") || "hybrid";
  const filters = filtersOf(params);
  const { form, input } = searchForm(params);
  const { selection, tools, out } = recommender(filters);
  const results = h("section", { "aria-label": "Results", id: "results" });
  view.append(h("h1", {}, "Search"), form, tools, results, out);
  const started = performance.now();
  try {
    if (like) {
      const answer = await get(`tracks/${like}/similar`, { k, ...filters });
      results.append(h("h2", {}, "More like this"), hitList(answer.results, selection));
      announce(`${answer.results.length} similar tracks`);
    } else if (q) {
      const answer = await get("search", { q, k, mode, ...filters });
      results.append(
        h("p", { class: "muted" }, `${answer.results.length} results · ${answer.mode} · embed ${answer.timings_ms.embed} ms · db ${answer.timings_ms.db} ms`),
        hitList(answer.results, selection),
      );
      announce(`${answer.results.length} results`);
    } else {
      await browse(results, params, filters, selection);
      input.focus();
    }
  } catch (err) {
    results.append(errorBox(err));
  }
  results.dataset.ms = String(Math.round(performance.now() - started));
}
