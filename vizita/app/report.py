"""The report: one self-contained HTML file for people who read a weekly
email rather than Grafana.

No network fetch, no script, no external stylesheet or image: the charts and maps are
inline SVG, the style a short <style> block plus inline colours on the status cells
(mail clients that drop <style> keep those). Every piece of text goes through
`html.escape`. Reading the store (`vizita.app.report_data`) and rendering (plain data
in, a string out) are apart, so the rendering is tested without a store.

Layout: at most 1040 px wide; below 720 px the wide tables turn into one card per row
(each value with its column's name), so nothing is wider than a phone's screen; the
charts and maps scale with the page.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import structlog

from sinks.periods import Period
from sinks.store import Store
from vizita.app.charts import esc, line_chart, trend_values
from vizita.app.mail import report_message, send_message
from vizita.app.report_data import (
    ReportData,
    Row,
    Standings,
    read_report_data,
    standings,
)
from vizita.app.report_map import kosovo_map, legend, mapped_indicators
from vizita.app.report_text import render_text
from vizita.contract.days import LOCAL_TZ
from vizita.contract.display import (
    STANDING_BACKGROUND,
    STANDING_TEXT,
    Standing,
    format_distance,
    format_resolution,
    format_target,
    format_value,
    municipality_label,
    severity,
    short,
    title,
)
from vizita.contract.indicators import ALERT_WINDOW, COUNT_INDICATORS, INDICATORS, WEEK
from vizita.contract.municipalities import ALL_KOSOVO
from vizita.contract.settings import Settings
from vizita.contract.targets import Target, Targets, load_targets

log = structlog.get_logger(__name__)

# Below this width the wide tables become cards (CSS below).
NARROW_PX = 720
SUMMARY_NAMES = 5  # municipalities named in the opening sentence


def build_report(
    store: Store, targets: Targets, now: datetime, period: Period | None = None
) -> str:
    """The report of what `store` holds now (`now` timezone-aware), for the rolling
    30 days or a calendar `period`."""
    return render_report(read_report_data(store, targets, now, period))


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


def mail_report(settings: Settings, data: ReportData, page: str) -> None:
    """Mail the rendered page with its plain-text twin to `smtp_recipients`."""
    message = report_message(
        settings, report_title(data), page, render_text(data), data.generated_at
    )
    send_message(settings, message)


def report_title(data: ReportData) -> str:
    """The page's title and the mail's subject."""
    span = data.span
    return f"Vizita report, {span.name if span else 'no data yet'}"


def kosovo_target(targets: Targets, indicator: str) -> Target | None:
    """The line drawn on the Kosovo-wide chart: the target every municipality has by
    default. Counts have none: a municipality's volume target says nothing of Kosovo's."""
    if indicator in COUNT_INDICATORS:
        return None
    return {str(name): target for name, target in targets.defaults.items()}.get(indicator)


# --- the page ------------------------------------------------------------------------------

STYLE = f"""
body{{font-family:system-ui,-apple-system,'Segoe UI',Roboto,Arial,sans-serif;color:#222222;
max-width:1040px;margin:0 auto;padding:12px}}
h1{{font-size:22px;margin:0 0 4px}} h2{{font-size:18px;margin:28px 0 8px}}
h3{{font-size:15px;margin:18px 0 6px}}
table{{border-collapse:collapse;font-size:13px;max-width:100%}}
th,td{{border:1px solid #cccccc;padding:3px 6px;overflow-wrap:break-word}}
.id{{overflow-wrap:anywhere}}
th{{background:#f3f3f3;text-align:left}} td.n{{text-align:right;white-space:nowrap}}
small.of{{display:block;color:#444444;font-size:11px}}
figure{{margin:8px 0 18px;max-width:100%}} figcaption{{font-size:14px;margin-bottom:2px}}
.meta{{color:#555555;font-size:13px}} .swatch{{display:inline-block;padding:2px 6px;margin:2px}}
.maps{{display:flex;flex-wrap:wrap;gap:12px}}
.maps figure{{flex:1 1 300px;max-width:340px;margin:0}}
svg{{max-width:100%;height:auto}}
@media (max-width:{NARROW_PX}px){{
table.cards,table.cards tbody,table.cards tfoot,table.cards tr{{display:block;width:100%}}
table.cards thead{{display:none}}
table.cards tr{{border:1px solid #cccccc;margin:0 0 8px;box-sizing:border-box}}
table.cards th,table.cards td{{display:inline-block;border:none;vertical-align:top;
box-sizing:border-box;min-width:48%;max-width:100%;text-align:left}}
table.cards th[scope=row]{{display:block;width:100%}}
table.cards td[data-label]::before{{content:attr(data-label) ": ";color:#555555}}
table.cards small.of{{display:inline;margin-left:4px}}
.maps figure{{max-width:100%}}
}}
"""


def _table(
    head: Sequence[str], body: Sequence[str], foot: str = "", css: str = "", cards: bool = False
) -> str:
    heads = "".join(f'<th scope="col">{esc(cell)}</th>' for cell in head)
    foot = f"<tfoot>{foot}</tfoot>" if foot else ""
    classes = f"{css} cards" if cards else css
    return (
        f'<table class="{esc(classes)}"><thead><tr>{heads}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody>{foot}</table>"
    )


def _td(text: str, label: str, css: str = "n", extra: str = "") -> str:
    return f'<td class="{css}" data-label="{esc(label)}"{extra}>{text}</td>'


def _number(value: float | None) -> str:
    """The exact value for machines (a data attribute): '' for none."""
    return "" if value is None else esc(repr(value))


def _or_dash(value: object) -> str:
    return "—" if value is None else str(value)


def _of(denominator: Any) -> str:
    """The denominator under a ratio ('of 412'); nothing for counts."""
    return "" if denominator is None else f'<small class="of">of {esc(denominator)}</small>'


def _share(numerator: Any, denominator: Any) -> str:
    return _or_dash(numerator) if denominator is None else f"{numerator} / {denominator}"


def _header(data: ReportData) -> str:
    local = data.generated_at.astimezone(LOCAL_TZ)
    span = data.span
    if span is None:
        period = "No indicator values in the store yet."
    elif data.period is None:
        period = (
            f"Indicators for the days {data.first_day} to {data.last_day}; tables show "
            f"the {ALERT_WINDOW} days to the latest day, {data.last_day}."
        )
    else:
        period = f"Calendar period {span.name}: the days {span.first} to {span.last}."
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


def _summary(view: Standings) -> str:
    """One sentence a manager reads first: who is behind, worst first."""
    behind = [code for code in view.order if severity(view.marks[code].values())[0]]
    if not behind:
        return "<p>No municipality is behind a target.</p>"
    names = ", ".join(municipality_label(code) for code in behind[:SUMMARY_NAMES])
    more = f" and {len(behind) - SUMMARY_NAMES} more" if len(behind) > SUMMARY_NAMES else ""
    return (
        f'<p class="summary"><b>{len(behind)} of {len(view.order)} municipalities are behind '
        f"on at least one target</b>; worst first: {esc(names)}{esc(more)}.</p>"
    )


def _alerts_section(data: ReportData, view: Standings) -> str:
    heading = f"<h2>Active alerts ({len(data.alerts)}), 30-day window</h2>"
    if not data.alerts:
        return heading + "<p>No alert is raised.</p>"
    rank = {code: n for n, code in enumerate(view.order)}
    ordered = sorted(data.alerts, key=lambda a: (
        rank.get(str(a["municipality"]), len(rank)), str(a["municipality"]),
        INDICATORS.index(a["indicator"]) if a["indicator"] in INDICATORS else len(INDICATORS),
    ))  # fmt: skip
    latest = {(str(r["municipality"]), str(r["indicator"]), int(r["window_days"])): r
              for r in data.latest}  # fmt: skip
    head = ["municipality", "indicator", "30-day value now", "target", "resolves at",
            "when raised", "behind since"]  # fmt: skip
    rows = [_alert_row(data, alert, latest, head) for alert in ordered]
    return heading + _table(head, rows, css="alerts", cards=True)


def _alert_row(
    data: ReportData, alert: Row, latest: Mapping[tuple[str, str, int], Row], head: list[str]
) -> str:
    code, indicator = str(alert["municipality"]), str(alert["indicator"])
    target = data.targets.for_municipality(code).get(indicator)
    now = latest.get((code, indicator, int(alert["window_days"])), {})
    cells = [
        esc(format_value(indicator, now.get("value"), target)) + _of(now.get("denominator")),
        esc(format_target(indicator, target) if target
            else format_value(indicator, alert["target"])),
        esc(format_resolution(indicator, target, data.targets.margin(indicator))
            if target else "—"),
        esc(format_value(indicator, alert["value"], target)) + _of(alert["denominator"]),
        esc(alert["as_of"]),
    ]  # fmt: skip
    return (
        f'<tr data-municipality="{esc(code)}"><th scope="row">{esc(municipality_label(code))}'
        f"</th>{_td(esc(title(indicator)), head[1], css='')}"
        + "".join(_td(cell, label) for cell, label in zip(cells, head[2:], strict=True))
        + "</tr>"
    )


def _kosovo_table(data: ReportData, view: Standings) -> str:
    latest = {(str(r["municipality"]), str(r["indicator"]), int(r["window_days"])): r
              for r in data.latest}  # fmt: skip
    rows = []
    for indicator in INDICATORS:
        target = kosovo_target(data.targets, indicator)
        cells = []
        if data.period is None:
            for window in (WEEK, ALERT_WINDOW):
                row = latest.get((ALL_KOSOVO, indicator, window), {})
                key = f'data-window="{window}"'
                cells.append(_kosovo_value(indicator, row, target, key, f"{window} days"))
            month = latest.get((ALL_KOSOVO, indicator, ALERT_WINDOW), {})
        else:
            month = view.value(ALL_KOSOVO, indicator)
            key = f'data-period="{esc(data.period.name)}"'
            cells.append(_kosovo_value(indicator, month, target, key, data.period.name))
        numerator, denominator = month.get("numerator"), month.get("denominator")
        cells.append(
            f'<td class="n" data-numerator="{_number(numerator)}" '
            f'data-denominator="{_number(denominator)}">{esc(_share(numerator, denominator))}'
            "</td>"
        )
        cells.append(f'<td class="n">{esc(format_target(indicator, target))}</td>')
        rows.append(
            f'<tr data-indicator="{esc(indicator)}"><th scope="row">'
            f"{esc(title(indicator))}</th>{''.join(cells)}</tr>"
        )
    if data.period is None:
        head = ["indicator", "7 days", "30 days", "30 days: numerator / denominator", "target"]
    else:
        head = ["indicator", data.period.name, "numerator / denominator", "target"]
    return _table(head, rows, css="kosovo")


def _kosovo_value(indicator: str, row: Row, target: Target | None, key: str, label: str) -> str:
    """Beside the target every municipality has: the precision that keeps it honest."""
    value = row.get("value")
    return (
        f'<td class="n" {key} data-label="{esc(label)}" data-value="{_number(value)}">'
        f"{esc(format_value(indicator, value, target))}</td>"
    )


def _trends(data: ReportData) -> str:
    days = data.chart_days
    if not days:
        return "<p>No days to chart yet.</p>"
    values = trend_values(data.series, days)
    denominators = {(str(r["indicator"]), int(r["window_days"])): r.get("denominator")
                    for r in data.series if r["as_of"] == days[-1]}  # fmt: skip
    figures = []
    for indicator in INDICATORS:
        monthly = values.get((indicator, ALERT_WINDOW), [None] * len(days))
        weekly = values.get((indicator, WEEK), [None] * len(days))
        target = kosovo_target(data.targets, indicator)
        caption = (
            f"<b>{esc(title(indicator))}</b> on {esc(days[-1])}: 30 days "
            f"{esc(format_value(indicator, monthly[-1], target))}"
            f"{_of_text(denominators.get((indicator, ALERT_WINDOW)))}, 7 days "
            f"{esc(format_value(indicator, weekly[-1], target))}"
            f"{_of_text(denominators.get((indicator, WEEK)))}, target "
            f"{esc(format_target(indicator, target))}"
        )
        chart = line_chart(indicator, days, monthly, weekly, target)
        figures.append(f"<figure><figcaption>{caption}</figcaption>{chart}</figure>")
    key = (
        '<p class="meta">Solid line: the 30-day window; dotted: the 7-day window; dashed: '
        "the target every municipality has by default. Share axes start at 0%. A gap is a "
        "day with no value (no eligible visits).</p>"
    )
    return key + "".join(figures)


def _of_text(denominator: Any) -> str:
    return "" if denominator is None else f" (of {esc(denominator)})"


# --- municipalities ----------------------------------------------------------------------------


def _cell(view: Standings, code: str, indicator: str) -> str:
    target = view.target(code, indicator) if code != ALL_KOSOVO else None
    reading = view.reading(code, indicator)
    status = view.marks[code][indicator].standing if code != ALL_KOSOVO else (
        Standing.NO_DATA if reading.value is None else Standing.NO_TARGET)  # fmt: skip
    marker, meaning = STANDING_TEXT[status]
    tip = f"{title(indicator)}: {meaning}; target {format_target(indicator, target)}"
    if target is not None and reading.value is not None:
        tip += f", {format_distance(indicator, target, reading.value)}"
    background = STANDING_BACKGROUND[status]
    style = f' style="background:{background}"' if background else ""
    text = esc(marker + format_value(indicator, reading.value, target)) + _of(reading.denominator)
    return (
        f'<td class="n s-{status}"{style} data-label="{esc(short(indicator))}" '
        f'data-value="{_number(reading.value)}" title="{esc(tip)}">{text}</td>'
    )


def _municipalities(data: ReportData, view: Standings) -> str:
    rows, alerted = [], dict.fromkeys(INDICATORS, 0)
    for code in view.order:
        behind = severity(view.marks[code].values())[0]
        cells = "".join(_cell(view, code, indicator) for indicator in INDICATORS)
        for indicator in INDICATORS:
            alerted[indicator] += view.marks[code][indicator].standing is Standing.ALERTED
        rows.append(
            f'<tr data-municipality="{esc(code)}" data-rank="{view.rank[code]}">'
            f'<th scope="row">{view.rank[code]}. {esc(municipality_label(code))}</th>'
            f'<td class="n" data-label="behind on" data-behind="{behind}">{behind}</td>'
            f"{cells}</tr>"
        )
    kosovo = "".join(_cell(view, ALL_KOSOVO, indicator) for indicator in INDICATORS)
    foot = (
        f'<tr data-municipality="{ALL_KOSOVO}"><th scope="row">'
        f'{esc(municipality_label(ALL_KOSOVO))}</th><td class="n" data-label="behind on">—</td>'
        f"{kosovo}</tr>"
        '<tr class="alert-counts"><th scope="row">alerts raised</th>'
        '<td data-label="behind on"></td>'
        + "".join(_td(str(alerted[i]), short(i)) for i in INDICATORS)
        + "</tr>"
    )
    swatches = "".join(
        f'<span class="swatch" style="background:{STANDING_BACKGROUND[status] or "#ffffff"}">'
        f"{esc(marker)}{esc(meaning)}</span>"
        for status, (marker, meaning) in STANDING_TEXT.items()
    )
    head = ["municipality", "behind on", *(short(i) for i in INDICATORS)]
    return (
        f'<p class="legend">{swatches}</p>'
        '<p class="meta">Worst first: behind on the most targets, then furthest behind. '
        "Under each share, the number of visits it is a share of.</p>"
        + _table(head, rows, foot, css="municipalities", cards=True)
    )


def _maps(view: Standings) -> str:
    figures = []
    for indicator in mapped_indicators(view):
        targets = {view.targets[code].get(indicator) for code in view.order} - {None}
        shown = (
            f"target {format_target(indicator, next(iter(targets)))}"
            if len(targets) == 1
            else "targets per municipality"
        )
        figures.append(
            f'<figure data-map="{esc(indicator)}"><figcaption><b>{esc(title(indicator))}'
            f"</b>, {esc(shown)}</figcaption>{kosovo_map(view, indicator)}</figure>"
        )
    if not figures:
        return "<p>No indicator has a target to map.</p>"
    return f'<div class="maps">{"".join(figures)}</div>{legend()}'


# --- below the municipality ---------------------------------------------------------------------


def _missed(row: Row) -> str:
    visits, missed = int(row["visits"]), int(row["missed"])
    share = format_value("missed_visit_rate", missed / visits if visits else None)
    return esc(share) + _of(visits)


def _caseload_cells(row: Row) -> str:
    return (
        _td(esc(row["completed"]), "completed visits")
        + _td(esc(row["households"]), "households reached")
        + _td(_missed(row), "missed share")
    )


def _by_rank(view: Standings, rows: Sequence[Row], key: str) -> list[Row]:
    """Worst municipality first; inside one, the highest missed share first."""
    rank = {code: n for n, code in enumerate(view.order)}

    def missed(row: Row) -> float:
        return int(row["missed"]) / int(row["visits"]) if int(row["visits"]) else 0.0

    return sorted(rows, key=lambda r: (rank.get(str(r["municipality"]), len(rank)),
                                       -missed(r), str(r[key] or "")))  # fmt: skip


def _centre(facility: str | None) -> str:
    return facility if facility else "no centre recorded"


def _facilities(data: ReportData, view: Standings) -> str:
    if not data.facilities:
        return "<p>No visits in these days.</p>"
    head = ["municipality", "family medicine centre", "nurses", "completed visits",
            "households reached", "missed share"]  # fmt: skip
    rows = [
        f'<tr data-municipality="{esc(r["municipality"])}" '
        f'data-facility="{esc(r["facility_id"] or "")}"><th scope="row">'
        f"{esc(municipality_label(str(r['municipality'])))}</th>"
        f"{_td(esc(_centre(r['facility_id'])), head[1], css='')}"
        f"{_td(esc(r['nurses']), head[2])}{_caseload_cells(r)}</tr>"
        for r in _by_rank(view, data.facilities, "facility_id")
    ]
    return _table(head, rows, css="facilities", cards=True)


def _nurses(data: ReportData, view: Standings) -> str:
    if not data.nurses:
        return "<p>No visits in these days.</p>"
    head = ["municipality", "nurse", "centres", "completed visits", "households reached",
            "missed share"]  # fmt: skip
    rows = []
    for r in _by_rank(view, data.nurses, "nurse_id"):
        centres = ", ".join(_centre(f or None) for f in r["facilities"])
        rows.append(
            f'<tr data-municipality="{esc(r["municipality"])}" data-nurse="{esc(r["nurse_id"])}">'
            f'<th scope="row">{esc(municipality_label(str(r["municipality"])))}</th>'
            f"{_td(esc(r['nurse_id']), head[1], css='')}{_td(esc(centres), head[2], css='')}"
            f"{_caseload_cells(r)}</tr>"
        )
    return _table(head, rows, css="nurses", cards=True)


def _footer(data: ReportData) -> str:
    scaled = ""
    if data.period is not None:
        scaled = (
            "Targets are set on 30 days: a share's holds for any period, a count's and "
            "visits per nurse's are scaled to the period's days. Alerts belong to the "
            "rolling 30-day window and do not mark a calendar period's table. "
        )
    return (
        '<p class="meta">Rolling values are windows ending on the day shown: 30 days (the '
        f"window the targets are set on) and 7 days. {scaled}Targets come from "
        "config/targets.yaml (placeholders until the programme sets them); a ratio with "
        f"fewer than {esc(data.targets.min_denominator)} eligible visits raises no alert; an "
        f"alert on a ratio resolves {esc(f'{data.targets.hysteresis * 100:g}')} points past "
        "its target, one on a count back at it. Kosovo as a whole is not alerted on. "
        "Municipality names: Albanian / Serbian. Households reached: distinct households "
        "with a completed visit; missed share: visits not at home or refused, of all "
        "visits. This file loads nothing from the network.</p>"
    )


def render_report(data: ReportData) -> str:
    """The whole page, from plain data."""
    view = standings(data)
    span = data.span
    days = f", {span.name}" if span else ""
    drill = f" ({span.first} to {span.last})" if span else ""
    body = [
        _header(data),
        _summary(view) if span else "",
        _alerts_section(data, view),
        f"<h2>Municipalities against their targets{esc(days)}</h2>",
        _municipalities(data, view),
        f"<h2>Map: how far each municipality is from each target{esc(days)}</h2>",
        _maps(view),
        f"<h2>Kosovo-wide{esc(days)}</h2>",
        _kosovo_table(data, view),
        "<h2>Kosovo-wide trends</h2>",
        _trends(data),
        f"<h2>Family Medicine Centres{esc(drill)}</h2>",
        _facilities(data, view),
        f"<h2>Nurses' caseloads{esc(drill)}</h2>",
        _nurses(data, view),
        _footer(data),
    ]
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8" />'
        '<meta name="viewport" content="width=device-width, initial-scale=1" />'
        f"<title>{esc(report_title(data))}</title><style>{STYLE}</style></head>"
        f"<body>{''.join(body)}</body></html>\n"
    )
