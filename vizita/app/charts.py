"""The report's line charts as inline SVG: one indicator over the days, its 30-day and
7-day values and its target.

The lines differ in colour (Okabe and Ito's blue and orange, which readers with any
common colour blindness tell apart), in thickness and in dash pattern, and each is named
at its end, so none depends on colour alone. Share axes always start at 0 %: a zoomed
axis makes a few points look like a collapse.
"""

from __future__ import annotations

import html
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from vizita.contract.display import format_target, is_share, title
from vizita.contract.targets import Target

CHART_WIDTH, CHART_HEIGHT = 640, 220
MONTH_COLOUR, WEEK_COLOUR = "#0072b2", "#d55e00"  # Okabe-Ito blue and vermillion
TARGET_COLOUR, GRID_COLOUR, TEXT_COLOUR = "#222222", "#dddddd", "#555555"
WEEK_DASH, TARGET_DASH = "2 3", "8 4"


def esc(value: object) -> str:
    return html.escape(str(value), quote=True)


@dataclass(frozen=True)
class Frame:
    """The plot area of a chart (SVG units) and the values at its bottom and top."""

    left: float
    top: float
    width: float
    height: float
    low: float
    high: float

    def x(self, index: int, count: int) -> float:
        if count <= 1:
            return self.left + self.width / 2
        return self.left + self.width * index / (count - 1)

    def y(self, value: float) -> float:
        return self.top + (self.high - value) / (self.high - self.low) * self.height


PLOT = Frame(left=56, top=12, width=CHART_WIDTH - 56 - 84, height=CHART_HEIGHT - 12 - 36,
             low=0.0, high=1.0)  # fmt: skip


def svg_path(values: Sequence[float | None], frame: Frame) -> str:
    """An SVG path through the values, one x step a day; a day with no value breaks
    the line, and a value alone between gaps is drawn as a dot (a zero-length segment
    with round caps)."""
    parts: list[str] = []
    run = 0
    for index, value in enumerate(values):
        if value is None:
            if run == 1:
                parts.append("l0,0")
            run = 0
            continue
        point = f"{frame.x(index, len(values)):.1f},{frame.y(value):.1f}"
        parts.append(("L" if run else "M") + point)
        run += 1
    if run == 1:
        parts.append("l0,0")
    return " ".join(parts)


def nice_ceiling(value: float) -> float:
    """The smallest of 1, 2, 2.5, 5 times 10^k at or above `value` (at least 1)."""
    if value <= 1:
        return 1.0
    scale = 10.0 ** (len(str(int(value))) - 1)
    for step in (1.0, 2.0, 2.5, 5.0, 10.0):
        if value <= step * scale:
            return step * scale
    return 10.0 * scale  # not reached: value < 10 times scale


def share_step(top: float) -> float:
    """Grid step of a share axis reaching at least `top`: 5, 10 or 20 points."""
    if top <= 0.3 + 1e-9:
        return 0.05
    return 0.1 if top <= 0.6 + 1e-9 else 0.2


def chart_range(
    indicator: str, values: Sequence[float | None], target: Target | None
) -> tuple[float, float]:
    """The values at the bottom and top of a chart: always from 0. A share's top is
    the values and the target with 5 points of room, rounded up to its grid step (at
    most 100 %); a count's a round number."""
    known = [v for v in values if v is not None]
    if target is not None:
        known.append(target.bound)
    if not is_share(indicator):
        return 0.0, nice_ceiling(max(known, default=0.0))
    wanted = max(known, default=1.0) + 0.05
    step = share_step(wanted)
    # 1e-9: 0.15 + 0.05 must give 20%, not the 25% binary rounding would.
    return 0.0, min(1.0, math.ceil(wanted / step - 1e-9) * step)


def ticks(indicator: str, low: float, high: float) -> list[float]:
    """Grid values: every 5, 10 or 20 points on a share axis, else quarters."""
    if is_share(indicator):
        step = share_step(high)
        return [low + step * k for k in range(round((high - low) / step) + 1)]
    return [low + (high - low) * k / 4 for k in range(5)]


def _tick(indicator: str, value: float) -> str:
    return f"{value:.0%}" if is_share(indicator) else f"{value:g}"


