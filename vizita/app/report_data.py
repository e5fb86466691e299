"""What the report shows, read from the store as plain values, and what follows from
them: every municipality's standing on every indicator and the order worst first.

The HTML page (`vizita.app.report`), its plain-text twin (`vizita.app.report_text`) and
the map (`vizita.app.report_map`) all read `ReportData` through `standings`, so they
never disagree on who is behind.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from sinks.caseload import facility_caseloads, nurse_caseloads, period_indicator_rows
from sinks.periods import Period, month, quarter
from sinks.queries import active_alerts, as_of_range, indicator_rows, indicator_series, store_totals
from sinks.store import Store
from vizita.contract.display import Mark, assess, worst_first
from vizita.contract.indicators import ALERT_WINDOW, INDICATORS, KINDS, Kind
from vizita.contract.municipalities import ALL_KOSOVO, MUNICIPALITIES
from vizita.contract.targets import Reading, Target, Targets

# The charts show at most this many of the last stored days: a store that has run for
# years still makes a file a mail client opens quickly.
TREND_MAX_DAYS = 366

Row = Mapping[str, Any]


@dataclass(frozen=True)
class ReportData:
    """Everything the report shows, as plain values (rows as the store returns them).

    Without `period` the tables show the rolling 30-day window ending on `last_day`
    (the stream's own rows, `latest`); with it, that calendar period's values computed
    from the visits (`period_rows`, sinks.periods)."""

    generated_at: datetime  # timezone-aware
    totals: Mapping[str, int]  # visits, voided, dead_letters (sinks.queries.store_totals)
    targets: Targets
    first_day: date | None = None  # first day with indicator values; None: none yet
    last_day: date | None = None
    series: Sequence[Row] = ()  # ALL's rows, both windows, chart days
    latest: Sequence[Row] = ()  # every scope's rows at last_day
    alerts: Sequence[Row] = ()  # the active_alerts view
    period: Period | None = None  # a calendar period (month, quarter; maybe to date)
    period_rows: Sequence[Row] = ()  # every scope's values over `period`
    facilities: Sequence[Row] = ()  # sinks.caseload.facility_caseloads over `span`
    nurses: Sequence[Row] = ()  # sinks.caseload.nurse_caseloads over `span`

    def __post_init__(self) -> None:
        if self.generated_at.tzinfo is None:
            raise ValueError("generated_at must be timezone-aware")

    @property
    def span(self) -> Period | None:
        """The days the tables cover: the calendar period, else the 30 days ending on
        the last day with values (None: no values and no period)."""
        return self.period or rolling_span(self.last_day)

    @property
    def chart_days(self) -> list[date]:
        if self.first_day is None or self.last_day is None:
            return []
        start, end = chart_start(self.first_day, self.last_day), self.last_day
        if self.period is not None:
            start, end = max(start, self.period.first), min(end, self.period.last)
        return [start + timedelta(days=i) for i in range((end - start).days + 1)]


def rolling_span(last_day: date | None) -> Period | None:
    if last_day is None:
        return None
    first = last_day - timedelta(days=ALERT_WINDOW - 1)
    return Period(f"{ALERT_WINDOW} days to {last_day}", first, last_day)


def chart_start(first: date, last: date) -> date:
    return max(first, last - timedelta(days=TREND_MAX_DAYS - 1))


def read_report_data(
    store: Store, targets: Targets, now: datetime, period: Period | None = None
) -> ReportData:
    """What `store` holds now, for the rolling window (no `period`) or a calendar one."""
    totals, alerts = store_totals(store), active_alerts(store)
    stored = as_of_range(store)
    first, last = stored if stored is not None else (None, None)
    span = period or rolling_span(last)
    return ReportData(
        now,
        totals,
        targets,
        first,
        last,
        series=_series(store, first, last, period),
        latest=indicator_rows(store, last) if last else [],
        alerts=alerts,
        period=period,
        period_rows=period_indicator_rows(store, period) if period else [],
        facilities=facility_caseloads(store, span) if span else [],
        nurses=nurse_caseloads(store, span) if span else [],
    )


def _series(store: Store, first: date | None, last: date | None, period: Period | None) -> Any:
    if first is None or last is None:
        return []
    since = chart_start(first, last)
    if period is not None:
        since = max(since, period.first)
    return indicator_series(store, ALL_KOSOVO, since)


# --- targets over a span -----------------------------------------------------------------------


def grows_with_days(indicator: str) -> bool:
    """Counts and visits per nurse grow with the days they cover; shares do not."""
    return KINDS.get(indicator) in (Kind.COUNT, Kind.RATIO)


def targets_over(targets: Mapping[str, Target], days: int) -> dict[str, Target]:
    """The targets over a span of `days`: targets are set on the 30-day window, so a
    share's holds as it is and a volume's (counts, visits per nurse) is scaled pro rata
    (a quarter of 92 days needs 92/30 of a 30-day count)."""
    scale = days / ALERT_WINDOW
    return {
        name: _scaled(target, scale) if grows_with_days(name) and scale != 1 else target
        for name, target in targets.items()
    }


def _scaled(target: Target, scale: float) -> Target:
    bound = target.bound * scale
    return Target(min=bound) if target.is_minimum else Target(max=bound)


# --- standings --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Standings:
    """Every scope's values over the report's span, the targets they are held to, each
    municipality's mark on each indicator and the municipalities worst first."""

    values: Mapping[tuple[str, str], Row]  # (scope, indicator) -> row
    targets: Mapping[str, Mapping[str, Target]]  # municipality -> indicator -> target
    marks: Mapping[str, Mapping[str, Mark]]  # municipality -> indicator -> mark
    order: Sequence[str]  # the 38 municipalities, worst first
    rank: Mapping[str, int] = field(default_factory=dict)  # municipality -> 1, 2, ...

    def value(self, scope: str, indicator: str) -> Row:
        return self.values.get((scope, indicator), {})

    def reading(self, scope: str, indicator: str) -> Reading:
        row = self.value(scope, indicator)
        return Reading(row.get("value"), row.get("denominator"))

    def target(self, scope: str, indicator: str) -> Target | None:
        return self.targets.get(scope, {}).get(indicator)


def span_values(data: ReportData) -> dict[tuple[str, str], Row]:
    """(scope, indicator) -> the row the tables show: the calendar period's, else the
    30-day window's at the last day."""
    if data.period is not None:
        rows: Sequence[Row] = data.period_rows
    else:
        rows = [r for r in data.latest if int(r["window_days"]) == ALERT_WINDOW]
    return {(str(r["municipality"]), str(r["indicator"])): r for r in rows}


def standings(data: ReportData) -> Standings:
    values = span_values(data)
    span = data.span
    days = (span.last - span.first).days + 1 if span else ALERT_WINDOW
    # Alerts are on the 30-day window ending now: they mark the rolling report only.
    alerted = set() if data.period else {(str(a["municipality"]), str(a["indicator"]))
                                          for a in data.alerts}  # fmt: skip
    targets = {code: targets_over(data.targets.for_municipality(code), days)
               for code in MUNICIPALITIES}  # fmt: skip
    marks: dict[str, dict[str, Mark]] = {}
    for code in MUNICIPALITIES:
        marks[code] = {}
        for indicator in INDICATORS:
            row = values.get((code, indicator), {})
            marks[code][indicator] = assess(
                indicator,
                targets[code].get(indicator),
                Reading(row.get("value"), row.get("denominator")),
                alerted=(code, indicator) in alerted,
                targets=data.targets,
            )
    order = worst_first({code: found.values() for code, found in marks.items()})
    rank = {code: position for position, code in enumerate(order, start=1)}
    return Standings(values, targets, marks, order, rank)


# --- calendar periods from the command line -----------------------------------------------------

_MONTH = re.compile(r"(\d{4})-(\d{2})")
_QUARTER = re.compile(r"(\d{4})Q([1-4])", re.IGNORECASE)


def month_named(text: str, today: date) -> Period:
    """'2025-10' -> October 2025, to `today` when it is the current month."""
    found = _MONTH.fullmatch(text.strip())
    if not found or not 1 <= int(found[2]) <= MONTHS_A_YEAR:
        raise ValueError(f"{text!r} is not a month: use YYYY-MM, e.g. 2025-10")
    _begun(month(int(found[1]), int(found[2])), today)
    return month(int(found[1]), int(found[2]), through=today)


def quarter_named(text: str, today: date) -> Period:
    """'2025Q4' -> October to December 2025, to `today` when it is the current quarter."""
    found = _QUARTER.fullmatch(text.strip())
    if not found:
        raise ValueError(f"{text!r} is not a quarter: use YYYYQn, e.g. 2025Q4")
    _begun(quarter(int(found[1]), int(found[2])), today)
    return quarter(int(found[1]), int(found[2]), through=today)


MONTHS_A_YEAR = 12


def _begun(period: Period, today: date) -> None:
    if period.first > today:
        raise ValueError(f"{period.name} has not begun (today is {today})")
