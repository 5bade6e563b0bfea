// Small SVG charts drawn from API data in the browser: no chart library to vendor for bars over
// time, and SVG keeps every label as text.
import { h, s } from "./dom.js";

/**
 * A bar chart of points [{x: number, y: number}] (x ascending), with a title read by screen readers
 * and a table fallback of the same figures.
 */
export function barChart(points, { title, xLabel, yLabel, width = 640, height = 200, formatX = String }) {
  const pad = { left: 40, right: 10, top: 24, bottom: 30 };
  const plotW = width - pad.left - pad.right;
  const plotH = height - pad.top - pad.bottom;
  const maxY = Math.max(1, ...points.map((p) => p.y));
  const minX = points.length ? points[0].x : 0;
  const maxX = points.length ? points[points.length - 1].x : 1;
  const spanX = maxX - minX || 1;
  const barW = Math.max(2, Math.min(24, plotW / Math.max(1, points.length) - 1));
  const xOf = (x) => pad.left + ((x - minX) / spanX) * (plotW - barW);
  const yOf = (y) => pad.top + plotH - (y / maxY) * plotH;
  const svg = s(
    "svg",
    { class: "chart", viewBox: `0 0 ${width} ${height}`, width, height, role: "img", "aria-label": title },
    s("title", {}, title),
    s("line", { class: "axis", x1: pad.left, y1: pad.top + plotH, x2: width - pad.right, y2: pad.top + plotH }),
    s("line", { class: "axis", x1: pad.left, y1: pad.top, x2: pad.left, y2: pad.top + plotH }),
    s("text", { x: pad.left - 6, y: pad.top + 4, "text-anchor": "end" }, String(maxY)),
    s("text", { x: pad.left - 6, y: pad.top + plotH, "text-anchor": "end" }, "0"),
    s("text", { x: pad.left, y: height - 6 }, formatX(minX)),
    s("text", { x: width - pad.right, y: height - 6, "text-anchor": "end" }, formatX(maxX)),
    s("text", { x: width / 2, y: height - 6, "text-anchor": "middle" }, xLabel),
    s("text", { x: pad.left, y: 12 }, yLabel),
    points.map((p) =>
      s(
        "rect",
        { class: "bar", x: xOf(p.x), y: yOf(p.y), width: barW, height: pad.top + plotH - yOf(p.y), "data-x": p.x, "data-y": p.y },
        s("title", {}, `${formatX(p.x)}: ${p.y}`),
      ),
    ),
  );
  return h("figure", {}, svg, h("figcaption", { class: "muted" }, title));
}

/**
 * Horizontal bars of named counts [[label, count], ...], each label drawn as text beside its bar.
 */
export function categoryChart(entries, { title, width = 420 }) {
  const rowH = 22;
  const labelW = 130;
  const height = Math.max(1, entries.length) * rowH + 8;
  const maxY = Math.max(1, ...entries.map(([, n]) => n));
  const barSpace = width - labelW - 40;
  const svg = s(
    "svg",
    { class: "chart", viewBox: `0 0 ${width} ${height}`, width, height, role: "img", "aria-label": title },
    s("title", {}, title),
    entries.map(([label, n], i) => {
      const y = 4 + i * rowH;
      const w = Math.max(n ? 2 : 0, (n / maxY) * barSpace);
      return s(
        "g",
        { "data-label": label, "data-y": n },
        s("text", { x: labelW - 6, y: y + 14, "text-anchor": "end" }, label),
        s("rect", { class: "bar", x: labelW, y, width: w, height: rowH - 6 }, s("title", {}, `${label}: ${n}`)),
        s("text", { x: labelW + w + 4, y: y + 14 }, String(n)),
      );
    }),
  );
  return h("figure", {}, svg, h("figcaption", { class: "muted" }, title));
}
