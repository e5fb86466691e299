"""Every panel query of every dashboard, and every alert rule query, run against a store
filled through the real pipeline (broker, Faust stage, sink, chdb) from a messy
simulated stream: macros and variables expanded as Grafana and the ClickHouse plugin
do (tests/grafana_macros.py), run as Grafana's read-only ClickHouse user
(tests/grafana_session.py), no error, rows, and the columns the panel reads. Days are
the programme's: day-valued series at local midnight, day filters on local days. The
calendar panels equal sinks/periods.py over the same days, the maps place and judge
every municipality as the contract does, and the caseloads add up to the stored visits."""

from __future__ import annotations

import math
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import pytest
import yaml
from grafana_macros import QueryContext, expand, expand_rule
from grafana_session import GrafanaSession

from dashboards.build import Built, alerting_text, build_all
from dashboards.config import METRICS_UID, BuildConfig
from dashboards.maps import mapped_indicators
from dashboards.municipality import PER_FACILITY_PANEL, PER_NURSE_PANEL
from dashboards.overview import PERIOD_PANEL
from dashboards.query import PLUGIN_TYPE, Format
from dashboards.sql import since_last_visit, window_column
from dashboards.units import indicator_display
from producers.simulator import SimulationConfig, simulate, write_jsonl
from sinks.lag import record_consumer_lag
from sinks.migrations import migrate
from sinks.periods import Period, calendar_period, month, period_values, quarter
from sinks.schema import ACTIVE_ALERTS, INDICATOR_VALUES, VISITS
from sinks.sql import literal
from sinks.store import Store, open_store
from vizita.app.broker import LocalBroker
from vizita.app.replay import replay
from vizita.contract.days import LOCAL_TZ
from vizita.contract.display import (
    KOSOVO_LABEL,
    NO_FACILITY,
    STANDING_TEXT,
    municipality_label,
    standing,
)
from vizita.contract.indicators import ALERT_WINDOW, COUNT_INDICATORS, INDICATORS, WINDOWS
from vizita.contract.municipalities import ALL_KOSOVO, MUNICIPALITIES
from vizita.contract.settings import Settings
from vizita.contract.targets import Reading

START = date(2026, 3, 2)
STREAM = SimulationConfig(
    seed=41, start=START, days=20, visits_per_day=60, late_share=0.3,
    duplicate_share=0.05, correction_share=0.1, void_share=0.03, invalid_share=0.04,
)  # fmt: skip


@pytest.fixture(scope="module")
def filled(
    kafka: LocalBroker, chdb_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Settings, Store]]:
    """One store for the module, filled once by `vizita replay`'s code path."""
    name = f"dash_{uuid.uuid4().hex[:10]}"
    work = tmp_path_factory.mktemp("dashboards")
    settings = Settings(
        kafka_bootstrap=kafka.bootstrap, topic_prefix=f"{name}.", app_id=name, database=name,
        store_url=chdb_url, data_dir=work / "data", sink_batch_seconds=0.2, log_format="console",
    )  # fmt: skip
    path = work / "stream.jsonl"
    write_jsonl(simulate(STREAM), path)
    store = open_store(chdb_url, name)
    migrate(store)
    replay(settings, store, path)
    assert record_consumer_lag(settings, store) > 0
    yield settings, store
    store.execute(f"DROP DATABASE IF EXISTS {name}")
    store.close()


@pytest.fixture(scope="module")
def built(filled: tuple[Settings, Store]) -> Built:
    return build_all(BuildConfig.from_settings(filled[0]))


@pytest.fixture(scope="module")
def grafana(filled: tuple[Settings, Store]) -> Iterator[GrafanaSession]:
    """The store as Grafana's data source sees it: read-only, its profile's settings."""
    reader = GrafanaSession(filled[0].store_url.get_secret_value())
    yield reader
    reader.close()


