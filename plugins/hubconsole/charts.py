"""Small inline SVG charts: a run trend an operator reads at a glance, no JavaScript.

Bars are run durations coloured by status; lines are records read, written and
quarantined per run. Oldest run on the left.
"""
from __future__ import annotations

from html import escape
from typing import Any

STATUS_COLOURS = {"success": "#3a9a5b", "failed": "#c94040", "running": "#d9a21b"}
SERIES = (("read", "#4a6fa5"), ("written", "#2f8f83"), ("quarantined", "#c9701c"))


def trend(runs: list[dict[str, Any]], width: int = 420, height: int = 120) -> str:
    """SVG markup for ``runs`` (newest first, as :func:`hub.runs.recent` returns them)."""
    runs = list(reversed(runs))
    if not runs:
        return ""
    pad, legend = 4, 22
    n = len(runs)
    slot = (width - 2 * pad) / max(n, 1)
    bar_h = (height - legend) * 0.35
    line_h = (height - legend) * 0.5
    top = legend
    max_sec = max((r.get("seconds") or 0) for r in runs) or 1
    max_rec = max(max(r["summary"][k] for k, _ in SERIES) for r in runs) or 1
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" class="trend" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" role="img" aria-label="trend of the last {n} runs">']
    x = pad
    for name, colour in SERIES:
        parts.append(f'<rect x="{x}" y="3" width="8" height="8" fill="{colour}"/>'
                     f'<text x="{x + 11}" y="11" font-size="10">{name}</text>')
        x += 80
    parts.append(f'<text x="{x}" y="11" font-size="10">bars: duration</text>')
    parts.append(f'<text x="{pad}" y="21" font-size="9" fill="#6b7280">max {max_rec} records · '
                 f'{max_sec:.1f}s · oldest left</text>')
    base = height - 2
    for i, run in enumerate(runs):
        h = max(1.0, (run.get("seconds") or 0) / max_sec * bar_h)
        colour = STATUS_COLOURS.get(run["status"], "#888")
        title = escape(f"{run['run_id']}: {run['status']}, {run.get('seconds') or 0:.1f}s, "
                       + ", ".join(f"{k} {run['summary'][k]}" for k, _ in SERIES))
        parts.append(f'<rect x="{pad + i * slot + slot * 0.2:.1f}" y="{base - h:.1f}" width="{slot * 0.6:.1f}" '
                     f'height="{h:.1f}" fill="{colour}" opacity="0.75"><title>{title}</title></rect>')
    for name, colour in SERIES:
        points = " ".join(f"{pad + (i + 0.5) * slot:.1f},{top + line_h - r['summary'][name] / max_rec * line_h:.1f}"
                          for i, r in enumerate(runs))
        if n == 1:
            cx, cy = points.split(",")
            parts.append(f'<circle cx="{cx}" cy="{cy}" r="2.5" fill="{colour}"/>')
        else:
            parts.append(f'<polyline points="{points}" fill="none" stroke="{colour}" stroke-width="1.6"/>')
    parts.append("</svg>")
    return "".join(parts)
