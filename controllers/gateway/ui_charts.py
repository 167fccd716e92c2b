"""Line charts as inline SVG, drawn from the loop's numbers on the server (no chart library, no script).

A chart is one ``<figure>`` holding an ``<svg role="img">`` with a title, and a caption that says in
words what the lines show, so that a screen reader and a text browser get the figures too. Colours
come from CSS classes (``s0``…``s7``, ``band``, ``zero``, ``decided``), so the chart follows the
light or dark theme and the Content-Security-Policy needs no inline style. Gaps (a variant with no
reward yet, an unbounded side of a confidence sequence) break the line instead of inventing a point.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from controllers.gateway.ui_html import text

WIDTH, HEIGHT, PAD = 640, 220, 36
Points = Sequence[float | None]


@dataclass(frozen=True)
class Chart:
    title: str
    caption: str
    lines: Mapping[str, Points]
    band: Sequence[tuple[float | None, float | None]] = ()  # a confidence sequence, drawn behind
    zero: bool = False  # draw y = 0 (a contrast's "no difference")
    marker: int | None = None  # the index of the decision point


def _range(chart: Chart) -> tuple[float, float]:
    values = [v for points in chart.lines.values() for v in points if v is not None]
    values += [v for pair in chart.band for v in pair if v is not None]
    if chart.zero:
        values.append(0.0)
    low, high = (min(values), max(values)) if values else (0.0, 1.0)
    if high - low < 1e-9:
        low, high = low - 0.5, high + 0.5
    return low, high


def _xy(index: int, count: int, value: float, low: float, high: float) -> tuple[float, float]:
    x = PAD + (WIDTH - 2 * PAD) * (index / max(count - 1, 1))
    y = HEIGHT - PAD - (HEIGHT - 2 * PAD) * ((value - low) / (high - low))
    return round(x, 1), round(y, 1)


def _path(points: Points, low: float, high: float) -> str:
    steps, pen_up = [], True
    for index, value in enumerate(points):
        if value is None:
            pen_up = True
            continue
        x, y = _xy(index, len(points), value, low, high)
        steps.append(f"{'M' if pen_up else 'L'}{x},{y}")
        pen_up = False
    return " ".join(steps)


def _dots(points: Points, low: float, high: float, colour: str) -> str:
    """A dot per value, so that a lone value (a gap on both sides) still shows."""
    return "".join(
        f'<circle class="dot {colour}" cx="{x}" cy="{y}" r="3"/>'
        for x, y in (_xy(i, len(points), v, low, high) for i, v in enumerate(points) if v is not None)
    )


def _band(chart: Chart, low: float, high: float) -> str:
    count = len(chart.band)
    upper = [(i, hi) for i, (_, hi) in enumerate(chart.band) if hi is not None]
    lower = [(i, lo) for i, (lo, _) in enumerate(chart.band) if lo is not None]
    if not upper or not lower:
        return ""
    top = [_xy(i, count, v, low, high) for i, v in upper]
    bottom = [_xy(i, count, v, low, high) for i, v in reversed(lower)]
    corners = " ".join(f"{x},{y}" for x, y in top + bottom)
    return f'<polygon class="band" points="{corners}"/>'


def _axes(chart: Chart, low: float, high: float, count: int) -> str:
    parts = [
        f'<line class="axis" x1="{PAD}" y1="{HEIGHT - PAD}" x2="{WIDTH - PAD}" y2="{HEIGHT - PAD}"/>',
        f'<text class="tick" x="4" y="{PAD}">{high:.2f}</text>',
        f'<text class="tick" x="4" y="{HEIGHT - PAD}">{low:.2f}</text>',
    ]
    if chart.zero:
        _, y = _xy(0, count, 0.0, low, high)
        parts.append(f'<line class="zero" x1="{PAD}" y1="{y}" x2="{WIDTH - PAD}" y2="{y}"/>')
    if chart.marker is not None:
        x, _ = _xy(chart.marker, count, low, low, high)
        parts.append(f'<line class="decided" x1="{x}" y1="{PAD / 2}" x2="{x}" y2="{HEIGHT - PAD}"/>')
        parts.append(f'<text class="tick" x="{x + 4}" y="{PAD / 2 + 10}">decision</text>')
    return "".join(parts)


def _legend(chart: Chart) -> str:
    items = "".join(
        f'<li><span class="swatch s{i % 8}" aria-hidden="true"></span>{text(name)}</li>'
        for i, name in enumerate(chart.lines)
    )
    return f'<ul class="legend">{items}</ul>'


def draw(chart: Chart, ident: str) -> str:
    """The figure's HTML; ``ident`` makes its title's id unique on the page."""
    low, high = _range(chart)
    count = max([len(points) for points in chart.lines.values()] + [len(chart.band), 1])
    lines = "".join(
        f'<path class="line s{i % 8}" d="{_path(points, low, high)}"/>{_dots(points, low, high, f"s{i % 8}")}'
        for i, points in enumerate(chart.lines.values())
    )
    return (
        f'<figure class="chart"><svg role="img" aria-labelledby="{ident}" viewBox="0 0 {WIDTH} {HEIGHT}" '
        f'preserveAspectRatio="none"><title id="{ident}">{text(chart.title)}</title>'
        f"{_band(chart, low, high)}{_axes(chart, low, high, count)}{lines}</svg>"
        f"{_legend(chart)}<figcaption>{text(chart.caption)}</figcaption></figure>"
    )