def _request(municipality: str, period: str = "") -> QueryContext:
    """A dashboard request whose range covers the visits (March) and the sink's clock
    times (now), with day-long intervals."""
    since = datetime.combine(START - timedelta(days=2), time(), tzinfo=UTC)
    return QueryContext(since, datetime.now(UTC) + timedelta(hours=1), timedelta(days=1),
                        {"municipality": municipality, "period": period})  # fmt: skip


def _targets(built: Built) -> list[tuple[str, dict[str, Any], dict[str, Any]]]:
    """Every target of the ClickHouse dashboards (the metrics board is Prometheus's:
    tests/unit/dashboards check that its PromQL names metrics the processes show)."""
    found = []
    for uid, document in built.dashboards.items():
        if uid == METRICS_UID:
            continue
        for panel in document["panels"]:
            found += [(uid, panel, target) for target in panel.get("targets", [])]
    return found


def _variable_queries(built: Built) -> list[tuple[str, dict[str, Any]]]:
    """Every query variable of every dashboard (its options come from the store)."""
    return [(uid, variable) for uid, document in built.dashboards.items()
            for variable in document["templating"].get("list", [])
            if variable["type"] == "query"]  # fmt: skip


@pytest.fixture(scope="module")
def periods(grafana: GrafanaSession, built: Built) -> list[dict[str, Any]]:
    """The period picker's options, as Grafana lists them when a dashboard loads."""
    (_, variable), *others = _variable_queries(built)
    assert all(other["query"] == variable["query"] for _, other in others)  # one picker
    sent = expand(variable["query"]["rawSql"], _request("ALL"))
    return grafana.query(sent).rows


@pytest.fixture(scope="module")
def clock(filled: tuple[Settings, Store]) -> date:
    _, store = filled
    (row,) = store.query(f"SELECT max(as_of) AS day FROM {store.table(INDICATOR_VALUES)} FINAL")
    day: date = row["day"]
    return day


def _check(grafana: GrafanaSession, built: Built, raw: str, sent: str, where: str) -> None:
    """The query `raw` as sent (`sent`, after Grafana and the plugin) runs, answers rows,
    and answers exactly the columns its reader expects."""
    expected = built.columns.get(raw)
    assert expected is not None, f"{where}: no expected columns defined for its query"
    answer = grafana.query(sent)
    assert answer.rows, f"{where}: no rows\n{sent}"
    assert answer.columns == expected, where


@pytest.mark.parametrize("municipality", ["prishtine", "ALL"])
def test_every_panel_query_runs_and_returns_its_columns(
    grafana: GrafanaSession, built: Built, periods: list[dict[str, Any]], municipality: str
) -> None:
    targets = _targets(built)
    assert len(targets) >= 30  # the three dashboards, not an empty build
    assert len(periods) >= 2  # a month and its quarter at least
    for option in periods:
        for uid, panel, target in targets:
            where = (f"{uid} panel {panel['id']} ({panel['title']}) target {target['refId']}, "
                     f"period {option['period']}")  # fmt: skip
            assert target["datasource"]["type"] == PLUGIN_TYPE, where
            sent = expand(target["rawSql"], _request(municipality, option["period"]))
            _check(grafana, built, target["rawSql"], sent, where)


def test_every_variable_query_runs_and_returns_its_columns(
    grafana: GrafanaSession, built: Built
) -> None:
    variables = _variable_queries(built)
    assert {uid for uid, _ in variables} == {"vizita-overview", "vizita-municipality"}
    for uid, variable in variables:
        assert variable["datasource"]["type"] == PLUGIN_TYPE, uid
        raw = variable["query"]["rawSql"]
        _check(grafana, built, raw, expand(raw, _request("ALL")), f"{uid} ${variable['name']}")


def _rule_queries(document: dict[str, Any], datasource_uid: str) -> Iterator[tuple[str, Any]]:
    for group in document["groups"]:
        for rule in group["rules"]:
            for query in rule["data"]:
                if query["datasourceUid"] == datasource_uid:
                    yield rule["uid"], query


