"""The store against the real embedded ClickHouse engine (chdb)."""

from __future__ import annotations

import hashlib
from datetime import UTC, date, datetime

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sinks.ddl import Layout
from sinks.migrations import (
    bookkeeping_statements,
    load_migrations,
    migrate,
    retention_statements,
)
from sinks.schema import DEAD_LETTER_COLUMNS, DEAD_LETTERS, VISIT_COLUMNS, VISITS
from sinks.sql import insert_statement, literal
from sinks.store import Store

# Recent: dead letters older than the retention (90 days) are dropped by the store.
NOW = datetime.now(UTC).replace(microsecond=0)


def test_migrations_apply_once(store: Store) -> None:
    assert migrate(store) == []  # the fixture applied them already
    tables = {row["name"] for row in store.query(f"SHOW TABLES FROM {store.database}")}
    assert {"visits", "indicator_values", "alerts", "active_alerts", "dead_letters"} <= tables
    versions = store.query(
        f"SELECT version FROM {store.table('schema_migrations')} FINAL ORDER BY version"
    )
    assert [row["version"] for row in versions] == [m.version for m in load_migrations("x")]


def _dead_letter(
    payload: bytes, source: str, detail: str = "payload: not valid JSON"
) -> tuple[object, ...]:
    return (NOW, "not_json", "", detail, payload, source, hashlib.sha256(payload).digest(), 0)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(payload=st.binary(max_size=300), detail=st.text(max_size=50))
def test_any_bytes_and_text_round_trip(store: Store, payload: bytes, detail: str) -> None:
    source = f"test/{payload.hex()[:40]}/{len(payload)}/{detail.encode().hex()[:40]}"
    store.insert(DEAD_LETTERS, DEAD_LETTER_COLUMNS, [_dead_letter(payload, source, detail)])
    got = store.query(
        f"SELECT hex(payload) AS h, detail FROM {store.table(DEAD_LETTERS)} FINAL "
        f"WHERE source = '{source}'"
    )
    assert got == [{"h": payload.hex().upper(), "detail": detail}]


def test_a_retried_batch_is_stored_once(store: Store) -> None:
    batch = [_dead_letter(b"x", "visits/0/1"), _dead_letter(b"y", "visits/0/2")]
    store.insert(DEAD_LETTERS, DEAD_LETTER_COLUMNS, batch)
    store.insert(DEAD_LETTERS, DEAD_LETTER_COLUMNS, batch)
    # Without FINAL: the engine itself dropped the second block (deduplication token).
    assert store.query(f"SELECT count() AS n FROM {store.table(DEAD_LETTERS)}") == [{"n": 2}]


def _visit(version: int, day: date) -> tuple[object, ...]:
    values = dict.fromkeys(VISIT_COLUMNS)
    values.update(
        visit_id="v1", event_id=f"e{version}", schema_version=1, revision=version, op="upsert",
        submitted_at=NOW, municipality="prizren", topics=[], risk_flags=[], referrals=[],
        is_void=False, local_day=day, version=version,
        occurred_at=datetime(day.year, day.month, day.day, 9, tzinfo=UTC),
    )  # fmt: skip
    return tuple(values[name] for name in VISIT_COLUMNS)


def test_a_visit_moved_to_another_month_leaves_one_row(store: Store) -> None:
    # The two rows sit in different partitions (months); FINAL still replaces across them.
    jan, feb = date(2026, 1, 31), date(2026, 2, 1)
    store.insert(VISITS, VISIT_COLUMNS, [_visit(1, jan)])
    store.insert(VISITS, VISIT_COLUMNS, [_visit(2, feb)])
    store.insert(VISITS, VISIT_COLUMNS, [_visit(1, jan)])  # a late retry of the old row
    rows = store.query(f"SELECT visit_id, local_day, version FROM {store.table(VISITS)} FINAL")
    assert rows == [{"visit_id": "v1", "local_day": feb, "version": 2}]
    parts = store.query(f"SELECT DISTINCT _partition_id AS p FROM {store.table(VISITS)} ORDER BY p")
    assert [row["p"] for row in parts] == ["202601", "202602"]


def test_active_alerts_shows_only_the_latest_raised(store: Store) -> None:
    columns = ("municipality", "indicator", "window_days", "seq", "state", "value", "target",
               "denominator", "as_of", "emitted_at")  # fmt: skip
    day = date(2026, 3, 1)
    store.insert("alerts", columns, [
        ("prizren", "missed_visit_rate", 30, 1, "raised", 0.2, 0.15, 40, day, NOW),
        ("prizren", "missed_visit_rate", 30, 2, "resolved", 0.1, 0.15, 40, day, NOW),
        ("peje", "missed_visit_rate", 30, 1, "raised", 0.3, 0.15, 40, day, NOW),
    ])  # fmt: skip
    active = store.query(f"SELECT municipality, state FROM {store.table('active_alerts')}")
    assert active == [{"municipality": "peje", "state": "raised"}]


def test_every_cluster_statement_parses_and_stays_on_the_cluster(store: Store) -> None:
    # No cluster can run here (no Keeper, no remote servers); the engine's own parser
    # still reads every statement a cluster would run, and keeps each on the cluster.
    layout = Layout("vizita", "vizita")
    ddl = [
        *bookkeeping_statements(layout),
        *(s for m in load_migrations("vizita", cluster="vizita") for s in m.statements),
        *retention_statements(layout, 90),
    ]
    for statement in ddl:
        parsed = _parsed(store, statement)
        assert " ON CLUSTER vizita " in f"{parsed} ", statement[:120]
    insert = insert_statement("vizita.visits", ("visit_id",), "('v1')", "t", to_shards=True)
    assert "distributed_foreground_insert = 1" in _parsed(store, insert)


def _parsed(store: Store, statement: str) -> str:
    (row,) = store.query(f"SELECT formatQuerySingleLine({literal(statement)}) AS parsed")
    return str(row["parsed"])
