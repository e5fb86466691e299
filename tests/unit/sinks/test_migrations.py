"""The migrations as each layout renders them: one node, byte for byte what every store
has run, and a cluster, where every statement is the cluster's and every table the
readers use is a Distributed table over replicated shards."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from sinks.ddl import Layout
from sinks.migrations import bookkeeping_statements, load_migrations, migrate
from sinks.schema import READABLE_TABLES
from sinks.store import Row, Store

#: every statement `migrate` ran on one node (database `vizita`, the default retention),
#: the INSERTs of applied versions left out (they carry the time)
SINGLE_NODE_DDL = Path(__file__).with_name("single_node_ddl.json")
CLUSTER = "vizita"
DB = "vizita"

#: table -> (its replicated engine, its version column or None)
REPLICATED: dict[str, tuple[str, str | None]] = {
    "visits": ("ReplicatedReplacingMergeTree", "version"),
    "indicator_values": ("ReplicatedReplacingMergeTree", "version"),
    "alerts": ("ReplicatedReplacingMergeTree", None),
    "consumer_lag": ("ReplicatedMergeTree", None),
    "store_rejects": ("ReplicatedReplacingMergeTree", None),
    "schema_migrations": ("ReplicatedReplacingMergeTree", None),
}
#: dead_letters: by source in 0001, rebuilt by payload in 0003
DEAD_LETTERS_BY_MIGRATION = {
    1: ("ReplicatedReplacingMergeTree", None, "cityHash64(source)"),
    3: ("ReplicatedReplacingMergeTree", "version", "cityHash64(payload_sha256)"),
}
#: table -> the sharding key of its Distributed table, as agreed in the README
SHARDING_KEYS = {
    "visits": "cityHash64(visit_id)",
    "indicator_values": "cityHash64(municipality, indicator, window_days, as_of)",
    "alerts": "cityHash64(municipality, indicator, window_days)",
    "dead_letters": "cityHash64(payload_sha256)",
    "consumer_lag": "cityHash64(consumer_group, topic, partition)",
    "store_rejects": "cityHash64(target, source, row)",
    "schema_migrations": "version",
}

_HEAD = re.compile(
    r"(?:CREATE (?:OR REPLACE )?(?:TABLE|VIEW)(?: IF NOT EXISTS)?|ALTER TABLE|CREATE DATABASE"
    r" IF NOT EXISTS) (?P<name>[\w.]+) ON CLUSTER (?P<cluster>\w+)(?:[\s(]|$)"
)
_CREATED = re.compile(r"CREATE (?:OR REPLACE )?TABLE (?:IF NOT EXISTS )?(?P<db>\w+)\.(?P<t>\w+)")
_ENGINE = re.compile(
    r"ENGINE = (?P<engine>\w+)\('(?P<path>[^']*)', '(?P<replica>[^']*)'(?:, (?P<version>\w+))?\)"
)
_DISTRIBUTED = re.compile(
    r"CREATE (?:OR REPLACE TABLE|TABLE IF NOT EXISTS) (?P<db>\w+)\.(?P<table>\w+) "
    r"ON CLUSTER (?P<cluster>\w+) AS (?P<as_db>\w+)\.(?P<as_table>\w+) ENGINE = Distributed\("
    r"(?P<d_cluster>\w+), (?P<d_db>\w+), (?P<d_table>\w+), (?P<key>.+)\)$"
)


class Recording:
    """A backend that keeps every statement; `applied` are the versions it answers."""

    def __init__(self, applied: tuple[int, ...] = ()) -> None:
        self.statements: list[str] = []
        self.applied = applied

    def execute(self, sql: str) -> None:
        self.statements.append(sql)

    def fetch(self, sql: str) -> list[Row]:
        self.statements.append(sql)
        return [{"version": version} for version in self.applied]

    def close(self) -> None:
        pass


def migrated(cluster: str | None, applied: tuple[int, ...] = ()) -> list[str]:
    backend = Recording(applied)
    migrate(Store(backend, DB, cluster))
    return backend.statements


def cluster_statements() -> list[tuple[int, str]]:
    return [(m.version, s) for m in load_migrations(DB, cluster=CLUSTER) for s in m.statements]


# --- one node ----------------------------------------------------------------------------


def test_migrations_are_numbered_and_name_the_database() -> None:
    migrations = load_migrations("mydb")
    assert [m.version for m in migrations] == sorted({m.version for m in migrations})
    statements = [s for m in migrations for s in m.statements]
    assert all("{db}" not in s for s in statements)
    rerunnable = ("CREATE OR REPLACE ", "CREATE TABLE IF NOT EXISTS ", "CREATE VIEW IF NOT EXISTS ")
    assert all(s.startswith(rerunnable) for s in statements)
    created = " ".join(statements)
    for table in ("visits", "indicator_values", "alerts", "active_alerts", "dead_letters"):
        assert f"mydb.{table}" in created


def test_one_node_runs_byte_for_byte_what_every_store_has_run() -> None:
    statements = migrated(None)
    expected: list[str] = json.loads(SINGLE_NODE_DDL.read_text(encoding="utf-8"))
    assert [s for s in statements if not s.startswith("INSERT ")] == expected
    inserts = [s for s in statements if s.startswith("INSERT ")]
    assert len(inserts) == len(load_migrations(DB))
    for insert in inserts:
        assert insert.startswith(
            f"INSERT INTO {DB}.schema_migrations (version, name, applied_at) "
            "SETTINGS insert_deduplication_token = '"
        )
        assert "distributed_foreground_insert" not in insert


# --- a cluster ---------------------------------------------------------------------------


def test_every_statement_runs_on_the_cluster() -> None:
    for statement in migrated(CLUSTER):
        if statement.startswith(("SELECT ", "INSERT ")):
            continue
        head = _HEAD.match(statement)
        assert head, f"not on the cluster: {statement[:120]}"
        assert head["cluster"] == CLUSTER


def test_replicated_engines_with_their_paths_and_version_columns() -> None:
    found = []
    bookkeeping = [(0, s) for s in bookkeeping_statements(Layout(DB, CLUSTER))]
    for version, statement in bookkeeping + cluster_statements():
        created, engine = _CREATED.match(statement), _ENGINE.search(statement)
        if created is None or engine is None:
            continue
        table = created["t"].removesuffix("_local")
        assert created["t"] == f"{table}_local", statement[:120]
        kind, column = REPLICATED.get(table) or DEAD_LETTERS_BY_MIGRATION[version][:2]
        anew = "_{uuid}" if statement.startswith("CREATE OR REPLACE") else ""
        assert engine["engine"] == kind, table
        assert engine["path"] == f"/clickhouse/tables/{{shard}}/{{database}}/{table}_local{anew}"
        assert engine["replica"] == "{replica}"
        assert engine["version"] == column, table
        if column:
            assert re.search(rf"^\s+{column}\s+UInt", statement, re.MULTILINE), table
        found.append(table)
    assert sorted(set(found)) == sorted({*REPLICATED, "dead_letters"})


def test_a_distributed_table_over_each_local_table_with_the_agreed_key() -> None:
    statements = [s for s in migrated(CLUSTER) if not s.startswith(("SELECT", "INSERT"))]
    keys: dict[str, str] = {}
    for index, statement in enumerate(statements):
        created = _CREATED.match(statement)
        if created is None or not created["t"].endswith("_local"):
            continue
        table = created["t"].removesuffix("_local")
        distributed = _distributed_after(statements[index + 1 :], table)
        assert distributed["as_table"] == distributed["d_table"] == created["t"]
        assert distributed["db"] == distributed["as_db"] == distributed["d_db"] == DB
        assert distributed["cluster"] == distributed["d_cluster"] == CLUSTER
        assert set(_columns(distributed["key"])) <= set(_order_by(statement)), table
        keys[table] = distributed["key"]
    assert keys == SHARDING_KEYS


def test_dead_letters_are_sharded_by_payload_once_keyed_by_it() -> None:
    for version, statement in cluster_statements():
        found = _DISTRIBUTED.match(statement)
        if found and found["table"] == "dead_letters":
            assert found["key"] == DEAD_LETTERS_BY_MIGRATION[version][2]


def test_every_table_the_readers_use_keeps_its_name() -> None:
    statements = [s for _, s in cluster_statements()]
    distributed = {m["table"] for m in map(_DISTRIBUTED.match, statements) if m}
    views = {m["name"] for s in statements if s.startswith("CREATE VIEW") and (m := _HEAD.match(s))}
    assert set(READABLE_TABLES) <= distributed | {name.split(".")[1] for name in views}
    (view,) = [s for s in statements if s.startswith("CREATE VIEW")]
    assert f"FROM {DB}.alerts FINAL" in view  # the Distributed table: every shard's alerts


def test_nothing_single_node_is_left() -> None:
    statements = migrated(CLUSTER)
    text = "\n".join(statements)
    assert "non_replicated_deduplication_window" not in text
    assert "replicated_deduplication_window = 1000" in text
    engines = re.findall(r"ENGINE = (\w+)", text)
    assert engines
    assert all(e.startswith("Replicated") or e == "Distributed" for e in engines), engines
    for statement in statements:
        created = _CREATED.match(statement)
        if created and not created["t"].endswith("_local"):
            assert _DISTRIBUTED.match(statement), f"rows kept outside a shard: {statement[:80]}"
    selected_from = re.findall(r"\bAS SELECT .*?\bFROM (\w+\.\w+)", text, re.DOTALL)
    assert selected_from == [f"{DB}.dead_letters_local"]  # a shard rebuilds its own rows


def test_the_retention_is_each_shards_and_the_versions_are_read_through_the_cluster() -> None:
    statements = migrated(CLUSTER, applied=(1, 2, 3))
    assert f"SELECT version FROM {DB}.schema_migrations FINAL" in statements
    retention = [s for s in statements if s.startswith("ALTER TABLE")]
    assert [s.split(" MODIFY TTL ")[0] for s in retention] == [
        f"ALTER TABLE {DB}.dead_letters_local ON CLUSTER {CLUSTER}",
        f"ALTER TABLE {DB}.store_rejects_local ON CLUSTER {CLUSTER}",
    ]
    assert not [s for s in statements if s.startswith("INSERT")]  # nothing new applied
    assert len(statements) == 6  # database, bookkeeping and its Distributed, read, 2 TTLs


def test_applied_versions_are_written_through_the_distributed_table_and_wait_for_it() -> None:
    inserts = [s for s in migrated(CLUSTER) if s.startswith("INSERT")]
    assert len(inserts) == len(load_migrations(DB))
    for insert in inserts:
        assert insert.startswith(f"INSERT INTO {DB}.schema_migrations (version, name, applied_at) ")
        assert "insert_deduplication_token = '" in insert
        assert "distributed_foreground_insert = 1" in insert


def _distributed_after(statements: list[str], table: str) -> Any:
    for statement in statements:
        found = _DISTRIBUTED.match(statement)
        if found and found["table"] == table:
            return found
    pytest.fail(f"no Distributed table over {table}_local")


def _columns(sharding_key: str) -> list[str]:
    inner = sharding_key.removeprefix("cityHash64(").removesuffix(")")
    return [column.strip() for column in inner.split(",")]


def _order_by(statement: str) -> list[str]:
    found = re.search(r"ORDER BY (\([^)]*\)|\w+)", statement)
    assert found, statement[:120]
    return [column.strip() for column in found[1].strip("()").split(",")]