def test_every_alert_rule_query_runs_and_returns_its_columns(
    filled: tuple[Settings, Store], grafana: GrafanaSession, built: Built
) -> None:
    settings, store = filled
    record_consumer_lag(settings, store)  # a measurement inside the rule's 10 minutes
    document = yaml.safe_load(alerting_text(built.alerting))  # what Grafana will read
    queries = list(_rule_queries(document, settings.grafana_datasource_uid))
    assert len(queries) == 3  # the others are on Prometheus
    assert len(document["groups"][0]["rules"]) == 3 + 2
    now = datetime.now(UTC)
    for uid, query in queries:
        window = query["relativeTimeRange"]
        context = QueryContext(now - timedelta(seconds=window["from"]),
                               now - timedelta(seconds=window["to"]))  # fmt: skip
        raw = query["model"]["rawSql"]
        _check(grafana, built, raw, expand_rule(raw, context), f"rule {uid}")


def test_grafanas_session_is_read_only_with_its_profile(grafana: GrafanaSession) -> None:
    settings = grafana.query("SELECT getSetting('readonly') AS r, "
                             "getSetting('max_execution_time') AS t").rows[0]  # fmt: skip
    assert settings == {"r": 1, "t": 60}  # config/clickhouse/users.d/vizita.xml
    for refused in ("SELECT 1 SETTINGS join_use_nulls = 1", "CREATE DATABASE not_allowed"):
        with pytest.raises(RuntimeError, match="readonly"):
            grafana.query(refused)


def _panel(built: Built, uid: str, title: str) -> dict[str, Any]:
    return next(p for p in built.dashboards[uid]["panels"] if p["title"] == title)


def test_the_overview_table_has_every_municipality_and_kosovo(
    grafana: GrafanaSession, built: Built
) -> None:
    table = _panel(built, "vizita-overview", "30-day values at the latest day in range")
    rows = grafana.query(expand(table["targets"][0]["rawSql"], _request("ALL"))).rows
    assert len(rows) == 39
    assert rows[0]["municipality"] == "Kosova / Kosovo (all)"
    pristina = next(r for r in rows if r["municipality"].startswith("Prishtinë"))
    # Fewer than 400 completed visits in 30 days: behind its own volume target.
    assert "visits_completed" in pristina["behind_on"].split(", ")
    assert pristina["active_alerts"] >= 1


def _day_series(built: Built) -> list[tuple[str, dict[str, Any]]]:
    """Every indicator series target (both windows, one point a day)."""
    windows = {window_column(w) for w in WINDOWS}
    return [(f"{uid} {panel['title']}", target) for uid, panel, target in _targets(built)
            if target["format"] == Format.TIME_SERIES
            and windows <= set(built.columns[target["rawSql"]])]  # fmt: skip


@pytest.mark.parametrize("municipality", ["prishtine", "ALL"])
def test_daily_points_are_drawn_at_the_programmes_midnight(
    filled: tuple[Settings, Store], grafana: GrafanaSession, built: Built, municipality: str
) -> None:
    _, store = filled
    (clock,) = store.query(f"SELECT max(as_of) AS day FROM {store.table(INDICATOR_VALUES)}")
    series = _day_series(built)
    assert len(series) == 2 * len(INDICATORS)  # on the overview and the municipality board
    for where, target in series:
        rows = grafana.query(expand(target["rawSql"], _request(municipality))).rows
        local = [row["time"].astimezone(LOCAL_TZ) for row in rows]
        assert local, where
        assert all((t.hour, t.minute, t.second) == (0, 0, 0) for t in local), (where, local[0])
        assert max(local).date() == clock["day"], where  # the day itself, not a neighbour


def _one_local_day(day: date, municipality: str = "ALL") -> QueryContext:
    """A dashboard range that is exactly `day` in Kosovo: 23:00 UTC the day before on."""
    start = datetime.combine(day, time(), tzinfo=LOCAL_TZ)
    end = start + timedelta(days=1) - timedelta(seconds=1)
    return QueryContext(start.astimezone(UTC), end.astimezone(UTC), timedelta(days=1),
                        {"municipality": municipality})  # fmt: skip


