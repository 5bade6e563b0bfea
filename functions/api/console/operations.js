// Operations: stage counts, queue depth by kind, dead letters (show, replay, purge, each confirmed),
// the LLM's cost today against its budget and the GPU workers; refreshing on its own.
import { get, send } from "./api.js";
import { announce, errorBox, facts, h, table, when } from "./dom.js";

const REFRESH_MS = 5000;

function countsTable(counts, caption, keyName) {
  const entries = Object.entries(counts);
  if (!entries.length) return h("p", { class: "muted" }, "None.");
  return table([keyName, "Count"], entries.map(([k, v]) => [k, h("td", { class: "num" }, String(v))]), caption);
}

function stagesTable(stages) {
  const statuses = [...new Set(Object.values(stages).flatMap((s) => Object.keys(s)))].sort();
  if (!statuses.length) return h("p", { class: "muted" }, "Nothing processed yet.");
  return table(
    ["Stage", ...statuses],
    Object.entries(stages).map(([stage, byStatus]) => [stage, ...statuses.map((st) => h("td", { class: "num" }, String(byStatus[st] || 0)))]),
    "Objects per stage and status",
  );
}

function costFacts(llm) {
  const budget = llm.budget;
  return facts([
    ["LLM calls today", `${llm.calls} (${llm.ok} answered)`],
    ["Tokens today", String(llm.tokens)],
    ["Cost today", `$${llm.cost_usd.toFixed(4)}`],
    ["Daily token budget", budget ? `${budget.used + budget.reserved} of ${budget.token_limit} used or reserved; ${budget.refused} refused` : "no budget set"],
  ]);
}

function modelsSection(models) {
  if (!models.length) return h("p", { class: "muted" }, "No model registered: search uses the configured built-in one (its vectors are counted above).");
  return models.map((m) => {
    const label = `${m.key} (${m.state})`;
    return h(
      "div",
      { class: "model", "data-model": m.key, "data-state": m.state },
      h("strong", {}, m.key),
      " ",
      h("span", { class: "tag" }, m.state),
      " ",
      h(
        "span",
        { class: "muted" },
        `${m.embedded} of ${m.tracks} tracks embedded (${m.percent}%) · index ${m.index} · backfill ${m.backfill_done ? "done" : "running"} · ${m.provider}, ${m.dimensions} dimensions`,
      ),
      h("progress", { max: "100", value: String(m.state === "retired" ? 0 : m.percent), "aria-label": `Backfill of ${label}` }),
    );
  });
}

export async function render(view) {
  const summary = h("section", { id: "stats", "aria-label": "Figures" });
  const dead = h("section", { id: "dead-jobs", "aria-labelledby": "dead-title" });
  const detail = h("section", { id: "dead-detail", "aria-live": "polite" });
  const updated = h("p", { class: "muted", id: "updated" });
  const models = h("section", { id: "models", "aria-labelledby": "models-title" });
  view.append(
    h("h1", {}, "Operations"),
    updated,
    summary,
    h("h2", { id: "models-title" }, "Embedding models"),
    models,
    h("h2", { id: "dead-title" }, "Dead letters"),
    dead,
    detail,
  );

  async function show(id) {
    const answer = await get(`dead-jobs/${id}`);
    detail.replaceChildren(
      h("h2", {}, `Dead job ${id}`),
      facts([
        ["Kind", answer.dead_job.kind],
        ["Attempts", String(answer.dead_job.attempts)],
        ["Died", when(answer.dead_job.died_at)],
        ["Error", answer.dead_job.last_error],
      ]),
      h("pre", { class: "json", tabindex: "0", "aria-label": "Job payload" }, JSON.stringify(answer.dead_job.payload, null, 2)),
    );
  }

  async function act(label, run) {
    if (!window.confirm(label)) return;
    try {
      await run();
      await refresh();
    } catch (err) {
      detail.replaceChildren(errorBox(err));
    }
  }

  // A refresh that changes nothing leaves the table alone, so a keyboard user's focus on one of
  // its buttons is not lost every few seconds.
  let shownDead = null;

  async function refresh() {
    const [stats, deadPage, modelList] = await Promise.all([
      get("stats"),
      get("dead-jobs", { limit: 50 }),
      get("admin/models", { retired: "true" }),
    ]);
    models.replaceChildren(...[modelsSection(modelList.items)].flat());
    summary.replaceChildren(
      facts([
        ["Tracks", String(stats.tracks)],
        ["Embeddings", Object.entries(stats.embeddings).map(([m, n]) => `${m}: ${n}`).join(", ") || "none"],
        ["Queue depth", String(stats.queue.depth)],
        ["Dead letters", String(stats.dead_jobs.total)],
        ["Images", `${stats.images.total} (${Object.entries(stats.images.by_status).map(([k, v]) => `${k} ${v}`).join(", ") || "none"})`],
        ["Streams", `${stats.streams.total} (${Object.entries(stats.streams.by_status).map(([k, v]) => `${k} ${v}`).join(", ") || "none"})`],
        ["GPU workers", `${stats.gpu.workers}${stats.gpu.img_per_s_per_instance === null ? "" : ` · ${stats.gpu.img_per_s_per_instance} img/s per instance`}`],
      ]),
      h("div", { class: "grid2" }, [
        h("div", {}, h("h2", {}, "Stages"), stagesTable(stats.stages)),
        h("div", {}, h("h2", {}, "Queue by kind"), countsTable(stats.queue.by_kind, "Queued jobs by kind", "Kind")),
        h("div", {}, h("h2", {}, "Cost today"), costFacts(stats.llm_today)),
      ]),
    );
    const signature = JSON.stringify(deadPage.items.map((job) => [job.id, job.attempts, job.replayable, job.last_error]));
    updated.textContent = `Updated ${new Date().toLocaleTimeString()}; refreshes every ${REFRESH_MS / 1000} s.`;
    if (signature === shownDead) return;
    shownDead = signature;
    const rows = deadPage.items.map((job) => [
      String(job.id),
      job.kind,
      String(job.attempts),
      job.last_error,
      when(job.died_at),
      h(
        "td",
        { class: "actions" },
        h("button", { type: "button", class: "secondary", onclick: () => show(job.id).catch((err) => detail.replaceChildren(errorBox(err))) }, "Show"),
        h(
          "button",
          { type: "button", disabled: !job.replayable, onclick: () => act(`Replay dead job ${job.id}?`, () => replay(job.id)) },
          "Replay",
        ),
        h("button", { type: "button", class: "danger", onclick: () => act(`Purge dead job ${job.id}? It cannot be replayed afterwards.`, () => send("DELETE", `dead-jobs/${job.id}`)) }, "Purge"),
      ),
    ]);
    dead.replaceChildren(
      rows.length
        ? table(["Id", "Kind", "Attempts", "Error", "Died", ""], rows, "Dead letters")
        : h("p", { class: "muted" }, "No dead letters."),
    );
  }

  async function replay(id) {
    const answer = await send("POST", "dead-jobs/replay", { ids: [id] });
    const why = answer.not_replayable[String(id)];
    announce(why ? `dead job ${id} not replayed: ${why}` : `dead job ${id} replayed`);
    detail.replaceChildren(h("p", {}, why ? `Dead job ${id} not replayed: ${why}` : `Dead job ${id} replayed.`));
  }

  await refresh();
  const timer = setInterval(() => refresh().catch((err) => updated.replaceChildren(errorBox(err))), REFRESH_MS);
  return () => clearInterval(timer);
}
