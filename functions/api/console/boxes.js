// An image with its detections drawn over it. The overlay's viewBox is the image's own pixel grid,
// so boxes given in source pixels land where the API says at whatever size the image is shown.
import { imageUrl } from "./api.js";
import { h, s } from "./dom.js";

export function boxesOverlay(width, height, detections) {
  return s(
    "svg",
    { viewBox: `0 0 ${width} ${height}`, preserveAspectRatio: "none", "aria-hidden": "true" },
    detections.map((d) => {
      const [x1, y1, x2, y2] = d.box;
      return s(
        "g",
        { class: "detection", "data-label": d.label },
        s("rect", { x: x1, y: y1, width: x2 - x1, height: y2 - y1, "data-box": d.box.join(",") }),
        s("text", { x: x1 + 2, y: Math.max(12, y1 - 3) }, `${d.label} ${d.score.toFixed(2)}`),
      );
    }),
  );
}

/** A figure of the image (fetched with the key) with its boxes; `full` shows it at natural size. */
export async function framedImage(image, detections, { full = false } = {}) {
  const url = await imageUrl(image.id);
  const img = h("img", { src: url, alt: `Image ${image.key}` });
  await new Promise((resolve) => {
    img.addEventListener("load", resolve, { once: true });
    img.addEventListener("error", resolve, { once: true });
  });
  URL.revokeObjectURL(url); // decoded: the page keeps no handle on the bytes
  const width = image.width || img.naturalWidth;
  const height = image.height || img.naturalHeight;
  return h("div", { class: full ? "frame full" : "frame", "data-image": image.id }, img, boxesOverlay(width, height, detections));
}