def test_a_day_filter_selects_the_programmes_days(
    filled: tuple[Settings, Store], grafana: GrafanaSession, built: Built
) -> None:
    _, store = filled
    day = START + timedelta(days=10)
    trend = _panel(built, "vizita-overview", indicator_display("visits_completed").title)
    rows = grafana.query(expand(trend["targets"][0]["rawSql"], _one_local_day(day))).rows
    assert [row["time"].astimezone(LOCAL_TZ).date() for row in rows] == [day]
    (stored,) = store.query(f"SELECT count() AS n FROM {store.table(VISITS)} FINAL "
                            f"WHERE NOT is_void AND local_day = '{day}'")  # fmt: skip
    for title in (PER_NURSE_PANEL, PER_FACILITY_PANEL):
        caseload = _panel(built, "vizita-municipality", title)
        rows = grafana.query(expand(caseload["targets"][0]["rawSql"], _one_local_day(day))).rows
        assert sum(row["visits"] for row in rows) == stored["n"] > 0, title


def test_a_municipality_never_heard_from_has_empty_times(
    settings: Settings, store: Store, grafana: GrafanaSession
) -> None:
    # `store` is a database of its own with no visit at all.
    silence = since_last_visit(store.database)
    answer = grafana.query(expand(silence.text, _request("ALL")))
    assert len(answer.rows) == len(MUNICIPALITIES)
    assert all(row["last_stored"] is None and row["since_last_stored"] is None
               for row in answer.rows)  # fmt: skip


# --- calendar months and quarters --------------------------------------------------------------


def _named(name: str, through: date) -> Period:
    """The Python period of a picker value (`2026-03`, `2026Q1`), to date at `through`."""
    year, rest = int(name[:4]), name[4:]
    if rest.startswith("Q"):
        return quarter(year, int(rest[1:]), through)
    return month(year, int(rest[1:]), through)


def test_the_period_picker_lists_months_and_quarters_newest_first(
    filled: tuple[Settings, Store], periods: list[dict[str, Any]], clock: date
) -> None:
    _, store = filled
    (first,) = store.query(f"SELECT min(as_of) AS day FROM {store.table(INDICATOR_VALUES)} FINAL")
    values = [option["period"] for option in periods]
    assert values[:2] == [f"{clock:%Y-%m}", f"{clock.year}Q{(clock.month - 1) // 3 + 1}"]
    assert periods[0]["label"] == f"{clock:%Y-%m} · {clock:%B %Y} (to date)"  # the default
    days = [first["day"] + timedelta(days=n) for n in range((clock - first["day"]).days + 1)]
    wanted = {f"{d:%Y-%m}" for d in days} | {f"{d.year}Q{(d.month - 1) // 3 + 1}" for d in days}
    assert sorted(values) == sorted(wanted)
    ends = [_named(value, clock).last for value in values]
    assert ends == sorted(ends, reverse=True)


def test_a_period_name_gives_the_days_of_sinks_periods(grafana: GrafanaSession) -> None:
    through = date(2026, 5, 14)
    names = [f"{y}-{m:02d}" for y in (2025, 2026, 2028) for m in range(1, 13)]
    names += [f"{y}Q{q}" for y in (2025, 2026, 2028) for q in range(1, 5)]
    for name in names:
        period = calendar_period(literal(name), literal(through))
        (row,) = grafana.query(f"SELECT {period.first} AS first, {period.last} AS last").rows
        if _named(name, date.max).first > through:  # after the clock day: no day to date
            assert date.fromisoformat(row["last"]) < date.fromisoformat(row["first"]), name
            continue
        expected = _named(name, through)
        assert (row["first"], row["last"]) == (str(expected.first), str(expected.last)), name
    for wrong in ("2026-13", "2026-00", "2026Q5", "2026-1", "26-01", "2026 Q1", ""):
        period = calendar_period(literal(wrong), literal(through))
        with pytest.raises(RuntimeError, match=r"a month \(2025-10\) or a quarter"):
            grafana.query(f"SELECT {period.first} AS first")


