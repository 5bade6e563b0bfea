// Streams: register, list with status and last error, stop; one stream's latest frame and its
// detections over time (GET /streams/{id}/detections, followed page by page).
import { get, send } from "./api.js";
import { barChart } from "./chart.js";
import { announce, errorBox, facts, h, table, when } from "./dom.js";

const MAX_PAGES = 20;

export async function render(view) {
  const url = h("input", { type: "text", name: "url", required: true, maxlength: 2000, inputmode: "url" });
  const fps = h("input", { type: "number", name: "fps", min: "0.1", step: "0.1", value: "1" });
  const note = h("div", { "aria-live": "polite" });
  const form = h(
    "form",
    { class: "bar" },
    h("label", {}, "Stream URL", url),
    h("label", {}, "Frames per second", fps),
    h("button", { type: "submit" }, "Register"),
  );
  const list = h("section", { id: "stream-list", "aria-label": "Streams" });
  view.append(h("h1", {}, "Streams"), form, note, list);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    note.replaceChildren();
    try {
      const answer = await send("POST", "streams", { url: url.value, fps: Number(fps.value) });
      announce(`stream ${answer.stream.id} registered`);
      url.value = "";
      await refresh();
    } catch (err) {
      note.append(errorBox(err));
    }
  });

  // Unchanged rows are left alone, so focus on a Stop button survives the periodic refresh.
  let shown = null;

  async function refresh() {
    const answer = await get("streams", { limit: 100 });
    const signature = JSON.stringify(answer.items.map((st) => [st.id, st.status, st.frames_done, st.last_error]));
    if (signature === shown) return;
    shown = signature;
    const rows = answer.items.map((st) => {
      const stop = h("button", { type: "button", class: "danger", disabled: ["stopped", "ended"].includes(st.status) }, "Stop");
      stop.addEventListener("click", async () => {
        if (!window.confirm(`Stop stream ${st.id}?`)) return;
        try {
          await send("DELETE", `streams/${st.id}`);
          await refresh();
        } catch (err) {
          note.append(errorBox(err));
        }
      });
      return [
        h("a", { href: `#/stream/${st.id}` }, String(st.id)),
        h("td", { class: "url" }, st.url),
        st.status,
        String(st.frames_done),
        st.last_error || "",
        h("td", { class: "actions" }, stop),
      ];
    });
    list.replaceChildren(
      rows.length ? table(["Stream", "URL", "Status", "Frames", "Last error", ""], rows, "Streams") : h("p", { class: "muted" }, "No streams registered."),
    );
  }
  await refresh();
  const timer = setInterval(() => refresh().catch(() => {}), 5000);
  return () => clearInterval(timer);
}

async function allFrames(id) {
  const frames = [];
  let cursor;
  for (let i = 0; i < MAX_PAGES; i += 1) {
    const answer = await get(`streams/${id}/detections`, { limit: 1000, cursor });
    frames.push(...answer.items);
    if (answer.items.length < 1000) break;
    cursor = answer.next_cursor;
  }
  return frames;
}

export async function renderOne(view, { id }) {
  const { stream } = await get(`streams/${id}`);
  const body = h("div", {});
  view.append(h("h1", {}, `Stream ${stream.id}`), h("p", {}, h("a", { href: "#/streams" }, "Back to streams")), body);

  async function draw() {
    const [{ stream: st }, frames] = await Promise.all([get(`streams/${id}`), allFrames(id)]);
    const latest = frames[frames.length - 1];
    body.replaceChildren(
      facts([
        ["URL", st.url],
        ["Status", st.status],
        ["Frames per second", String(st.fps)],
        ["Frames done / dropped", `${st.frames_done} / ${st.frames_dropped}`],
        ["Last error", st.last_error],
        ["Updated", when(st.updated_at)],
      ]),
      h("h2", {}, "Latest frame"),
      latest
        ? h(
            "div",
            { id: "latest-frame" },
            h("p", { class: "muted" }, `at ${latest.frame_ts.toFixed(2)} s: ${latest.detections.length} detections`),
            table(
              ["Label", "Score", "Box (x1, y1, x2, y2)"],
              latest.detections.map((d) => [d.label, d.score.toFixed(3), d.box.map((v) => Math.round(v)).join(", ")]),
              "Latest frame's detections",
            ),
          )
        : h("p", { class: "muted" }, "No frame yet."),
      h("h2", {}, "Detections over time"),
      frames.length
        ? barChart(
            frames.map((f) => ({ x: f.frame_ts, y: f.detections.length })),
            { title: "Detections per frame", xLabel: "stream time (s)", yLabel: "detections", formatX: (x) => x.toFixed(1) },
          )
        : h("p", { class: "muted" }, "No frame yet."),
    );
  }
  await draw();
  const timer = setInterval(() => draw().catch((err) => body.replaceChildren(errorBox(err))), 5000);
  return () => clearInterval(timer);
}
