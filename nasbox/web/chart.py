"""A run history chart as inline SVG, drawn on the server so that it shows without JavaScript."""

from __future__ import annotations

from dataclasses import dataclass

from markupsafe import Markup, escape

WIDTH, HEIGHT, PAD = 600, 160, 30
COLOURS = {"good": "#2e7d32", "info": "#1565c0", "warning": "#ef6c00", "error": "#c62828", "running": "#757575"}


@dataclass(frozen=True)
class Point:
    started: float
    value: float
    status: str
    label: str  # its tooltip


def svg(title: str, points: list[Point]) -> Markup:
    """A line over time with a dot per run in its status colour; oldest on the left."""
    points = sorted(points, key=lambda p: p.started)
    head = f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{escape(title)}">'
    parts = [head, f'<text x="4" y="14" class="chart-title">{escape(title)}</text>']
    if not points:
        parts.append(f'<text x="{WIDTH // 2}" y="{HEIGHT // 2}" text-anchor="middle">no runs yet</text></svg>')
        return Markup("".join(parts))
    first, last = points[0].started, points[-1].started
    top = max(p.value for p in points) or 1.0

    def x(p: Point) -> float:
        return PAD + (WIDTH - 2 * PAD) * ((p.started - first) / (last - first) if last > first else 0.5)

    def y(p: Point) -> float:
        return HEIGHT - PAD - (HEIGHT - 2 * PAD) * p.value / top

    parts.append(f'<text x="4" y="{PAD + 4}" class="chart-axis">{escape(human(top))}</text>')
    parts.append(f'<line x1="{PAD}" y1="{HEIGHT - PAD}" x2="{WIDTH - PAD}" y2="{HEIGHT - PAD}" class="chart-base"/>')
    line = " ".join(f"{x(p):.1f},{y(p):.1f}" for p in points)
    parts.append(f'<polyline points="{line}" class="chart-line"/>')
    for p in points:
        colour = COLOURS.get(p.status, COLOURS["running"])
        parts.append(
            f'<circle cx="{x(p):.1f}" cy="{y(p):.1f}" r="3" fill="{colour}" class="chart-run">'
            f"<title>{escape(p.label)}</title></circle>"
        )
    parts.append("</svg>")
    return Markup("".join(parts))


def human(value: float) -> str:
    for unit in ("", "k", "M", "G", "T"):
        if abs(value) < 1000:
            return f"{value:.3g}{unit}"
        value /= 1000
    return f"{value:.3g}P"
