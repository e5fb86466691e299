"""The report: one self-contained HTML file for people who read a weekly
email rather than Grafana.

No network fetch, no script, no external stylesheet or image: the charts are inline SVG
drawn here, the style a short <style> block plus inline colours on the status cells
(mail clients that drop <style> keep those). Every piece of text goes through
`html.escape`. Reading the store (`read_report_data`) and rendering (`render_report`,
plain data in, a string out) are apart, so the rendering is tested without a store.
"""

from __future__ import annotations

import html
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import structlog

from sinks.queries import (
    active_alerts,
    as_of_range,
    indicator_rows,
    indicator_series,
    store_totals,
)
from sinks.store import Store
from vizita.contract.days import LOCAL_TZ
from vizita.contract.display import (
    STANDING_TEXT,
    Standing,
    format_target,
    format_value,
    is_share,
    municipality_label,
    short,
    standing,
    title,
)
from vizita.contract.indicators import ALERT_WINDOW, COUNT_INDICATORS, INDICATORS, WEEK
from vizita.contract.municipalities import ALL_KOSOVO, MUNICIPALITIES
from vizita.contract.settings import Settings
from vizita.contract.targets import Reading, Target, Targets, load_targets

log = structlog.get_logger(__name__)

# The charts show at most this many of the last stored days: a store that has run for
# years still makes a file a mail client opens quickly.
TREND_MAX_DAYS = 366

# standing -> background colour; the marker (display.STANDING_TEXT) says it again for
# readers who cannot tell the colours apart, or whose mail client prints in grey.
BACKGROUND: dict[Standing, str] = {
    Standing.ALERTED: "#f4c7c3",
    Standing.BEHIND: "#f4c7c3",
    Standing.TOO_FEW: "#fce8b2",
    Standing.ON_TARGET: "#d9ead3",
    Standing.NO_TARGET: "",
    Standing.NO_DATA: "#eeeeee",
}


def esc(value: object) -> str:
    return html.escape(str(value), quote=True)


# --- the data ------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReportData:
    """Everything the report shows, as plain values (rows as the store returns them)."""

    generated_at: datetime  # timezone-aware
    totals: Mapping[str, int]  # visits, voided, dead_letters (sinks.queries.store_totals)
    targets: Targets
    first_day: date | None = None  # first day with indicator values; None: none yet
    last_day: date | None = None
    series: Sequence[Mapping[str, Any]] = ()  # ALL's rows, both windows, chart days
    latest: Sequence[Mapping[str, Any]] = ()  # every scope's rows at last_day
    alerts: Sequence[Mapping[str, Any]] = ()  # the active_alerts view

    def __post_init__(self) -> None:
        if self.generated_at.tzinfo is None:
            raise ValueError("generated_at must be timezone-aware")

    @property
    def chart_days(self) -> list[date]:
        if self.first_day is None or self.last_day is None:
            return []
        start = chart_start(self.first_day, self.last_day)
        return [start + timedelta(days=i) for i in range((self.last_day - start).days + 1)]


def chart_start(first: date, last: date) -> date:
    return max(first, last - timedelta(days=TREND_MAX_DAYS - 1))


def read_report_data(store: Store, targets: Targets, now: datetime) -> ReportData:
    totals, alerts = store_totals(store), active_alerts(store)
    period = as_of_range(store)
    if period is None:
        return ReportData(now, totals, targets, alerts=alerts)
    first, last = period
    return ReportData(
        now,
        totals,
        targets,
        first,
        last,
        series=indicator_series(store, ALL_KOSOVO, chart_start(first, last)),
        latest=indicator_rows(store, last),
        alerts=alerts,
    )


def build_report(store: Store, targets: Targets, now: datetime) -> str:
    """The report of what `store` holds now (`now` timezone-aware)."""
    return render_report(read_report_data(store, targets, now))