def _by_code(rows: list[dict[str, Any]], column: str = "municipality") -> dict[str, Any]:
    codes = {municipality_label(code): code for code in MUNICIPALITIES} | {KOSOVO_LABEL: ALL_KOSOVO}
    return {codes[row[column]]: row for row in rows}


def _close(got: Any, want: Any) -> bool:
    if got is None or want is None:
        return got is None and want is None
    return math.isclose(float(got), float(want), rel_tol=0.0, abs_tol=1e-9)


PeriodRows = dict[tuple[str, str], dict[str, Any]]  # (scope, indicator) -> its row


@pytest.fixture(scope="module")
def by_periods_sql(
    filled: tuple[Settings, Store], periods: list[dict[str, Any]], clock: date
) -> list[tuple[dict[str, Any], PeriodRows]]:
    """Each picker option with sinks/periods.py's rows over its days, as the writer runs
    them (with their own SETTINGS clause)."""
    _, store = filled
    found = []
    for option in periods:
        rows = store.query(period_values(store.database, [_named(option["period"], clock)]))
        found.append((option, {(row["municipality"], row["indicator"]): row for row in rows}))
    return found


def test_the_period_table_equals_the_indicators_of_sinks_periods(
    grafana: GrafanaSession, built: Built, by_periods_sql: list[tuple[dict[str, Any], PeriodRows]]
) -> None:
    table = _panel(built, "vizita-overview", PERIOD_PANEL)["targets"][0]["rawSql"]
    for option, want in by_periods_sql:
        rows = grafana.query(expand(table, _request("ALL", option["period"]))).rows
        assert rows[0]["municipality"] == KOSOVO_LABEL
        got = _by_code(rows)
        assert sorted(got) == sorted([*MUNICIPALITIES, ALL_KOSOVO])
        for (code, indicator), row in want.items():
            assert _close(got[code][indicator], row["value"]), (option, code, indicator)
        kosovo = want[(ALL_KOSOVO, "households_reached")]["numerator"]
        assert 0 < kosovo <= sum(want[(c, "households_reached")]["numerator"]
                                 for c in MUNICIPALITIES)  # fmt: skip


@pytest.mark.parametrize("municipality", ["prishtine", "ALL"])
def test_the_period_stats_equal_the_indicators_of_sinks_periods(
    grafana: GrafanaSession, built: Built,
    by_periods_sql: list[tuple[dict[str, Any], PeriodRows]], municipality: str,
) -> None:  # fmt: skip
    titles = {indicator_display(i).title: i for i in INDICATORS}
    stats = [(titles[p["title"]], p["targets"][0]["rawSql"])
             for p in built.dashboards["vizita-municipality"]["panels"]
             if p["type"] == "stat" and p["title"] in titles]  # fmt: skip
    assert [indicator for indicator, _ in stats] == list(INDICATORS)
    for option, want in by_periods_sql:
        for indicator, raw in stats:
            (row,) = grafana.query(expand(raw, _request(municipality, option["period"]))).rows
            expected = want[(municipality, indicator)]
            assert _close(row["value"], expected["value"]), (option, indicator)
            if indicator not in COUNT_INDICATORS:
                counts = (expected["numerator"], expected["denominator"])
                assert (row["numerator"], row["denominator"]) == counts, (option, indicator)


# --- maps ----------------------------------------------------------------------------------------


