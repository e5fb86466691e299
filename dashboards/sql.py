"""The SQL of every panel and alert rule, with the columns each one returns.

Table names come from sinks/schema.py; tables whose engine replaces rows are read
`FINAL` (SPEC §5). `$__…` are the ClickHouse plugin's macros and
`${municipality:sqlstring}` the dashboard variable, quoted by Grafana (see
tests/grafana_macros.py, which the integration tests use to run all of this).

Grafana reads through a `readonly = 1` user (config/clickhouse/users.d/vizita.xml):
no query may carry a `SETTINGS` clause. Days are the programme's (SPEC §2): a day
becomes a time at its midnight in Kosovo, and a dashboard range selects the Kosovo days
it touches. The plugin's `$__dateFilter` is not used: it compares with the days of the
plugin process's time zone (UTC in the Grafana image).
"""

from __future__ import annotations

from collections.abc import Sequence

from dashboards.query import Sql
from sinks.periods import FLAGS, calendar_period, calendar_periods, period_values_between
from sinks.schema import (
    ACTIVE_ALERTS,
    CONSUMER_LAG,
    DEAD_LETTERS,
    INDICATOR_VALUES,
    VISITS,
)
from sinks.sql import literal
from vizita.contract.days import LOCAL_TZ
from vizita.contract.display import (
    KOSOVO_LABEL,
    NO_FACILITY,
    STANDING_TEXT,
    Standing,
    by_label,
    municipality_label,
)
from vizita.contract.indicators import ALERT_WINDOW, COUNT_INDICATORS, KINDS, WINDOWS, Kind
from vizita.contract.municipalities import ALL_KOSOVO, MUNICIPALITIES
from vizita.contract.targets import ROUNDING, Target, Targets

MUNICIPALITY = "${municipality:sqlstring}"
PERIOD = "${period:sqlstring}"
_ZONE = literal(LOCAL_TZ.key)


def local_days(column: str) -> str:
    """`column` (a programme day) within the Kosovo days of the dashboard's range."""
    return f"{column} BETWEEN toDate($__fromTime, {_ZONE}) AND toDate($__toTime, {_ZONE})"


def day_time(column: str) -> str:
    """A programme day as the instant a time axis shows: its midnight in Kosovo."""
    return f"toDateTime({column}, {_ZONE})"


# Visits of the chosen municipality, or of all of Kosovo.
_IN_SCOPE = f"({MUNICIPALITY} = {literal(ALL_KOSOVO)} OR municipality = {MUNICIPALITY})"
_LIVE_VISITS = f"NOT is_void AND {_IN_SCOPE} AND {local_days('local_day')}"


def _names(column: str, fallback: str) -> str:
    """The municipality label of a code column, computed in ClickHouse."""
    codes = sorted(MUNICIPALITIES)
    labels = [municipality_label(code) for code in codes]
    return f"transform({column}, {literal(codes)}, {literal(labels)}, {fallback})"


def window_column(window: int) -> str:
    return f"{window}-day"


# --- programme overview ---------------------------------------------------------------------


def overview_table(db: str, indicators: Sequence[str]) -> Sql:
    """Every municipality (and all of Kosovo): 30-day values at the latest day in range."""
    pivot = ", ".join(f"maxIf(value, indicator = {literal(i)}) AS {i}" for i in indicators)
    latest = f"SELECT max(as_of) FROM {db}.{INDICATOR_VALUES} FINAL WHERE {local_days('as_of')}"
    text = f"""SELECT {_names("v.municipality", literal(KOSOVO_LABEL))} AS municipality,
  {", ".join(f"v.{i} AS {i}" for i in indicators)},
  a.alerts AS active_alerts, a.behind_on AS behind_on
FROM (
  SELECT municipality, {pivot}
  FROM {db}.{INDICATOR_VALUES} FINAL
  WHERE window_days = {ALERT_WINDOW} AND as_of = ({latest})
  GROUP BY municipality
) AS v
LEFT JOIN (
  SELECT municipality, count() AS alerts,
    arrayStringConcat(arraySort(groupArray(toString(indicator))), ', ') AS behind_on
  FROM {db}.{ACTIVE_ALERTS} WHERE window_days = {ALERT_WINDOW}
  GROUP BY municipality
) AS a ON a.municipality = v.municipality
ORDER BY v.municipality = {literal(ALL_KOSOVO)} DESC, v.municipality"""
    return Sql(text, ("municipality", *indicators, "active_alerts", "behind_on"))


