"""Evaluation charts as hand-written SVG: no plotting library, and a file any browser shows."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from xml.sax.saxutils import escape

__all__ = ["bars_svg", "curve_svg"]

_FONT = 'font-family="sans-serif" font-size="11"'
_TITLE_FONT = 'font-family="sans-serif" font-size="14" font-weight="bold"'
_COLOURS = ("#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948", "#b07aa1")


def bars_svg(title: str, rows: Sequence[str], metrics: Mapping[str, Sequence[float | None]]) -> str:
    """One panel per metric, one horizontal bar per row, each panel scaled to its own maximum
    (metrics live on different scales: an MAE of 2 and an F1 of 0.8 share no axis)."""
    label_w, bar_w, bar_h, gap = 170, 220, 16, 4
    panel_h = 24 + len(rows) * (bar_h + gap)
    width = label_w + bar_w + 70
    height = 36 + len(metrics) * (panel_h + 10)
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}">',
        f'<rect width="{width}" height="{height}" fill="white"/>',
        f'<text x="8" y="20" {_TITLE_FONT}>{escape(title)}</text>',
    ]
    y = 36
    for name, values in metrics.items():
        out.append(f'<text x="8" y="{y + 14}" {_FONT} font-weight="bold">{escape(name)}</text>')
        top = max((v for v in values if v is not None), default=0.0) or 1.0
        for i, (row, value) in enumerate(zip(rows, values, strict=True)):
            by = y + 22 + i * (bar_h + gap)
            out.append(f'<text x="8" y="{by + 12}" {_FONT}>{escape(row)}</text>')
            if value is None:
                out.append(f'<text x="{label_w}" y="{by + 12}" {_FONT} fill="#888">n/a</text>')
                continue
            w = max(1.0, bar_w * value / top)
            colour = _COLOURS[i % len(_COLOURS)]
            out.append(f'<rect x="{label_w}" y="{by}" width="{w:.1f}" height="{bar_h}" fill="{colour}"/>')
            out.append(f'<text x="{label_w + w + 4:.1f}" y="{by + 12}" {_FONT}>{value:.3g}</text>')
        y += panel_h + 10
    out.append("</svg>")
    return "\n".join(out) + "\n"


def curve_svg(title: str, points: Sequence[tuple[float, float, str]], *, x_label: str, y_label: str) -> str:
    """A line through (x, y) points, each marked and labelled (the sweep: cost against error)."""
    width, height, left, bottom, top, right = 520, 340, 64, 48, 36, 24
    plot_w, plot_h = width - left - right, height - top - bottom
    xs = [p[0] for p in points] or [0.0]
    ys = [p[1] for p in points] or [0.0]
    x0, x1 = min(0.0, min(xs)), max(xs) or 1.0
    y0, y1 = min(0.0, min(ys)), max(ys) or 1.0

    def sx(x: float) -> float:
        return left + plot_w * (x - x0) / ((x1 - x0) or 1.0)

    def sy(y: float) -> float:
        return top + plot_h - plot_h * (y - y0) / ((y1 - y0) or 1.0)

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}">',
        f'<rect width="{width}" height="{height}" fill="white"/>',
        f'<text x="8" y="20" {_TITLE_FONT}>{escape(title)}</text>',
        f'<line x1="{left}" y1="{top + plot_h}" x2="{left + plot_w}" y2="{top + plot_h}" stroke="black"/>',
        f'<line x1="{left}" y1="{top}" x2="{left}" y2="{top + plot_h}" stroke="black"/>',
        f'<text x="{left + plot_w / 2:.0f}" y="{height - 10}" {_FONT} text-anchor="middle">{escape(x_label)}</text>',
        f'<text x="14" y="{top + plot_h / 2:.0f}" {_FONT} text-anchor="middle"'
        f' transform="rotate(-90 14 {top + plot_h / 2:.0f})">{escape(y_label)}</text>',
        f'<text x="{left}" y="{top + plot_h + 14}" {_FONT} text-anchor="middle">{x0:.3g}</text>',
        f'<text x="{left + plot_w}" y="{top + plot_h + 14}" {_FONT} text-anchor="middle">{x1:.3g}</text>',
        f'<text x="{left - 4}" y="{top + plot_h}" {_FONT} text-anchor="end">{y0:.3g}</text>',
        f'<text x="{left - 4}" y="{top + 4}" {_FONT} text-anchor="end">{y1:.3g}</text>',
    ]
    # Points that coincide (thresholds past which nothing changes) share one marker and one label.
    merged: dict[tuple[float, float], list[str]] = {}
    for x, y, label in points:
        merged.setdefault((x, y), []).append(label)
    ordered = sorted((x, y, ", ".join(labels)) for (x, y), labels in merged.items())
    if len(ordered) > 1:
        path = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y, _ in ordered)
        out.append(f'<polyline points="{path}" fill="none" stroke="{_COLOURS[0]}" stroke-width="2"/>')
    for x, y, label in ordered:
        out.append(f'<circle cx="{sx(x):.1f}" cy="{sy(y):.1f}" r="3.5" fill="{_COLOURS[1]}"/>')
        out.append(f'<text x="{sx(x) + 5:.1f}" y="{sy(y) - 5:.1f}" {_FONT}>{escape(label)}</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"
