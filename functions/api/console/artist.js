// One artist: what GET /artists/{name} aggregates, drawn here from its figures — the quality
// distribution, the sentiment mix, the top themes and each one's tracks per release year — with
// the artist's tracks and the nearest artists (links to their pages). Every name is text.
import { get } from "./api.js";
import { barChart, categoryChart } from "./chart.js";
import { facts, h } from "./dom.js";

const THEMES_OVER_TIME = 4; // small charts of the first top themes

/** The console's link to an artist's page (the name travels encoded in the address). */
export function artistHref(name) {
  return `#/artist/${encodeURIComponent(name)}`;
}

function section(id, title, ...children) {
  return h("section", { id, "aria-labelledby": `${id}-title` }, h("h2", { id: `${id}-title` }, title), ...children);
}

function themesOverTime(artist) {
  const years = artist.themes_by_year;
  const note = artist.undated ? h("p", { class: "muted" }, `${artist.undated} analysed tracks have no known release year.`) : null;
  if (!years.length) return [h("p", { class: "muted" }, "No release year is known for its analysed tracks."), note];
  const themes = artist.top_themes.slice(0, THEMES_OVER_TIME).map((t) => t.theme);
  if (!themes.length) return [h("p", { class: "muted" }, "No themes found yet."), note];
  return [
    h(
      "div",
      { class: "grid2" },
      themes.map((theme) =>
        h(
          "div",
          { class: "theme-years", "data-theme": theme },
          barChart(
            years.map((y) => ({ x: y.year, y: y.themes[theme] || 0 })),
            { title: `"${theme}" per release year`, xLabel: "year", yLabel: "tracks", width: 420, height: 160 },
          ),
        ),
      ),
    ),
    note,
  ];
}

export async function render(view, { id }) {
  const name = decodeURIComponent(id || "");
  const artist = await get(`artists/${encodeURIComponent(name)}`);
  const quality = Object.entries(artist.quality).map(([q, n]) => ({ x: Number(q), y: n }));
  const sentiment = Object.entries(artist.sentiment).sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]));
  const shown = artist.items.length;
  view.append(
    h("h1", {}, artist.artist),
    facts([
      ["Tracks", String(artist.tracks)],
      ["Analysed", String(artist.analysed)],
      ["Compared under", artist.model || "no embedding model yet"],
    ]),
    h(
      "div",
      { class: "grid2" },
      section(
        "quality",
        "Quality",
        artist.analysed
          ? barChart(quality, { title: "Tracks per quality score (1–10)", xLabel: "quality", yLabel: "tracks", width: 420, height: 180 })
          : h("p", { class: "muted" }, "Not analysed yet."),
      ),
      section(
        "sentiment",
        "Sentiment",
        sentiment.length ? categoryChart(sentiment, { title: "Tracks per sentiment" }) : h("p", { class: "muted" }, "Not analysed yet."),
      ),
    ),
    section(
      "themes",
      "Top themes",
      artist.top_themes.length
        ? categoryChart(artist.top_themes.map((t) => [t.theme, t.tracks]), { title: "Tracks per theme" })
        : h("p", { class: "muted" }, "No themes found yet."),
    ),
    section("themes-years", "Themes over time", ...themesOverTime(artist)),
    section(
      "nearest",
      "Nearest artists",
      artist.nearest_artists.length
        ? h(
            "ol",
            { class: "plain" },
            artist.nearest_artists.map((a) =>
              h("li", { "data-artist": a.artist }, h("a", { href: artistHref(a.artist) }, a.artist), " ", h("span", { class: "score" }, `similarity ${a.similarity.toFixed(3)}`)),
            ),
          )
        : h("p", { class: "muted" }, "No other artist is embedded under the same model yet."),
    ),
    section(
      "artist-tracks",
      "Tracks",
      h("ul", {}, artist.items.map((t) => h("li", { "data-track": t.id }, h("a", { href: `#/track/${t.id}` }, t.title)))),
      shown < artist.tracks ? h("p", { class: "muted" }, `The first ${shown} of ${artist.tracks}.`) : null,
    ),
  );
}