def target_expression(targets: Targets, indicator: str, scope: str) -> str | None:
    """The target of `indicator` for the municipality `scope` evaluates to (SQL), or
    None when no municipality has one."""
    defaults = {str(name): target for name, target in targets.defaults.items()}
    default = defaults.get(indicator)
    branches = []
    for code in sorted(MUNICIPALITIES):
        own = targets.for_municipality(code).get(indicator)
        if own is not None and own != default:
            branches.append(f"{scope} = {literal(code)}, {literal(float(own.bound))}")
    fallback = "NULL" if default is None else literal(float(default.bound))
    if not branches:
        return None if default is None else fallback
    return f"multiIf({', '.join([*branches, fallback])})"


def indicator_series(db: str, indicator: str, scope: str, target: str | None = None) -> Sql:
    """One indicator of one scope over time, both windows (and its target)."""
    windows = [f"maxIf(value, window_days = {w}) AS `{window_column(w)}`" for w in WINDOWS]
    target_column = [f"{target} AS target"] if target is not None else []
    text = f"""SELECT {day_time("as_of")} AS time, {", ".join([*windows, *target_column])}
FROM {db}.{INDICATOR_VALUES} FINAL
WHERE municipality = {scope} AND indicator = {literal(indicator)} AND {local_days("as_of")}
GROUP BY as_of
ORDER BY as_of"""
    columns = ("time", *(window_column(w) for w in WINDOWS), *(["target"] if target else []))
    return Sql(text, columns)


def active_alerts(db: str) -> Sql:
    text = f"""SELECT {_names("municipality", "municipality")} AS name, indicator, value, target,
  denominator, as_of, emitted_at
FROM {db}.{ACTIVE_ALERTS}
WHERE window_days = {ALERT_WINDOW}
ORDER BY name, indicator"""
    return Sql(text, ("name", "indicator", "value", "target", "denominator", "as_of",
                      "emitted_at"))  # fmt: skip


def freshness(db: str) -> Sql:
    """Seconds since the last visit was stored and submitted; days the indicators lag."""
    visits = f"{db}.{VISITS} FINAL"
    today = f"toDate(now(), {literal(LOCAL_TZ.key)})"
    text = f"""SELECT
  (SELECT dateDiff('second', max(stored_at), now64(3)) FROM {visits}) AS since_last_stored,
  (SELECT dateDiff('second', max(submitted_at), now64(3)) FROM {visits}) AS since_last_submitted,
  (SELECT dateDiff('day', max(as_of), {today}) FROM {db}.{INDICATOR_VALUES} FINAL)
    AS days_behind_today"""
    return Sql(text, ("since_last_stored", "since_last_submitted", "days_behind_today"))


# --- calendar months and quarters -------------------------------------------------------------

RECENT_MONTHS = 24  # how far back the period picker goes


def clock_day(db: str) -> str:
    """The day indicators are produced up to (SPEC §2), where a current month or quarter
    is cut (to date); today in Kosovo before the first indicator is stored."""
    return (f"ifNull((SELECT maxOrNull(as_of) FROM {db}.{INDICATOR_VALUES} FINAL), "
            f"toDate(now(), {_ZONE}))")  # fmt: skip


def _first_day(db: str) -> str:
    """The earliest day indicators cover (SPEC §3: the earliest upsert's)."""
    return f"ifNull((SELECT minOrNull(as_of) FROM {db}.{INDICATOR_VALUES} FINAL), {clock_day(db)})"


def period_options(db: str) -> Sql:
    """The period picker's options: value (`2026-03`, `2026Q1`) and label, the latest
    month first (the default), back RECENT_MONTHS months from the clock day."""
    listing = calendar_periods(_first_day(db), clock_day(db), RECENT_MONTHS)
    months = ("if(is_quarter, concat(monthName(first_day), ' to ', "
              "monthName(addMonths(first_day, 2))), monthName(first_day))")  # fmt: skip
    label = (f"concat(period, ' · ', {months}, ' ', toString(toYear(first_day)), "
             "if(to_date, ' (to date)', ''))")  # fmt: skip
    text = f"""SELECT period, {label} AS label
FROM ({listing})
ORDER BY last_day DESC, is_quarter, period"""
    return Sql(text, ("period", "label"))


def _period_values(db: str) -> str:
    """Every indicator of every scope in the picked period (sinks/periods.py)."""
    return period_values_between(db, calendar_period(PERIOD, clock_day(db)))


