// Track: the whole profile GET /tracks/{id} returns (lyrics, every analysis with its confidence,
// analyzer, fallback flag and cost, lyric features, catalogue metadata, provenance, stage trail),
// and its nearest tracks. Every stored value is shown as text.
import { ApiError, get } from "./api.js";
import { artistHref } from "./artist.js";
import { errorBox, facts, h, table, when } from "./dom.js";
import { hitList } from "./search.js";

const text = (v) => (v === null || v === undefined ? "—" : typeof v === "string" ? v : JSON.stringify(v));
const fixed = (v, digits) => (typeof v === "number" ? v.toFixed(digits) : "—");

function metadataTable(metadata) {
  const entries = Object.entries(metadata || {});
  if (!entries.length) return h("p", { class: "muted" }, "No metadata.");
  return facts(entries.map(([k, v]) => [k, text(v)]));
}

function analysisCard(a) {
  const p = a.profile;
  const conf = (name) => (a.field_confidence && typeof a.field_confidence[name] === "number" ? ` (confidence ${a.field_confidence[name].toFixed(2)})` : "");
  return h(
    "article",
    { class: "card", "data-analyzer": a.analyzer },
    h("h3", {}, a.analyzer, a.current ? "" : " · older text"),
    facts([
      ["Sentiment", `${p.sentiment} ${fixed(p.sentiment_score, 2)}${conf("sentiment")}`],
      ["Themes", (p.themes.join(", ") || "—") + conf("themes")],
      ["Quality", `${p.quality}/10${conf("quality")}`],
      ["Complexity", fixed(p.complexity, 2) + conf("complexity")],
      ["Confidence", fixed(a.confidence, 2)],
      ["Fallback", a.fallback ? `yes${a.fallback_reason ? `: ${a.fallback_reason}` : ""}` : "no"],
      ["Cost", `${a.tokens_in} + ${a.tokens_out} tokens · $${a.cost_usd.toFixed(6)}`],
      ["Prompt version", a.prompt_version],
      ["Analysed", when(a.created_at)],
    ]),
  );
}

function featuresSection(features) {
  if (!features) return h("p", { class: "muted" }, "Not enriched yet.");
  return h(
    "div",
    {},
    facts(Object.entries(features.data).map(([k, v]) => [k, typeof v === "number" ? String(Math.round(v * 1000) / 1000) : text(v)])),
    h("p", { class: "muted" }, `version ${features.version}${features.current ? "" : " · from an older text"} · ${when(features.updated_at)}`),
  );
}

function spotifySection(m) {
  if (!m) return h("p", { class: "muted" }, "No catalogue lookup yet.");
  if (!m.matched) return h("p", { class: "muted" }, `No catalogue match (${m.candidates ?? 0} candidates weighed, best score ${fixed(m.best_score, 2)}).`);
  const audio = m.audio_features
    ? Object.entries(m.audio_features).map(([k, v]) => [k, text(v)])
    : [["Audio features", `unavailable${m.audio_features_unavailable ? `: ${m.audio_features_unavailable}` : ""}`]];
  return facts([
    ["Name", m.name],
    ["Artists", m.artists.join(", ")],
    ["Catalogue id", m.spotify_id],
    ["Popularity", text(m.popularity)],
    ["Released", m.release_date],
    ["Match score", fixed(m.match_score, 2)],
    ...audio,
  ]);
}

function provenanceSection(prov) {
  const rows = [
    ...prov.objects.map((o) => ["object", `${o.bucket}/${o.key}`, `version ${o.version}${o.line === null ? "" : ` · line ${o.line}`}`, when(o.linked_at)]),
    ...prov.pages.map((p) => ["page", p.url, p.source, when(p.linked_at)]),
  ];
  if (!rows.length) return h("p", { class: "muted" }, "No recorded origin.");
  return table(["Kind", "Where", "Detail", "Linked"], rows, "Where this track came from");
}

function stagesSection(stages) {
  if (!stages.length) return h("p", { class: "muted" }, "No stages recorded.");
  return table(
    ["Subject", "Stage", "Status", "Attempts", "Last error", "Started", "Took"],
    stages.map((st) => [
      st.subject,
      st.stage,
      st.status,
      h("td", { class: "num" }, String(st.attempts)),
      st.last_error || "—",
      when(st.started_at),
      st.duration_ms === null ? "—" : `${Math.round(st.duration_ms)} ms`,
    ]),
    "Stage trail",
  );
}

export async function render(view, { id }) {
  const track = await get(`tracks/${id}`);
  const analyses = track.analyses.length
    ? h("div", { class: "grid2" }, track.analyses.map(analysisCard))
    : h("p", { class: "muted" }, "Not analysed yet.");
  view.append(
    h("h1", {}, `${track.artist} — ${track.title}`),
    facts([
      ["Artist", h("a", { href: artistHref(track.artist), id: "artist-link" }, track.artist)],
      ["Title", track.title],
      ["Source", `${track.source} / ${track.source_id}`],
      ["Embedded with", track.embedded_models.join(", ") || "not embedded yet"],
      ["Added", when(track.created_at)],
      ["Updated", when(track.updated_at)],
    ]),
    h("h2", {}, "Lyrics"),
    h("pre", { class: "lyrics", tabindex: "0", "aria-label": "Lyrics" }, track.lyrics),
    h("section", { id: "analyses", "aria-labelledby": "analyses-title" }, h("h2", { id: "analyses-title" }, "Profile"), analyses),
    h("div", { class: "grid2" },
      h("section", { id: "features", "aria-labelledby": "features-title" }, h("h2", { id: "features-title" }, "Lyric features"), featuresSection(track.enrichments.features)),
      h("section", { id: "spotify", "aria-labelledby": "spotify-title" }, h("h2", { id: "spotify-title" }, "Catalogue metadata"), spotifySection(track.enrichments.metadata)),
    ),
    h("h2", {}, "Metadata"),
    metadataTable(track.metadata),
    h("section", { id: "provenance", "aria-labelledby": "provenance-title" }, h("h2", { id: "provenance-title" }, "Provenance"), provenanceSection(track.provenance)),
    h("section", { id: "stages", "aria-labelledby": "stages-title" }, h("h2", { id: "stages-title" }, "Stage trail"), stagesSection(track.stages)),
  );
  const similar = h("section", { "aria-labelledby": "similar-title", id: "similar" }, h("h2", { id: "similar-title" }, "Similar tracks"));
  view.append(similar);
  try {
    const answer = await get(`tracks/${id}/similar`, { k: 10 });
    similar.append(hitList(answer.results));
  } catch (err) {
    if (err instanceof ApiError && err.status === 409) similar.append(h("p", { class: "muted" }, "Not embedded yet: similar tracks follow once it is."));
    else similar.append(errorBox(err));
  }
}
