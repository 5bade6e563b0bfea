// Uploads: choose or drop a track file; POST /uploads checks its name and size and says where its
// bytes go (a signed bucket URL in the cloud, the API itself locally); a progress bar follows the
// bytes, then the file's trace (GET /objects?key=) is polled until every track is done or dead.
import { ApiError, get, putFile, send } from "./api.js";
import { announce, errorBox, h, table } from "./dom.js";

const POLL_MS = 1000;
const ACCEPT = ".csv,.jsonl,.ndjson,.json";
const FINAL = new Set(["done", "dead", "rejected"]);

/** Whether the file is through: ingest refused it, or every stage of every track is done or dead. */
function settled(trace) {
  const status = trace.ingest.status;
  if (status === "failed" || status === "rejected") return true;
  if (status !== "ok" && status !== "partial") return false;
  const states = Object.values(trace.summary).flatMap((byState) => Object.keys(byState).filter((state) => byState[state] > 0));
  return states.every((state) => FINAL.has(state));
}

function traceView(trace) {
  const kinds = Object.keys(trace.summary).sort();
  const states = [...new Set(kinds.flatMap((k) => Object.keys(trace.summary[k])))].sort();
  return [
    h(
      "p",
      { id: "ingest-status" },
      `Ingest: ${trace.ingest.status}`,
      trace.ingest.rows_ok === null ? "" : ` · ${trace.ingest.rows_ok} rows ok, ${trace.ingest.rows_bad} bad`,
      trace.ingest.error ? ` · ${trace.ingest.error}` : "",
    ),
    trace.ingest.bad_rows.length
      ? table(["Line", "Why"], trace.ingest.bad_rows.map((b) => [String(b.line), b.reason]), "Bad rows")
      : null,
    kinds.length
      ? table(
          ["Stage", ...states],
          kinds.map((k) => [k, ...states.map((st) => h("td", { class: "num" }, String(trace.summary[k][st] || 0)))]),
          "Tracks per stage and state",
        )
      : null,
    trace.items.length
      ? h(
          "ul",
          { id: "trace-items" },
          trace.items.map((item) =>
            h(
              "li",
              { "data-subject": item.id },
              item.kind === "track" ? h("a", { href: `#/track/${item.id}` }, item.label) : item.label,
              " · ",
              Object.entries(item.stages).map(([stage, st]) => `${stage} ${st.state}`).join(", "),
            ),
          ),
        )
      : null,
  ];
}

export async function render(view) {
  const input = h("input", { type: "file", name: "file", accept: ACCEPT, id: "upload-file" });
  const drop = h(
    "div",
    { class: "drop", id: "drop" },
    h("label", { for: "upload-file" }, "Track file (.csv, .jsonl, .ndjson or .json)", input),
    h("p", { class: "muted" }, "or drop it here"),
  );
  const button = h("button", { type: "submit", disabled: true }, "Upload");
  const form = h("form", { class: "bar", id: "upload-form" }, drop, button);
  const bar = h("progress", { id: "upload-progress", max: "100", value: "0", "aria-label": "Upload progress", hidden: true });
  const status = h("p", { id: "upload-status", role: "status" });
  const out = h("section", { id: "upload-trace", "aria-labelledby": "trace-title" });
  view.append(h("h1", {}, "Uploads"), form, bar, status, out);

  let chosen = null;
  let timer = null;
  let gone = false;
  const choose = (file) => {
    chosen = file || null;
    button.disabled = !chosen;
    status.textContent = chosen ? `${chosen.name} · ${chosen.size} bytes` : "";
  };
  input.addEventListener("change", () => choose(input.files[0]));
  drop.addEventListener("dragover", (event) => {
    event.preventDefault();
    drop.classList.add("over");
  });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (event) => {
    event.preventDefault();
    drop.classList.remove("over");
    if (event.dataTransfer && event.dataTransfer.files.length) choose(event.dataTransfer.files[0]);
  });

  async function follow(answer) {
    if (gone) return;
    let trace;
    try {
      trace = await get("objects", { key: answer.key, limit: 100 });
    } catch (err) {
      if (!(err instanceof ApiError && err.status === 404)) throw err;
      status.textContent = `Uploaded ${answer.key}; waiting for ingest to pick it up…`;
      timer = setTimeout(() => follow(answer).catch(showError), POLL_MS);
      return;
    }
    const done = settled(trace);
    out.replaceChildren(h("h2", { id: "trace-title" }, "Trace"), ...traceView(trace).filter(Boolean));
    out.dataset.state = done ? "settled" : "running";
    status.textContent = done ? `${answer.key}: every track is done or dead.` : `${answer.key}: processing…`;
    if (done) announce(status.textContent);
    else timer = setTimeout(() => follow(answer).catch(showError), POLL_MS);
  }

  function showError(err) {
    out.replaceChildren(errorBox(err));
    button.disabled = !chosen;
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (!chosen) return;
    const file = chosen;
    button.disabled = true;
    clearTimeout(timer);
    out.replaceChildren();
    delete out.dataset.state;
    try {
      const answer = await send("POST", "uploads", { name: file.name, size: file.size });
      bar.hidden = false;
      bar.value = 0;
      status.textContent = `Sending ${file.name}…`;
      await putFile(answer.upload, file, (loaded, total) => {
        bar.value = total ? Math.round((loaded / total) * 100) : 100;
      });
      announce(`${file.name} uploaded`);
      status.textContent = `Uploaded ${answer.key}.`;
      view.dataset.key = answer.key;
      await follow(answer);
    } catch (err) {
      showError(err);
    } finally {
      button.disabled = !chosen;
    }
  });
  return () => {
    gone = true;
    clearTimeout(timer);
  };
}