def period_table(db: str, indicators: Sequence[str]) -> Sql:
    """Every municipality and all of Kosovo: each indicator over the picked period."""
    pivot = ", ".join(f"maxIf(value, indicator = {literal(i)}) AS {i}" for i in indicators)
    text = f"""SELECT {_names("v.municipality", literal(KOSOVO_LABEL))} AS municipality,
  {", ".join(f"v.{i} AS {i}" for i in indicators)}
FROM (
  SELECT municipality, {pivot}
  FROM ({_period_values(db)})
  GROUP BY municipality
) AS v
ORDER BY v.municipality = {literal(ALL_KOSOVO)} DESC, v.municipality"""
    return Sql(text, ("municipality", *indicators))


def period_indicator(db: str, indicator: str, scope: str) -> Sql:
    """One indicator of one scope over the picked period: its value and, for a ratio,
    what it is a ratio of."""
    parts = ("value",) if indicator in COUNT_INDICATORS else ("value", "numerator", "denominator")
    text = f"""SELECT {", ".join(parts)}
FROM ({_period_values(db)})
WHERE municipality = {scope} AND indicator = {literal(indicator)}"""
    return Sql(text, parts)


# --- the map ---------------------------------------------------------------------------------


def _place(code: str, target: Target | None) -> str:
    place = MUNICIPALITIES[code]
    bound = None if target is None else float(target.bound)
    minimum = None if target is None else target.is_minimum
    values = (code, municipality_label(code), place.latitude, place.longitude, bound, minimum)
    return "(" + ", ".join(literal(v) for v in values) + ")"


def _places(targets: Targets, indicator: str) -> str:
    """Every municipality with its seat and its target of `indicator` (NULL: none)."""
    rows = ",\n    ".join(
        _place(code, targets.for_municipality(code).get(indicator))
        for code in by_label(list(MUNICIPALITIES))
    )
    return f"""SELECT p.1 AS code, p.2 AS name, p.3 AS latitude, p.4 AS longitude,
    p.5 AS target, p.6 AS minimum
  FROM (SELECT arrayJoin([
    {rows}
  ]) AS p)"""


def _from_target(indicator: str) -> str:
    """How far a value is on the right (+) or wrong (-) side of its target: shares in
    percentage points, counts and ratios as a share of the target."""
    ahead = "if(minimum, value - target, target - value)"
    if KINDS[indicator] is Kind.SHARE:
        return f"{ahead} * 100"
    return f"{ahead} / nullIf(target, 0)"


def _standing(targets: Targets, indicator: str) -> str:
    """vizita.contract.display.standing, in SQL: behind is SPEC §4's rule."""
    wrong_side = (f"if(minimum, value < target - {literal(ROUNDING)}, "
                  f"value > target + {literal(ROUNDING)})")  # fmt: skip
    decides = ("true" if indicator in COUNT_INDICATORS
               else f"ifNull(denominator, 0) >= {targets.min_denominator}")  # fmt: skip
    return f"""multiIf(alerted, {literal(Standing.ALERTED.value)},
    value IS NULL, {literal(Standing.NO_DATA.value)},
    target IS NULL, {literal(Standing.NO_TARGET.value)},
    {wrong_side} AND {decides}, {literal(Standing.BEHIND.value)},
    {wrong_side}, {literal(Standing.TOO_FEW.value)},
    {literal(Standing.ON_TARGET.value)})"""


def _standing_text(column: str, part: int) -> str:
    """The marker (part 0) or the meaning (part 1) of a standing, from the contract."""
    keys = [standing.value for standing in STANDING_TEXT]
    texts = [text[part].strip() for text in STANDING_TEXT.values()]
    return f"transform({column}, {literal(keys)}, {literal(texts)}, '')"


