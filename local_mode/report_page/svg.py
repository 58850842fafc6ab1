"""Inline SVG time-series charts: a line per series, shaded spans for anomalies, a few axis ticks.

Plain markup, no script: the page's CSP allows none. Every text that reaches the markup is escaped here.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from html import escape

WIDTH, HEIGHT = 960, 230
LEFT, RIGHT, TOP, BOTTOM = 70, 16, 14, 36


@dataclass(frozen=True)
class Line:
    points: Sequence[tuple[datetime, float]]
    css_class: str
    label: str
    # Consecutive points further apart than this are not joined (a missing interval is a gap, not a slope).
    max_gap: timedelta | None = None


@dataclass(frozen=True)
class Span:
    start: datetime
    end: datetime
    css_class: str
    title: str


def format_number(value: float) -> str:
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    text = f"{value:,.2f}".rstrip("0").rstrip(".")
    return text if text not in ("-0", "") else "0"


def _ticks(low: float, high: float, count: int = 4) -> list[float]:
    """Round-numbered ticks (1, 2 or 5 times a power of ten apart) covering low..high."""
    if high <= low:
        return [low]
    raw = (high - low) / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(factor * magnitude for factor in (1, 2, 5, 10) if factor * magnitude >= raw)
    first = math.ceil(low / step) * step
    return [first + index * step for index in range(int((high - first) / step) + 1)]


_TIME_STEPS_MINUTES = (5, 10, 15, 30, 60, 120, 180, 360, 720, 1440, 2880, 7 * 1440, 14 * 1440, 28 * 1440)


def _time_ticks(first: datetime, last: datetime) -> list[datetime]:
    """Ticks at round times (every 5 minutes .. 4 weeks), at most about 8 of them."""
    span = last - first
    if span <= timedelta(0):
        return [first]
    minutes = next((m for m in _TIME_STEPS_MINUTES if span / timedelta(minutes=m) <= 8), _TIME_STEPS_MINUTES[-1])
    step = timedelta(minutes=minutes)
    midnight = first.replace(hour=0, minute=0, second=0, microsecond=0)
    tick = midnight + step * ((first - midnight) // step) if minutes < 1440 else midnight
    ticks = []
    while tick <= last:
        if tick >= first:
            ticks.append(tick)
        tick += step
    return ticks


def time_chart(lines: Sequence[Line], spans: Sequence[Span], *, title: str, y_label: str, chart_id: str) -> str:
    """An SVG chart of `lines` over time, `spans` shaded behind them; an empty chart says it has no data."""
    times = [moment for line in lines for moment, _ in line.points] + [
        moment for span in spans for moment in (span.start, span.end)
    ]
    values = [value for line in lines for _, value in line.points]
    header = (
        f'<svg class="chart" id="{escape(chart_id)}" viewBox="0 0 {WIDTH} {HEIGHT}" width="{WIDTH}" height="{HEIGHT}" '
        f'role="img" aria-label="{escape(title)}">'
        f"<title>{escape(title)}</title>"
    )
    if not times or not values:
        return header + f'<text x="{WIDTH / 2}" y="{HEIGHT / 2}" class="empty">no data</text></svg>'
    first, last = min(times), max(times)
    duration = max((last - first).total_seconds(), 1.0)
    low, high = min(0.0, min(values)), max(values)
    if high <= low:
        high = low + 1.0
    high += (high - low) * 0.05
    plot_width, plot_height = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def x(moment: datetime) -> float:
        return LEFT + plot_width * (moment - first).total_seconds() / duration

    def y(value: float) -> float:
        return TOP + plot_height * (1 - (value - low) / (high - low))

    parts = [header, '<g class="grid">']
    for tick in _ticks(low, high):
        parts.append(f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y(tick):.1f}" y2="{y(tick):.1f}"/>')
        parts.append(f'<text class="tick" x="{LEFT - 6}" y="{y(tick) + 4:.1f}" text-anchor="end">')
        parts.append(f"{escape(format_number(tick))}</text>")
    daily = last - first > timedelta(days=2)
    for moment_tick in _time_ticks(first, last):
        label = f"{moment_tick:%b %d}" if daily and moment_tick.hour == 0 else f"{moment_tick:%b %d %H:%M}"
        left = x(moment_tick)
        parts.append(f'<line x1="{left:.1f}" x2="{left:.1f}" y1="{TOP}" y2="{HEIGHT - BOTTOM}"/>')
        parts.append(f'<text class="tick" x="{left:.1f}" y="{HEIGHT - BOTTOM + 16}" text-anchor="middle">')
        parts.append(f"{escape(label)}</text>")
    parts.append("</g>")
    for span in spans:
        left, right = x(span.start), x(span.end)
        width = max(right - left, 2.0)
        parts.append(
            f'<rect class="span {escape(span.css_class)}" x="{left:.1f}" y="{TOP}" width="{width:.1f}" '
            f'height="{plot_height}"><title>{escape(span.title)}</title></rect>'
        )
    for line in lines:
        segments: list[list[tuple[datetime, float]]] = []
        previous: datetime | None = None
        for moment, value in sorted(line.points):
            if previous is None or (line.max_gap is not None and moment - previous > line.max_gap):
                segments.append([])
            segments[-1].append((moment, value))
            previous = moment
        for segment in segments:
            coordinates = " ".join(f"{x(moment):.1f},{y(value):.1f}" for moment, value in segment)
            if len(segment) == 1:
                moment, value = segment[0]
                parts.append(
                    f'<circle class="{escape(line.css_class)}" cx="{x(moment):.1f}" cy="{y(value):.1f}" r="2"/>'
                )
            else:
                parts.append(f'<polyline class="{escape(line.css_class)}" points="{coordinates}"/>')
    parts.append(
        f'<text class="axis" x="14" y="{TOP + plot_height / 2:.1f}" text-anchor="middle" '
        f'transform="rotate(-90 14 {TOP + plot_height / 2:.1f})">{escape(y_label)}</text>'
    )
    parts.append(f'<text class="axis" x="{WIDTH - RIGHT}" y="{HEIGHT - 4}" text-anchor="end">time (UTC)</text>')
    parts.append("</svg>")
    return "".join(parts)
