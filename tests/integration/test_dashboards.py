"""Every panel query of every dashboard, and every alert rule query, run against a store
filled through the real pipeline (broker, Faust stage, sink, chdb) from a messy
simulated stream: macros and variables expanded as Grafana and the ClickHouse plugin
do (tests/grafana_macros.py), run as Grafana's read-only ClickHouse user
(tests/grafana_session.py), no error, rows, and the columns the panel reads. Days are
the programme's: day-valued series at local midnight, day filters on local days."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import pytest
import yaml
from grafana_macros import QueryContext, expand, expand_rule
from grafana_session import GrafanaSession

from dashboards.build import Built, alerting_text, build_all
from dashboards.config import BuildConfig
from dashboards.query import PLUGIN_TYPE, Format
from dashboards.sql import since_last_visit, window_column
from dashboards.units import indicator_display
from producers.simulator import SimulationConfig, simulate, write_jsonl
from sinks.lag import record_consumer_lag
from sinks.migrations import migrate
from sinks.schema import INDICATOR_VALUES, VISITS
from sinks.store import Store, open_store
from vizita.app.broker import LocalBroker
from vizita.app.replay import replay
from vizita.contract.days import LOCAL_TZ
from vizita.contract.indicators import INDICATORS, WINDOWS
from vizita.contract.municipalities import MUNICIPALITIES
from vizita.contract.settings import Settings

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


def _request(municipality: str) -> QueryContext:
    """A dashboard request whose range covers the visits (March) and the sink's clock
    times (now), with day-long intervals."""
    since = datetime.combine(START - timedelta(days=2), time(), tzinfo=UTC)
    return QueryContext(since, datetime.now(UTC) + timedelta(hours=1), timedelta(days=1),
                        {"municipality": municipality})  # fmt: skip


def _targets(built: Built) -> list[tuple[str, dict[str, Any], dict[str, Any]]]:
    found = []
    for uid, document in built.dashboards.items():
        for panel in document["panels"]:
            found += [(uid, panel, target) for target in panel.get("targets", [])]
    return found


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
    grafana: GrafanaSession, built: Built, municipality: str
) -> None:
    targets = _targets(built)
    assert len(targets) >= 30  # the three dashboards, not an empty build
    for uid, panel, target in targets:
        where = f"{uid} panel {panel['id']} ({panel['title']}) target {target['refId']}"
        assert target["datasource"]["type"] == PLUGIN_TYPE, where
        sent = expand(target["rawSql"], _request(municipality))
        _check(grafana, built, target["rawSql"], sent, where)


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
    assert len(queries) == len(document["groups"][0]["rules"]) == 3
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
    nurses = _panel(built, "vizita-municipality", "Visits per nurse")
    per_nurse = grafana.query(expand(nurses["targets"][0]["rawSql"], _one_local_day(day))).rows
    (stored,) = store.query(f"SELECT count() AS n FROM {store.table(VISITS)} FINAL "
                            f"WHERE NOT is_void AND local_day = '{day}'")  # fmt: skip
    assert sum(row["visits"] for row in per_nurse) == stored["n"] > 0


def test_a_municipality_never_heard_from_has_empty_times(
    settings: Settings, store: Store, grafana: GrafanaSession
) -> None:
    # `store` is a database of its own with no visit at all.
    silence = since_last_visit(store.database)
    answer = grafana.query(expand(silence.text, _request("ALL")))
    assert len(answer.rows) == len(MUNICIPALITIES)
    assert all(row["last_stored"] is None and row["since_last_stored"] is None
               for row in answer.rows)  # fmt: skip
