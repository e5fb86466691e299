"""Maps of Kosovo as inline SVG: the 38 municipalities at their seats, one map per
indicator with a target, each mark coloured by how far the municipality is from it.

Colour says how far (six classes of ColorBrewer's PuOr, a palette readers with colour
blindness tell apart), the shape says the standing (▼ behind or alerted, ▽ behind with
too few visits to say, ● on target, ○ no value or no target), and the number in the
mark is the municipality's rank in the table, worst first. Each mark's <title> gives
the name, value, denominator, target and distance: what a pointer shows on hover.
Seats too close to draw apart are pushed apart a little, with a line to the true seat.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from vizita.app.charts import esc
from vizita.app.report_data import Standings
from vizita.contract.display import (
    STANDING_TEXT,
    Mark,
    Standing,
    format_distance,
    format_target,
    format_value,
    is_share,
    municipality_label,
    title,
)
from vizita.contract.indicators import INDICATORS
from vizita.contract.municipalities import MUNICIPALITIES
from vizita.contract.targets import ROUNDING

MAP_WIDTH: Final = 340
MARGIN: Final = 14
RADIUS: Final = 8.0
NO_COLOUR: Final = "#ffffff"
#: (lowest distance of the class, its colour, what it means), furthest behind first;
#: distances as display.distance (points for shares, a fraction of the target else)
CLASSES: Final[tuple[tuple[float, str, str], ...]] = (
    (-math.inf, "#b35806", "10 or more behind"),
    (-0.10, "#f1a340", "5 to 10 behind"),
    (-0.05, "#fee0b6", "less than 5 behind"),
    (0.0, "#d8daeb", "up to 5 past"),
    (0.05, "#998ec3", "5 to 10 past"),
    (0.10, "#542788", "10 or more past"),
)
#: the outline of a triangle: thick when alerted, dashed when too few visits to say
OUTLINE: Final = {
    Standing.ALERTED: ' stroke-width="2.5"',
    Standing.TOO_FEW: ' stroke-width="1" stroke-dasharray="2 1.5"',
}
MOVED: Final = 2.0  # a mark drawn this far from its seat gets a line to it
DARK_FILLS: Final = frozenset({"#b35806", "#542788", "#998ec3"})  # white numbers on these


def colour_of(mark: Mark) -> str:
    """The class colour of a mark's distance; white for no distance. A value behind
    its target never takes a "past" colour, however close it is, nor the reverse."""
    if mark.distance is None:
        return NO_COLOUR
    if mark.standing is Standing.ALERTED:  # alerted, yet maybe back past the target
        behind = mark.distance < -ROUNDING
    else:
        behind = mark.standing in (Standing.BEHIND, Standing.TOO_FEW)
    if behind:
        return next(colour for low, colour, _ in reversed(CLASSES[:3]) if mark.distance >= low)
    return next(colour for low, colour, _ in reversed(CLASSES[3:]) if mark.distance >= low
                or low == 0.0)  # fmt: skip


# --- placing the seats ---------------------------------------------------------------------


@dataclass(frozen=True)
class Projection:
    """Longitude and latitude to SVG units: equirectangular, longitudes shrunk by the
    cosine of the middle latitude (good to a few per cent across Kosovo)."""

    west: float
    north: float
    scale: float  # SVG units per degree of latitude
    squeeze: float  # cos(middle latitude)

    def point(self, latitude: float, longitude: float) -> tuple[float, float]:
        x = MARGIN + (longitude - self.west) * self.squeeze * self.scale
        return x, MARGIN + (self.north - latitude) * self.scale


def projection() -> Projection:
    lats = [m.latitude for m in MUNICIPALITIES.values()]
    lons = [m.longitude for m in MUNICIPALITIES.values()]
    squeeze = math.cos(math.radians((min(lats) + max(lats)) / 2))
    scale = (MAP_WIDTH - 2 * MARGIN) / ((max(lons) - min(lons)) * squeeze)
    return Projection(min(lons), max(lats), scale, squeeze)


def map_height(where: Projection) -> float:
    south = min(m.latitude for m in MUNICIPALITIES.values())
    return where.point(south, where.west)[1] + MARGIN


def spread(points: Sequence[tuple[float, float]], gap: float) -> list[tuple[float, float]]:
    """The points moved apart until no two are closer than `gap` (a few rounds of
    pushing each pair apart equally); the same input gives the same output."""
    placed = [list(p) for p in points]
    for _ in range(60):
        moved = False
        for i in range(len(placed)):
            for j in range(i + 1, len(placed)):
                dx, dy = placed[j][0] - placed[i][0], placed[j][1] - placed[i][1]
                apart = math.hypot(dx, dy)
                if apart >= gap - 1e-6:
                    continue
                ux, uy = (dx / apart, dy / apart) if apart > ROUNDING else (0.0, 1.0)
                push = (gap - apart) / 2 + 0.01
                placed[i][0] -= ux * push
                placed[i][1] -= uy * push
                placed[j][0] += ux * push
                placed[j][1] += uy * push
                moved = True
        if not moved:
            break
    return [(x, y) for x, y in placed]


# --- one map ---------------------------------------------------------------------------------


def _shape(mark: Mark, x: float, y: float, fill: str) -> str:
    r = RADIUS
    if mark.standing in (Standing.ALERTED, Standing.BEHIND, Standing.TOO_FEW):
        points = f"{x - r * 1.1:.1f},{y - r * 0.8:.1f} {x + r * 1.1:.1f},{y - r * 0.8:.1f} "
        points += f"{x:.1f},{y + r * 1.1:.1f}"
        stroke = OUTLINE.get(mark.standing, ' stroke-width="1"')
        return f'<polygon points="{points}" fill="{fill}" stroke="#222222"{stroke} />'
    if mark.standing is Standing.ON_TARGET:
        return f'<circle cx="{x:.1f}" cy="{y:.1f}" r="{r}" fill="{fill}" stroke="#222222" />'
    return (
        f'<circle cx="{x:.1f}" cy="{y:.1f}" r="{r * 0.7:.1f}" fill="{NO_COLOUR}" '
        'stroke="#888888" stroke-dasharray="2 1.5" />'
    )


def _tip(view: Standings, code: str, indicator: str) -> str:
    target = view.target(code, indicator)
    reading = view.reading(code, indicator)
    mark = view.marks[code][indicator]
    parts = [f"{view.rank[code]}. {municipality_label(code)}: "
             f"{format_value(indicator, reading.value, target)}"]  # fmt: skip
    if reading.denominator is not None:
        parts.append(f" (of {reading.denominator})")
    parts.append(f"; target {format_target(indicator, target)}")
    if target is not None and reading.value is not None:
        parts.append(f", {format_distance(indicator, target, reading.value)}")
    parts.append(f"; {STANDING_TEXT[mark.standing][1]}")
    return "".join(parts)


def _mark(view: Standings, code: str, indicator: str, seat: tuple[float, float],
          drawn: tuple[float, float]) -> str:  # fmt: skip
    mark = view.marks[code][indicator]
    fill = colour_of(mark)
    x, y = drawn
    leader = ""
    if math.dist(seat, drawn) > MOVED:
        leader = (
            f'<line x1="{seat[0]:.1f}" y1="{seat[1]:.1f}" x2="{x:.1f}" y2="{y:.1f}" '
            'stroke="#888888" stroke-width="0.8" />'
            f'<circle cx="{seat[0]:.1f}" cy="{seat[1]:.1f}" r="1.2" fill="#888888" />'
        )
    number = ""
    if mark.standing not in (Standing.NO_DATA, Standing.NO_TARGET):
        ink = "#ffffff" if fill in DARK_FILLS else "#222222"
        lift = -1.5 if mark.standing is not Standing.ON_TARGET else 3.0
        number = (f'<text x="{x:.1f}" y="{y + lift:.1f}" font-size="7.5" text-anchor="middle" '
                  f'fill="{ink}">{view.rank[code]}</text>')  # fmt: skip
    return (
        f'<g data-municipality="{esc(code)}" data-standing="{esc(mark.standing)}" '
        f'data-colour="{fill}"><title>{esc(_tip(view, code, indicator))}</title>'
        f"{leader}{_shape(mark, x, y, fill)}{number}</g>"
    )


def kosovo_map(view: Standings, indicator: str) -> str:
    """One indicator's map: every municipality's mark at its seat."""
    where = projection()
    codes = list(MUNICIPALITIES)
    seats = [where.point(MUNICIPALITIES[c].latitude, MUNICIPALITIES[c].longitude) for c in codes]
    drawn = spread(seats, 2 * RADIUS + 1)
    height = map_height(where)
    caption = f"Map of Kosovo: {title(indicator)} against its target, by municipality"
    marks = [_mark(view, code, indicator, seat, spot)
             for code, seat, spot in zip(codes, seats, drawn, strict=True)]  # fmt: skip
    return (
        f'<svg class="map" data-map="{esc(indicator)}" viewBox="0 0 {MAP_WIDTH} {height:.0f}" '
        f'width="{MAP_WIDTH}" height="{height:.0f}" role="img" aria-label="{esc(caption)}" '
        'style="width:100%;max-width:100%;height:auto" font-family="sans-serif">'
        f"<title>{esc(caption)}</title>"
        f'<rect x="0" y="0" width="{MAP_WIDTH}" height="{height:.0f}" fill="#f8f8f8" />'
        f"{_scale_bar(where, height)}{''.join(marks)}</svg>"
    )


def _scale_bar(where: Projection, height: float) -> str:
    """20 km, bottom left: a degree of latitude is about 111 km."""
    length = 20 / 111.2 * where.scale
    y = height - 6
    return (
        f'<line x1="{MARGIN}" y1="{y:.1f}" x2="{MARGIN + length:.1f}" y2="{y:.1f}" '
        'stroke="#555555" stroke-width="2" />'
        f'<text x="{MARGIN + length + 4:.1f}" y="{y + 3:.1f}" font-size="9" '
        'fill="#555555">20 km</text>'
    )


def mapped_indicators(view: Standings) -> list[str]:
    """The indicators some municipality has a target on, in the contract's order."""
    return [i for i in INDICATORS if any(i in found for found in view.targets.values())]


def distance_unit(indicator: str) -> str:
    return "points" if is_share(indicator) else "% of the target"


def legend() -> str:
    """The key to the maps, as HTML (text beside each colour, and the shapes)."""
    swatches = "".join(
        f'<span class="swatch" style="background:{colour};'
        f'color:{"#ffffff" if colour in DARK_FILLS else "#222222"}">{esc(meaning)}</span>'
        for _, colour, meaning in CLASSES
    )
    return (
        f'<p class="legend">How far from the target (points for shares, per cent of the '
        f"target for counts): {swatches}</p>"
        '<p class="meta">Shapes: ▼ behind (thick outline: alert raised; dashed: too few '
        "visits to raise one), ● on or past the target, ○ no value or no target. The number "
        "is the municipality's rank in the table above, worst first; hover a mark for its "
        "value and denominator. Marks sit at the municipal seats (not boundaries); a thin "
        "line joins a mark moved to stay legible to its seat.</p>"
    )
