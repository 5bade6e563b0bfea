// Images: a gallery with each image's detections drawn on it (filter by class and score), and one
// image at full size with its boxes.
import { get } from "./api.js";
import { framedImage } from "./boxes.js";
import { errorBox, facts, h, table, when } from "./dom.js";

const PAGE = 24;

function filtered(detections, label, minScore) {
  return detections.filter((d) => (!label || d.label === label) && d.score >= minScore);
}

export async function render(view, { params }) {
  const label = params.get("label") || "";
  const minScore = Number(params.get("min_score") || "0");
  const classSelect = h("select", { name: "label" }, h("option", { value: "" }, "All classes"));
  const scoreInput = h("input", { type: "number", name: "min_score", min: "0", max: "1", step: "0.05", value: String(minScore) });
  const form = h(
    "form",
    { class: "bar" },
    h("label", {}, "Class", classSelect),
    h("label", {}, "Minimum score", scoreInput),
    h("button", { type: "submit" }, "Filter"),
  );
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const next = new URLSearchParams();
    if (classSelect.value) next.set("label", classSelect.value);
    if (Number(scoreInput.value) > 0) next.set("min_score", scoreInput.value);
    location.hash = `#/images?${next}`;
  });
  const gallery = h("div", { class: "gallery", id: "gallery" });
  const more = h("button", { type: "button", class: "secondary", hidden: true }, "More images");
  view.append(h("h1", {}, "Images"), form, gallery, more);
  const labels = new Set(label ? [label] : []);

  async function page(cursor) {
    const answer = await get("images", { limit: PAGE, cursor });
    for (const image of answer.items) {
      const item = h("figure", { "data-image": image.id });
      gallery.append(item);
      const caption = h(
        "figcaption",
        {},
        h("a", { href: `#/image/${image.id}` }, image.key),
        h("br"),
        h("span", { class: "muted" }, `${image.status} · ${image.detections} detections`),
      );
      if (image.status !== "done") {
        item.append(h("p", { class: "muted" }, image.reason || "not detected yet"), caption);
        continue;
      }
      const found = await get(`images/${image.id}/detections`);
      for (const d of found.detections) labels.add(d.label);
      item.append(await framedImage(found.image, filtered(found.detections, label, minScore)), caption);
    }
    more.hidden = !answer.next_cursor;
    more.onclick = () => page(answer.next_cursor).catch((err) => view.append(errorBox(err)));
    const chosen = classSelect.value || label;
    classSelect.replaceChildren(
      h("option", { value: "" }, "All classes"),
      ...[...labels].sort().map((l) => h("option", { value: l, selected: l === chosen }, l)),
    );
    if (!gallery.children.length) gallery.append(h("p", { class: "muted" }, "No images yet: upload one under images/."));
  }
  await page(undefined);
}

export async function renderOne(view, { id }) {
  const found = await get(`images/${id}/detections`);
  const image = found.image;
  view.append(
    h("h1", {}, image.key),
    h("p", {}, h("a", { href: "#/images" }, "Back to images")),
    facts([
      ["Status", image.status],
      ["Size", image.width ? `${image.width} × ${image.height} px, ${image.bytes} bytes` : `${image.bytes} bytes`],
      ["Model", image.model],
      ["Detected", when(image.detected_at)],
      ["Reason", image.reason],
    ]),
  );
  if (image.status === "done") {
    try {
      view.append(await framedImage(image, found.detections, { full: true }));
    } catch (err) {
      view.append(errorBox(err));
    }
  }
  view.append(
    h("h2", {}, "Detections"),
    found.detections.length
      ? table(
          ["Label", "Score", "Box (x1, y1, x2, y2)"],
          found.detections.map((d) => [d.label, d.score.toFixed(3), d.box.map((v) => Math.round(v)).join(", ")]),
          "Detections",
        )
      : h("p", { class: "muted" }, "None."),
  );
}