def map_values(db: str, targets: Targets, indicator: str) -> Sql:
    """Every municipality at its seat: its 30-day value of `indicator` at the latest day
    in range, its target, how far it is from it, and how it stands (alerts included)."""
    ratio = indicator not in COUNT_INDICATORS
    latest = f"SELECT max(as_of) FROM {db}.{INDICATOR_VALUES} FINAL WHERE {local_days('as_of')}"
    counts = ["numerator", "denominator"] if ratio else []
    text = f"""SELECT name AS municipality, latitude, longitude, value,
  {"".join(f"{c}, " for c in counts)}target, {_from_target(indicator)} AS from_target,
  {_standing_text("judged", 0)} AS marker, {_standing_text("judged", 1)} AS standing
FROM (
  SELECT places.name AS name, places.latitude AS latitude, places.longitude AS longitude,
    places.target AS target, places.minimum AS minimum, v.value AS value,
    v.numerator AS numerator, v.denominator AS denominator, a.raised = 1 AS alerted,
    {_standing(targets, indicator)} AS judged
  FROM ({_places(targets, indicator)}) AS places
  LEFT JOIN (
    SELECT municipality, value, toNullable(numerator) AS numerator, denominator
    FROM {db}.{INDICATOR_VALUES} FINAL
    WHERE indicator = {literal(indicator)} AND window_days = {ALERT_WINDOW}
      AND as_of = ({latest})
  ) AS v ON v.municipality = places.code
  LEFT JOIN (
    SELECT municipality, 1 AS raised FROM {db}.{ACTIVE_ALERTS}
    WHERE indicator = {literal(indicator)} AND window_days = {ALERT_WINDOW}
  ) AS a ON a.municipality = places.code
)"""
    columns = ("municipality", "latitude", "longitude", "value", *counts, "target",
               "from_target", "marker", "standing")  # fmt: skip
    return Sql(text, columns)


# --- municipality --------------------------------------------------------------------------


def _caseload_visits(db: str) -> str:
    """The scope's effective visits in range, flagged as SPEC §3 counts them."""
    return f"""SELECT facility_id, nurse_id, household_id,
    {FLAGS["completed"]} AS completed, {FLAGS["missed"]} AS missed
  FROM {db}.{VISITS} FINAL
  WHERE {_LIVE_VISITS}"""


_CASELOAD = """uniqExactIf(household_id, completed) AS households,
  countIf(completed) AS completed_visits, count() AS visits,
  countIf(missed) / visits AS missed_share"""
CASELOAD_COLUMNS = ("households", "completed_visits", "visits", "missed_share")


def _facility(column: str) -> str:
    return f"ifNull({column}, {literal(NO_FACILITY)})"


def facility_caseload(db: str) -> Sql:
    """Per Family Medicine Centre: its nurses, households, visits and missed share."""
    text = f"""SELECT {_facility("facility_id")} AS facility, uniqExact(nurse_id) AS nurses,
  {_CASELOAD}
FROM ({_caseload_visits(db)})
GROUP BY facility
ORDER BY households DESC, facility"""
    return Sql(text, ("facility", "nurses", *CASELOAD_COLUMNS))


def nurse_caseload(db: str) -> Sql:
    """Per nurse (pseudonymous ids): the centres they visited from and their caseload."""
    centres = f"arrayStringConcat(arraySort(groupUniqArray({_facility('facility_id')})), ', ')"
    text = f"""SELECT nurse_id, {centres} AS facilities,
  {_CASELOAD}
FROM ({_caseload_visits(db)})
GROUP BY nurse_id
ORDER BY households DESC, nurse_id"""
    return Sql(text, ("nurse_id", "facilities", *CASELOAD_COLUMNS))


def at_risk_referrals(db: str) -> Sql:
    """Completed visits of children at risk, per risk flag, and how many were referred."""
    text = f"""SELECT flag AS risk_flag, count() AS completed_visits,
  countIf(notEmpty(referrals)) AS referred, referred / completed_visits AS referred_share
FROM {db}.{VISITS} FINAL ARRAY JOIN risk_flags AS flag
WHERE {_LIVE_VISITS} AND outcome = 'completed'
GROUP BY flag
ORDER BY flag"""
    return Sql(text, ("risk_flag", "completed_visits", "referred", "referred_share"))


def _delay_hours(db: str) -> str:
    return (
        f"SELECT dateDiff('second', occurred_at, submitted_at) / 3600 AS hours "
        f"FROM {db}.{VISITS} FINAL WHERE {_LIVE_VISITS} AND occurred_at IS NOT NULL"
    )


def submission_delays(db: str) -> Sql:
    """How late submissions arrive (the winning revision's submitted_at - occurred_at)."""
    buckets = ("multiIf(hours < 1, '< 1 hour', hours < 24, '1-24 hours', hours < 72, "
               "'1-3 days', hours < 168, '3-7 days', '7 days or more')")  # fmt: skip
    text = f"""SELECT {buckets} AS delay, count() AS visits
FROM ({_delay_hours(db)})
GROUP BY delay
ORDER BY min(hours)"""
    return Sql(text, ("delay", "visits"))