def _grid(indicator: str, frame: Frame) -> list[str]:
    lines = []
    for value in ticks(indicator, frame.low, frame.high):
        y = frame.y(value)
        lines.append(
            f'<line x1="{frame.left}" y1="{y:.1f}" x2="{frame.left + frame.width}" '
            f'y2="{y:.1f}" stroke="{GRID_COLOUR}" stroke-width="1" />'
            f'<text x="{frame.left - 6}" y="{y + 4:.1f}" text-anchor="end" font-size="11" '
            f'fill="{TEXT_COLOUR}">{esc(_tick(indicator, value))}</text>'
        )
    return lines


def _day_labels(days: Sequence[date], frame: Frame) -> list[str]:
    y = frame.top + frame.height + 18
    picks = sorted({0, len(days) // 2, len(days) - 1}) if days else []
    anchors = {0: "start", len(days) - 1: "end"} if len(days) > 1 else {}
    return [
        f'<text x="{frame.x(i, len(days)):.1f}" y="{y:.1f}" font-size="11" '
        f'fill="{TEXT_COLOUR}" text-anchor="{anchors.get(i, "middle")}">'
        f"{esc(days[i].isoformat())}</text>"
        for i in picks
    ]


def _target_line(indicator: str, target: Target | None, frame: Frame) -> list[str]:
    if target is None:
        return []
    y = frame.y(target.bound)
    return [
        f'<line x1="{frame.left}" y1="{y:.1f}" x2="{frame.left + frame.width}" y2="{y:.1f}" '
        f'stroke="{TARGET_COLOUR}" stroke-width="1.5" stroke-dasharray="{TARGET_DASH}" />'
        # In the right margin: on the plot it would sit on the lines near the target.
        f'<text x="{frame.left + frame.width + 4}" y="{y + 4:.1f}" font-size="11" '
        f'fill="{TARGET_COLOUR}">{esc(format_target(indicator, target))}</text>'
    ]


def _end_label(values: Sequence[float | None], frame: Frame, text: str, colour: str) -> str:
    """The line's name at its last value, so it reads without the colour."""
    last = next((i for i in range(len(values) - 1, -1, -1) if values[i] is not None), None)
    if last is None:
        return ""
    y = frame.y(values[last] or 0.0)
    return (
        f'<text x="{frame.x(last, len(values)) + 4:.1f}" y="{y - 4:.1f}" font-size="10" '
        f'fill="{colour}">{esc(text)}</text>'
    )


def line_chart(
    indicator: str,
    days: Sequence[date],
    monthly: Sequence[float | None],
    weekly: Sequence[float | None],
    target: Target | None,
) -> str:
    """One indicator over the days: the 30-day value (thick, solid), the 7-day value
    (thin, dotted), the target (dashed)."""
    low, high = chart_range(indicator, [*monthly, *weekly], target)
    frame = Frame(PLOT.left, PLOT.top, PLOT.width, PLOT.height, low, high)
    lines = [
        f'<path d="{svg_path(weekly, frame)}" fill="none" stroke="{WEEK_COLOUR}" '
        f'stroke-width="1.5" stroke-dasharray="{WEEK_DASH}" stroke-linecap="round" '
        'stroke-linejoin="round" />',
        f'<path d="{svg_path(monthly, frame)}" fill="none" stroke="{MONTH_COLOUR}" '
        'stroke-width="2.5" stroke-linecap="round" stroke-linejoin="round" />',
        _end_label(monthly, frame, "30 d", MONTH_COLOUR),
        _end_label(weekly, frame, "7 d", WEEK_COLOUR),
    ]
    caption = f"{title(indicator)}, Kosovo-wide: 30-day and 7-day values"
    return "".join(
        [
            f'<svg data-indicator="{esc(indicator)}" width="{CHART_WIDTH}" '
            f'height="{CHART_HEIGHT}" viewBox="0 0 {CHART_WIDTH} {CHART_HEIGHT}" role="img" '
            f'aria-label="{esc(caption)}" style="max-width:100%;height:auto" '
            'font-family="sans-serif">',
            f"<title>{esc(caption)}</title>",
            *_grid(indicator, frame),
            *_target_line(indicator, target, frame),
            *lines,
            *_day_labels(days, frame),
            "</svg>",
        ]
    )


def trend_values(
    rows: Sequence[Mapping[str, Any]], days: Sequence[date]
) -> dict[tuple[str, int], list[float | None]]:
    """(indicator, window_days) -> the value on each day (None: no row or no value)."""
    by_key: dict[tuple[str, int], dict[date, float | None]] = {}
    for row in rows:
        key = (str(row["indicator"]), int(row["window_days"]))
        by_key.setdefault(key, {})[row["as_of"]] = row["value"]
    return {key: [values.get(day) for day in days] for key, values in by_key.items()}
