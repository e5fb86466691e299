"""The report as plain text: the mail's text part, for clients that show no HTML and
for people who read mail on a terminal. It says what the page's tables say first
(alerts, the municipalities behind, worst first, and Kosovo-wide values), with the same
standings, formats and order (vizita.app.report_data.standings)."""

from __future__ import annotations

from vizita.app.report_data import ReportData, Standings, standings
from vizita.contract.days import LOCAL_TZ
from vizita.contract.display import (
    BEHIND,
    STANDING_TEXT,
    Standing,
    format_distance,
    format_target,
    format_value,
    municipality_label,
    severity,
    title,
)
from vizita.contract.indicators import INDICATORS
from vizita.contract.municipalities import ALL_KOSOVO


def _reading(view: Standings, code: str, indicator: str) -> str:
    reading = view.reading(code, indicator)
    target = view.target(code, indicator) if code != ALL_KOSOVO else None
    text = format_value(indicator, reading.value, target)
    if reading.denominator is not None:
        text += f" (of {reading.denominator})"
    return text


def _municipality_lines(view: Standings) -> list[str]:
    lines = []
    for code in view.order:
        behind, _, _ = severity(view.marks[code].values())
        if not behind:
            continue
        lines.append(f"{view.rank[code]:>2}. {municipality_label(code)}: behind on {behind}")
        for indicator in INDICATORS:
            mark = view.marks[code][indicator]
            target = view.target(code, indicator)
            if mark.standing not in BEHIND or target is None:
                continue
            value = view.reading(code, indicator).value
            far = f", {format_distance(indicator, target, value)}" if value is not None else ""
            marker = STANDING_TEXT[mark.standing][0]
            lines.append(
                f"    {marker}{title(indicator)}: {_reading(view, code, indicator)}, "
                f"target {format_target(indicator, target)}{far}"
            )
    return lines or ["No municipality is behind a target."]


def _alert_lines(data: ReportData) -> list[str]:
    if not data.alerts:
        return ["No alert is raised."]
    lines = []
    for alert in data.alerts:
        code, indicator = str(alert["municipality"]), str(alert["indicator"])
        target = data.targets.for_municipality(code).get(indicator)
        value = format_value(indicator, alert["value"], target)
        if alert["denominator"] is not None:
            value += f" (of {alert['denominator']})"
        lines.append(
            f"- {municipality_label(code)}: {title(indicator)} {value} when raised, target "
            f"{format_target(indicator, target)}, behind since {alert['as_of']}"
        )
    return lines


def render_text(data: ReportData) -> str:
    view = standings(data)
    span = data.span
    local = data.generated_at.astimezone(LOCAL_TZ).strftime("%Y-%m-%d %H:%M %Z")
    lines = ["Vizita: home visiting programme report", ""]
    if span is None:
        lines.append("No indicator values in the store yet.")
    else:
        lines.append(f"{span.name}: the days {span.first} to {span.last}.")
    lines.append(f"Generated {local} ({LOCAL_TZ.key} time).")
    totals = data.totals
    lines += [
        f"Visits {totals.get('visits', 0)}, voided {totals.get('voided', 0)}, dead letters "
        f"{totals.get('dead_letters', 0)}, active alerts {len(data.alerts)}.",
        "",
        f"ACTIVE ALERTS ({len(data.alerts)}), 30-day window",
        *_alert_lines(data),
        "",
        "MUNICIPALITIES BEHIND A TARGET, WORST FIRST",
        *_municipality_lines(view),
        "",
        "KOSOVO-WIDE",
        *(f"- {title(i)}: {_reading(view, ALL_KOSOVO, i)}" for i in INDICATORS),
        "",
        f"Markers: {STANDING_TEXT[Standing.ALERTED][0]}alert raised, "
        f"{STANDING_TEXT[Standing.BEHIND][0]}behind the target. The HTML part has the maps, "
        "the charts, every municipality and the Family Medicine Centres' and nurses' "
        "caseloads.",
    ]
    return "\n".join(lines) + "\n"
