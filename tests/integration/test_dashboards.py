"""Every panel query of every dashboard, and every alert rule query, run against a store
filled through the real pipeline (broker, Faust stage, sink, chdb) from a messy
simulated stream: macros and variables expanded as Grafana and the ClickHouse plugin
do (tests/grafana_macros.py), no error, rows, and the columns the panel reads."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import pytest
import yaml
from grafana_macros import QueryContext, expand

from dashboards.build import Built, alerting_text, build_all
from dashboards.config import BuildConfig
from dashboards.query import PLUGIN_TYPE
from producers.simulator import SimulationConfig, simulate, write_jsonl
from sinks.lag import record_consumer_lag
from sinks.migrations import migrate
from sinks.store import Store, open_store
from vizita.app.broker import LocalBroker
from vizita.app.replay import replay
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


def _check(store: Store, built: Built, sql: str, context: QueryContext, where: str) -> None:
    expected = built.columns.get(sql)
    assert expected is not None, f"{where}: no expected columns defined for its query"
    rows = store.query(expand(sql, context))
    assert rows, f"{where}: no rows\n{expand(sql, context)}"
    assert tuple(rows[0]) == expected, where


@pytest.mark.parametrize("municipality", ["prishtine", "ALL"])
def test_every_panel_query_runs_and_returns_its_columns(
    filled: tuple[Settings, Store], built: Built, municipality: str
) -> None:
    _, store = filled
    targets = _targets(built)
    assert len(targets) >= 30  # the three dashboards, not an empty build
    for uid, panel, target in targets:
        where = f"{uid} panel {panel['id']} ({panel['title']}) target {target['refId']}"
        assert target["datasource"]["type"] == PLUGIN_TYPE, where
        _check(store, built, target["rawSql"], _request(municipality), where)


def _rule_queries(document: dict[str, Any], datasource_uid: str) -> Iterator[tuple[str, Any]]:
    for group in document["groups"]:
        for rule in group["rules"]:
            for query in rule["data"]:
                if query["datasourceUid"] == datasource_uid:
                    yield rule["uid"], query


def test_every_alert_rule_query_runs_and_returns_its_columns(
    filled: tuple[Settings, Store], built: Built
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
        _check(store, built, query["model"]["rawSql"], context, f"rule {uid}")


def test_the_overview_table_has_every_municipality_and_kosovo(
    filled: tuple[Settings, Store], built: Built
) -> None:
    _, store = filled
    panels = built.dashboards["vizita-overview"]["panels"]
    table = next(p for p in panels if p["title"] == "30-day values at the latest day in range")
    rows = store.query(expand(table["targets"][0]["rawSql"], _request("ALL")))
    assert len(rows) == 39
    assert rows[0]["municipality"] == "Kosova / Kosovo (all)"
    pristina = next(r for r in rows if r["municipality"].startswith("Prishtinë"))
    # Fewer than 400 completed visits in 30 days: behind its own volume target.
    assert "visits_completed" in pristina["behind_on"].split(", ")
    assert pristina["active_alerts"] >= 1