def submission_delay_quantiles(db: str) -> Sql:
    text = f"""SELECT quantile(0.5)(hours) AS median_hours, quantile(0.9)(hours) AS p90_hours
FROM ({_delay_hours(db)})"""
    return Sql(text, ("median_hours", "p90_hours"))


# --- pipeline health ---------------------------------------------------------------------------


def visits_in(db: str, column: str, name: str) -> Sql:
    """Visit rows per interval by `column` (stored_at: arriving in the store)."""
    text = f"""SELECT $__timeInterval({column}) AS time, count() AS {name}
FROM {db}.{VISITS} FINAL
WHERE $__timeFilter({column})
GROUP BY time
ORDER BY time"""
    return Sql(text, ("time", name))


def dead_letters_over_time(db: str) -> Sql:
    text = f"""SELECT $__timeInterval(received_at) AS time, reason, count() AS dead_letters
FROM {db}.{DEAD_LETTERS} FINAL
WHERE $__timeFilter(received_at)
GROUP BY time, reason
ORDER BY time, reason"""
    return Sql(text, ("time", "reason", "dead_letters"))


def dead_letters_by_reason(db: str) -> Sql:
    text = f"""SELECT reason, count() AS dead_letters, max(received_at) AS last_received
FROM {db}.{DEAD_LETTERS} FINAL
WHERE $__timeFilter(received_at)
GROUP BY reason
ORDER BY dead_letters DESC, reason"""
    return Sql(text, ("reason", "dead_letters", "last_received"))


def consumer_lag(db: str) -> Sql:
    """Messages each consumer group has yet to commit, summed over partitions."""
    text = f"""SELECT $__timeInterval(measured_at) AS time,
  concat(consumer_group, ' / ', topic) AS consumer, max(total) AS lag
FROM (
  SELECT measured_at, consumer_group, topic, sum(lag) AS total
  FROM {db}.{CONSUMER_LAG}
  WHERE $__timeFilter(measured_at)
  GROUP BY measured_at, consumer_group, topic
)
GROUP BY time, consumer
ORDER BY time, consumer"""
    return Sql(text, ("time", "consumer", "lag"))


def since_last_visit(db: str) -> Sql:
    """Every municipality, including one never heard from (empty times, listed first).
    The joined times are Nullable so that a municipality with no row gets NULL, the
    default of a Nullable column, rather than 1970 (no join_use_nulls: read-only)."""
    codes = literal(sorted(MUNICIPALITIES))
    text = f"""SELECT {_names("known.code", "known.code")} AS name,
  seen.last_submitted AS last_submitted, seen.last_stored AS last_stored,
  dateDiff('second', seen.last_stored, now64(3)) AS since_last_stored
FROM (SELECT arrayJoin({codes}) AS code) AS known
LEFT JOIN (
  SELECT municipality, toNullable(max(submitted_at)) AS last_submitted,
    toNullable(max(stored_at)) AS last_stored
  FROM {db}.{VISITS} FINAL
  GROUP BY municipality
) AS seen ON seen.municipality = known.code
ORDER BY since_last_stored DESC NULLS FIRST, name"""
    return Sql(text, ("name", "last_submitted", "last_stored", "since_last_stored"))


# --- alert rules ---------------------------------------------------------------------------------


def behind_target(db: str) -> Sql:
    """One row per municipality and indicator currently behind (SPEC §4); its string
    columns become the alert's labels."""
    text = f"""SELECT municipality, indicator, toFloat64(1) AS behind
FROM {db}.{ACTIVE_ALERTS}
WHERE window_days = {ALERT_WINDOW}"""
    return Sql(text, ("municipality", "indicator", "behind"))


def seconds_since_last_visit(db: str) -> Sql:
    """An empty table gives 1970, so a store that never received a visit alerts too."""
    text = f"""SELECT toFloat64(dateDiff('second', max(stored_at), now64(3)))
  AS seconds_since_last_visit
FROM {db}.{VISITS} FINAL"""
    return Sql(text, ("seconds_since_last_visit",))


def latest_consumer_lag(db: str) -> Sql:
    """The last measured lag of each consumer group and topic in the rule's range."""
    text = f"""SELECT consumer_group, topic, toFloat64(sum(latest)) AS lag
FROM (
  SELECT consumer_group, topic, partition, argMax(lag, measured_at) AS latest
  FROM {db}.{CONSUMER_LAG}
  WHERE $__timeFilter(measured_at)
  GROUP BY consumer_group, topic, partition
)
GROUP BY consumer_group, topic"""
    return Sql(text, ("consumer_group", "topic", "lag"))