def write_report(path: Path, page: str) -> None:
    """Write atomically: a mail job picking the file up never sees half of it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    # Opened plainly (not mkstemp, which makes it private): the file gets the umask's
    # permissions, as any report a mail job or web server must read.
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        temporary.write_text(page, encoding="utf-8")
        temporary.replace(path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def save_report(settings: Settings, store: Store, now: datetime) -> Path | None:
    """Build and write the report to `settings.report_path`. Called as a program exits:
    a failure is logged and gives None, so it never hides why the program stopped."""
    path = settings.report_path
    try:
        write_report(path, build_report(store, load_targets(settings.targets_file), now))
    except Exception:  # any failure: the report is a by-product of the run
        log.exception("report_not_written", path=str(path))
        return None
    log.info("report_written", path=str(path))
    return path


# --- charts --------------------------------------------------------------------------------


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


def chart_range(
    indicator: str, values: Sequence[float | None], target: Target | None
) -> tuple[float, float]:
    """The values at the bottom and top of a chart. Counts start at 0. Shares zoom to
    the tens of percent around the values and the target, 5 points of margin: a line at
    88-91% against a 90% target is unreadable on a 0-100% axis (the labels say where
    the axis starts)."""
    known = [v for v in values if v is not None]
    if target is not None:
        known.append(target.bound)
    if not is_share(indicator):
        return 0.0, nice_ceiling(max(known, default=0.0))
    if not known:
        return 0.0, 1.0
    # 1e-9: 0.15 + 0.05 must give 20%, not the 30% binary rounding would.
    low = max(0.0, math.floor((min(known) - 0.05) * 10 + 1e-9) / 10)
    high = min(1.0, math.ceil((max(known) + 0.05) * 10 - 1e-9) / 10)
    return (low, high) if high - low <= ZOOM_SPAN + 1e-9 else (0.0, 1.0)


ZOOM_SPAN = 0.5  # a wider range of shares is drawn on the whole 0-100% axis


def ticks(indicator: str, low: float, high: float) -> list[float]:
    """Grid values: every 5 or 10 points on a zoomed share axis, else quarters."""
    span = high - low
    if is_share(indicator) and span <= ZOOM_SPAN + 1e-9:
        step = 0.05 if span <= 0.3 + 1e-9 else 0.1
        return [low + step * k for k in range(round(span / step) + 1)]
    return [low + span * k / 4 for k in range(5)]


CHART_WIDTH, CHART_HEIGHT = 640, 220
PLOT = Frame(
    left=56, top=12, width=CHART_WIDTH - 56 - 60, height=CHART_HEIGHT - 12 - 36, low=0.0, high=1.0
)
MONTH_COLOUR, WEEK_COLOUR, TARGET_COLOUR, GRID_COLOUR = "#1f4e79", "#7fa7d0", "#c0392b", "#dddddd"


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
            f'fill="#555555">{esc(_tick(indicator, value))}</text>'
        )
    return lines


def _day_labels(days: Sequence[date], frame: Frame) -> list[str]:
    y = frame.top + frame.height + 18
    picks = sorted({0, len(days) // 2, len(days) - 1}) if days else []
    anchors = {0: "start", len(days) - 1: "end"} if len(days) > 1 else {}
    return [
        f'<text x="{frame.x(i, len(days)):.1f}" y="{y:.1f}" font-size="11" fill="#555555" '
        f'text-anchor="{anchors.get(i, "middle")}">{esc(days[i].isoformat())}</text>'
        for i in picks
    ]


def _target_line(indicator: str, target: Target | None, frame: Frame) -> list[str]:
    if target is None:
        return []
    y = frame.y(target.bound)
    return [
        f'<line x1="{frame.left}" y1="{y:.1f}" x2="{frame.left + frame.width}" y2="{y:.1f}" '
        f'stroke="{TARGET_COLOUR}" stroke-width="1.5" stroke-dasharray="6 4" />'
        # In the right margin: on the plot it would sit on the lines near the target.
        f'<text x="{frame.left + frame.width + 4}" y="{y + 4:.1f}" font-size="11" '
        f'fill="{TARGET_COLOUR}">{esc(format_target(indicator, target))}</text>'
    ]


def line_chart(
    indicator: str,
    days: Sequence[date],
    monthly: Sequence[float | None],
    weekly: Sequence[float | None],
    target: Target | None,
) -> str:
    """One indicator over the days: the 30-day value (thick), the 7-day value (thin),
    the target (dashed)."""
    low, high = chart_range(indicator, [*monthly, *weekly], target)
    frame = Frame(PLOT.left, PLOT.top, PLOT.width, PLOT.height, low, high)
    lines = [
        f'<path d="{svg_path(weekly, frame)}" fill="none" stroke="{WEEK_COLOUR}" '
        'stroke-width="1.5" stroke-linecap="round" stroke-linejoin="round" />',
        f'<path d="{svg_path(monthly, frame)}" fill="none" stroke="{MONTH_COLOUR}" '
        'stroke-width="2.5" stroke-linecap="round" stroke-linejoin="round" />',
    ]
    caption = f"{title(indicator)}, Kosovo-wide: 30-day and 7-day values"
    return "".join(
        [
            f'<svg data-indicator="{esc(indicator)}" width="{CHART_WIDTH}" height="{CHART_HEIGHT}" '
            f'viewBox="0 0 {CHART_WIDTH} {CHART_HEIGHT}" role="img" aria-label="{esc(caption)}" '
            'style="max-width:100%;height:auto" font-family="sans-serif">',
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


def kosovo_target(targets: Targets, indicator: str) -> Target | None:
    """The line drawn on the Kosovo-wide chart: the target every municipality has by
    default. Counts have none: a municipality's volume target says nothing of Kosovo's."""
    if indicator in COUNT_INDICATORS:
        return None
    return {str(name): target for name, target in targets.defaults.items()}.get(indicator)


# --- the page ------------------------------------------------------------------------------

STYLE = """
body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,Arial,sans-serif;color:#222222;
max-width:1040px;margin:0 auto;padding:16px}
h1{font-size:22px;margin:0 0 4px} h2{font-size:18px;margin:28px 0 8px}
table{border-collapse:collapse;font-size:13px} th,td{border:1px solid #cccccc;padding:3px 6px}
th{background:#f3f3f3;text-align:left} td.n{text-align:right;white-space:nowrap}
figure{margin:8px 0 18px} figcaption{font-size:14px;margin-bottom:2px}
.meta{color:#555555;font-size:13px} .legend span{display:inline-block;padding:2px 6px;margin:2px}
"""


def _table(head: Sequence[str], body: Sequence[str], foot: str = "", css: str = "") -> str:
    heads = "".join(f'<th scope="col">{esc(cell)}</th>' for cell in head)
    foot = f"<tfoot>{foot}</tfoot>" if foot else ""
    return (
        f'<table class="{esc(css)}"><thead><tr>{heads}</tr></thead>{foot}'
        f"<tbody>{''.join(body)}</tbody></table>"
    )


def _number(value: float | None) -> str:
    """The exact value for machines (a data attribute): '' for none."""
    return "" if value is None else esc(repr(value))


def _or_dash(value: object) -> str:
    return "—" if value is None else str(value)


def _header(data: ReportData) -> str:
    local = data.generated_at.astimezone(LOCAL_TZ)
    if data.last_day is None:
        period = "No indicator values in the store yet."
    else:
        period = (
            f"Indicators for the days {data.first_day} to {data.last_day}; tables show "
            f"the latest day, {data.last_day}."
        )
    counts = [
        ("visits", data.totals.get("visits", 0)),
        ("voided", data.totals.get("voided", 0)),
        ("dead letters", data.totals.get("dead_letters", 0)),
        ("active alerts", len(data.alerts)),
    ]
    cells = "".join(f'<td class="n" data-count="{esc(k)}">{esc(v)}</td>' for k, v in counts)
    return (
        "<h1>Vizita: home visiting programme report</h1>"
        f'<p class="meta">{esc(period)} Generated {esc(local.strftime("%Y-%m-%d %H:%M %Z"))} '
        f"({esc(LOCAL_TZ.key)} time).</p>"
        + _table([k for k, _ in counts], [f"<tr>{cells}</tr>"], css="counts")
    )


def _alerts_section(data: ReportData, latest: Mapping[tuple[str, str, int], Any]) -> str:
    heading = f"<h2>Active alerts ({len(data.alerts)})</h2>"
    if not data.alerts:
        return heading + "<p>No municipality is behind a target.</p>"
    rows = []
    for alert in data.alerts:
        code, indicator = str(alert["municipality"]), str(alert["indicator"])
        target = data.targets.for_municipality(code).get(indicator)
        shown = (
            format_target(indicator, target) if target else format_value(indicator, alert["target"])
        )
        now = latest.get((code, indicator, int(alert["window_days"])), {}).get("value")
        raised = format_value(indicator, alert["value"], target)
        if alert["denominator"] is not None:
            raised += f" (of {alert['denominator']})"
        cells = (
            municipality_label(code),
            title(indicator),
            format_value(indicator, now, target),
            shown,
            raised,
            alert["as_of"],
        )
        rows.append("<tr>" + "".join(f"<td>{esc(cell)}</td>" for cell in cells) + "</tr>")
    head = [
        "municipality",
        "indicator",
        "30-day value now",
        "target",
        "when raised",
        "behind since",
    ]
    return heading + _table(head, rows, css="alerts")


def _kosovo_table(data: ReportData, latest: Mapping[tuple[str, str, int], Any]) -> str:
    rows = []
    for indicator in INDICATORS:
        cells = []
        for window in (WEEK, ALERT_WINDOW):
            value = latest.get((ALL_KOSOVO, indicator, window), {}).get("value")
            cells.append(
                f'<td class="n" data-window="{window}" data-value="{_number(value)}">'
                f"{esc(format_value(indicator, value))}</td>"
            )
        month = latest.get((ALL_KOSOVO, indicator, ALERT_WINDOW), {})
        numerator, denominator = month.get("numerator"), month.get("denominator")
        share = _or_dash(numerator) if denominator is None else f"{numerator} / {denominator}"
        cells.append(
            f'<td class="n" data-numerator="{_number(numerator)}" '
            f'data-denominator="{_number(denominator)}">{esc(share)}</td>'
        )
        target = format_target(indicator, kosovo_target(data.targets, indicator))
        cells.append(f'<td class="n">{esc(target)}</td>')
        rows.append(
            f'<tr data-indicator="{esc(indicator)}"><th scope="row">'
            f"{esc(title(indicator))}</th>{''.join(cells)}</tr>"
        )
    head = ["indicator", "7 days", "30 days", "30 days: numerator / denominator", "target"]
    return _table(head, rows, css="kosovo")


def _trends(data: ReportData) -> str:
    days = data.chart_days
    if not days:
        return "<p>No days to chart yet.</p>"
    values = trend_values(data.series, days)
    figures = []
    for indicator in INDICATORS:
        monthly = values.get((indicator, ALERT_WINDOW), [None] * len(days))
        weekly = values.get((indicator, WEEK), [None] * len(days))
        target = kosovo_target(data.targets, indicator)
        caption = (
            f"<b>{esc(title(indicator))}</b>: 30 days "
            f"{esc(format_value(indicator, monthly[-1]))}, 7 days "
            f"{esc(format_value(indicator, weekly[-1]))}, target "
            f"{esc(format_target(indicator, target))}"
        )
        chart = line_chart(indicator, days, monthly, weekly, target)
        figures.append(f"<figure><figcaption>{caption}</figcaption>{chart}</figure>")
    key = (
        f'<p class="meta"><b style="color:{MONTH_COLOUR}">━ 30-day window</b>, '
        f'<span style="color:{WEEK_COLOUR}">━ 7-day window</span>, '
        f'<span style="color:{TARGET_COLOUR}">╌ target</span> (the one every municipality '
        "has by default). A gap is a day with no value (no eligible visits).</p>"
    )
    return key + "".join(figures)


def _cell(
    data: ReportData, code: str, indicator: str, row: Mapping[str, Any], alerted: bool
) -> tuple[Standing, str]:
    target = data.targets.for_municipality(code).get(indicator) if code != ALL_KOSOVO else None
    value, denominator = row.get("value"), row.get("denominator")
    reading = Reading(value, denominator)
    status = standing(indicator, target, reading, alerted=alerted, targets=data.targets)
    background = BACKGROUND[status]
    marker, meaning = STANDING_TEXT[status]
    tip = (
        f"{title(indicator)}: {meaning}; target {format_target(indicator, target)}; "
        f"denominator {_or_dash(denominator)}"
    )
    style = f' style="background:{background}"' if background else ""
    return status, (
        f'<td class="n s-{status}"{style} title="{esc(tip)}">'
        f"{esc(marker + format_value(indicator, value, target))}</td>"
    )


def _municipalities(data: ReportData, latest: Mapping[tuple[str, str, int], Any]) -> str:
    alerted = {(str(a["municipality"]), str(a["indicator"])) for a in data.alerts}
    rows, counts = [], dict.fromkeys(INDICATORS, 0)
    for code in (*MUNICIPALITIES, ALL_KOSOVO):
        cells = []
        for indicator in INDICATORS:
            row = latest.get((code, indicator, ALERT_WINDOW), {})
            status, cell = _cell(data, code, indicator, row, (code, indicator) in alerted)
            counts[indicator] += status == "alerted"
            cells.append(cell)
        name = f'<th scope="row">{esc(municipality_label(code))}</th>'
        rows.append(f'<tr data-municipality="{esc(code)}">{name}{"".join(cells)}</tr>')
    foot = (
        '<tr><th scope="row">alerts raised</th>'
        + "".join(f'<td class="n">{counts[i]}</td>' for i in INDICATORS)
        + "</tr>"
    )
    legend = "".join(
        f'<span style="background:{BACKGROUND[status] or "#ffffff"}">'
        f"{esc(marker)}{esc(meaning)}</span>"
        for status, (marker, meaning) in STANDING_TEXT.items()
    )
    head = ["municipality", *(short(i) for i in INDICATORS)]
    return f'<p class="legend">{legend}</p>' + _table(head, rows, foot, css="municipalities")


def _footer(data: ReportData) -> str:
    return (
        '<p class="meta">Values are rolling windows ending on the day shown: 30 days (the '
        "window the targets are set on) and 7 days. Targets come from config/targets.yaml "
        "(placeholders until the programme sets them); a ratio with fewer than "
        f"{esc(data.targets.min_denominator)} eligible visits raises no alert; an alert on "
        f"a ratio resolves {esc(f'{data.targets.hysteresis * 100:g}')} points past its "
        "target, one on a count back at it. Kosovo as a whole is not alerted on. "
        "Municipality names: Albanian / Serbian. This file loads nothing from the network."
        "</p>"
    )


def render_report(data: ReportData) -> str:
    """The whole page, from plain data."""
    latest = {
        (str(r["municipality"]), str(r["indicator"]), int(r["window_days"])): r for r in data.latest
    }
    page_title = f"Vizita report, {data.last_day or 'no data yet'}"
    when = f" to {data.last_day}" if data.last_day else ""
    body = [
        _header(data),
        _alerts_section(data, latest),
        f"<h2>Kosovo-wide, 7 and 30 days{esc(when)}</h2>",
        _kosovo_table(data, latest),
        "<h2>Kosovo-wide trends</h2>",
        _trends(data),
        f"<h2>Municipalities against their targets, 30 days{esc(when)}</h2>",
        _municipalities(data, latest),
        _footer(data),
    ]
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8" />'
        '<meta name="viewport" content="width=device-width, initial-scale=1" />'
        f"<title>{esc(page_title)}</title><style>{STYLE}</style></head>"
        f"<body>{''.join(body)}</body></html>\n"
    )