def test_every_map_places_and_judges_each_municipality_as_the_contract_does(
    filled: tuple[Settings, Store], grafana: GrafanaSession, built: Built, clock: date
) -> None:
    settings, store = filled
    targets = BuildConfig.from_settings(settings).targets
    indicators = mapped_indicators(targets)
    assert set(indicators) == {str(i) for i in targets.defaults} | {"visits_completed"}
    seen = set()
    for indicator in indicators:
        title = f"{indicator_display(indicator).title}: against the target"
        raw = _panel(built, "vizita-overview", title)["targets"][0]["rawSql"]
        rows = _by_code(grafana.query(expand(raw, _request("ALL"))).rows)
        assert sorted(rows) == sorted(MUNICIPALITIES), indicator
        stored = {row["municipality"]: row for row in store.query(
            f"SELECT municipality, value, denominator FROM {store.table(INDICATOR_VALUES)} "
            f"FINAL WHERE indicator = '{indicator}' AND window_days = {ALERT_WINDOW} "
            f"AND as_of = '{clock}'")}  # fmt: skip
        alerted = {row["municipality"] for row in store.query(
            f"SELECT municipality FROM {store.table(ACTIVE_ALERTS)} "
            f"WHERE indicator = '{indicator}' AND window_days = {ALERT_WINDOW}")}  # fmt: skip
        for code, row in rows.items():
            where = (indicator, code)
            place, target = MUNICIPALITIES[code], targets.for_municipality(code).get(indicator)
            assert (row["latitude"], row["longitude"]) == (place.latitude, place.longitude)
            reading = Reading(stored[code]["value"], stored[code]["denominator"])
            assert _close(row["value"], reading.value), where
            if indicator not in COUNT_INDICATORS:
                assert row["denominator"] == reading.denominator, where
            expected = standing(indicator, target, reading, alerted=code in alerted,
                                targets=targets)  # fmt: skip
            marker, meaning = STANDING_TEXT[expected]
            assert (row["marker"], row["standing"]) == (marker.strip(), meaning), where
            seen.add(expected)
            if target is None or reading.value is None:
                assert row["from_target"] is None, where
            else:
                assert _close(row["target"], target.bound), where
                assert (row["from_target"] < 0) == target.is_behind(reading.value), where
    assert len(seen) >= 3, seen  # the stream puts some municipalities on each side


# --- caseloads ------------------------------------------------------------------------------------


def _python_caseload(visits: list[dict[str, Any]], key: str) -> dict[str, dict[str, Any]]:
    """Households with a completed visit, completed and all visits, the share missed."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for visit in visits:
        groups.setdefault(visit[key] or NO_FACILITY, []).append(visit)
    return {
        name: {
            "households": len({v["household_id"] for v in group if v["outcome"] == "completed"}),
            "completed_visits": sum(v["outcome"] == "completed" for v in group),
            "visits": len(group),
            "missed_share": sum(v["outcome"] in ("not_home", "refused") for v in group)
            / len(group),
            "facilities": ", ".join(sorted({v["facility_id"] or NO_FACILITY for v in group})),
            "nurses": len({v["nurse_id"] for v in group}),
        }
        for name, group in groups.items()
    }


@pytest.mark.parametrize("municipality", ["prishtine", "ALL"])
def test_the_caseloads_of_centres_and_nurses_are_their_visits(
    filled: tuple[Settings, Store], grafana: GrafanaSession, built: Built, municipality: str
) -> None:
    _, store = filled
    scope = "" if municipality == ALL_KOSOVO else f"AND municipality = '{municipality}'"
    visits = store.query(f"SELECT facility_id, nurse_id, household_id, outcome "
                         f"FROM {store.table(VISITS)} FINAL WHERE NOT is_void {scope}")  # fmt: skip
    for title, key, name in ((PER_FACILITY_PANEL, "facility_id", "facility"),
                             (PER_NURSE_PANEL, "nurse_id", "nurse_id")):  # fmt: skip
        raw = _panel(built, "vizita-municipality", title)["targets"][0]["rawSql"]
        answer = grafana.query(expand(raw, _request(municipality)))
        want = _python_caseload(visits, key)
        got = {row[name]: row for row in answer.rows}
        assert sorted(got) == sorted(want), title
        for group, row in got.items():
            expected = {column: want[group][column] for column in answer.columns if column != name}
            assert {c: row[c] for c in expected} == pytest.approx(expected), (title, group)
        households = [row["households"] for row in answer.rows]
        assert households == sorted(households, reverse=True), title  # biggest caseload first
    if municipality == ALL_KOSOVO:
        assert NO_FACILITY in _python_caseload(visits, "facility_id")  # the stream has some
