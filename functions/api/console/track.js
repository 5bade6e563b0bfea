// Track: what GET /tracks/{id} returns, and its nearest tracks.
import { ApiError, get } from "./api.js";
import { errorBox, facts, h, when } from "./dom.js";
import { hitList } from "./search.js";

function metadataTable(metadata) {
  const entries = Object.entries(metadata || {});
  if (!entries.length) return h("p", { class: "muted" }, "No metadata.");
  return facts(entries.map(([k, v]) => [k, typeof v === "string" ? v : JSON.stringify(v)]));
}

export async function render(view, { id }) {
  const track = await get(`tracks/${id}`);
  view.append(
    h("h1", {}, `${track.artist} — ${track.title}`),
    facts([
      ["Artist", track.artist],
      ["Title", track.title],
      ["Source", `${track.source} / ${track.source_id}`],
      ["Embedded with", track.embedded_models.join(", ") || "not embedded yet"],
      ["Added", when(track.created_at)],
      ["Updated", when(track.updated_at)],
    ]),
    h("h2", {}, "Lyrics"),
    h("pre", { class: "lyrics", tabindex: "0", "aria-label": "Lyrics" }, track.lyrics),
    h("h2", {}, "Metadata"),
    metadataTable(track.metadata),
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
