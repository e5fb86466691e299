"""Versioned migrations, applied idempotently at start.

A migration is `sinks/migrations/NNNN_name.sql`; `{db}` in it is the database name, and
its other markers render it for one node or for the store's cluster (sinks/ddl.py).
Applied versions are recorded in `schema_migrations`; every statement is written to
be safe to run again, so a migration interrupted halfway is simply applied again.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import structlog

from sinks.ddl import Layout
from sinks.schema import DEAD_LETTERS, SCHEMA_MIGRATIONS, STORE_REJECTS
from sinks.store import Store

log = structlog.get_logger(__name__)

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
DEFAULT_RETENTION_DAYS = 90
_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    statements: tuple[str, ...]


def load_migrations(
    database: str, directory: Path = MIGRATIONS_DIR, cluster: str | None = None
) -> list[Migration]:
    """Every migration, rendered for one node or for the cluster named `cluster`."""
    layout = Layout(database, cluster)
    found = []
    for path in sorted(directory.glob("*.sql")):
        match = _NAME.match(path.name)
        if match is None:
            raise ValueError(f"migration file name must be NNNN_name.sql: {path.name}")
        text = path.read_text(encoding="utf-8")
        found.append(Migration(int(match[1]), match[2], layout.render(text)))
    return found


def migrate(store: Store, retention_days: int = DEFAULT_RETENTION_DAYS) -> list[int]:
    """Bring the store's schema up to date, then the retention of what may hold personal
    data to `retention_days`; answer the migration versions applied now."""
    applied = _apply_migrations(store)
    apply_retention(store, retention_days)
    return applied


def apply_retention(store: Store, days: int) -> None:
    """Dead letters and store rejects may hold what a form added (a name, say): they are
    kept `days` days. Applied at every start, so the setting always holds; old parts
    take the new TTL at their next merge."""
    for statement in retention_statements(_layout(store), days):
        store.execute(statement)


def retention_statements(layout: Layout, days: int) -> tuple[str, ...]:
    """On a cluster the TTL is each shard's table's (a Distributed table keeps nothing)."""
    return tuple(
        f"ALTER TABLE {layout.database}.{layout.local(table)}{layout.on_cluster()} MODIFY TTL "
        f"toDateTime({column}) + INTERVAL {int(days)} DAY "
        "SETTINGS materialize_ttl_after_modify = 0"
        for table, column in ((DEAD_LETTERS, "received_at"), (STORE_REJECTS, "rejected_at"))
    )


def bookkeeping_statements(layout: Layout) -> tuple[str, ...]:
    """The database and the table of applied versions, before any migration. On a
    cluster a version is read back through its Distributed table, from any node."""
    db, table = layout.database, SCHEMA_MIGRATIONS
    statements = (
        f"CREATE DATABASE IF NOT EXISTS {db}{layout.on_cluster()}",
        f"CREATE TABLE IF NOT EXISTS {db}.{layout.local(table)}{layout.on_cluster()} "
        "(version UInt32, name String, applied_at DateTime64(3, 'UTC')) "
        f"ENGINE = {layout.engine('ReplacingMergeTree', table)} ORDER BY version",
        layout.distributed(table, "version", replace=False),
    )
    return tuple(statement for statement in statements if statement)


def _layout(store: Store) -> Layout:
    return Layout(store.database, store.cluster)


def _apply_migrations(store: Store) -> list[int]:
    for statement in bookkeeping_statements(_layout(store)):
        store.execute(statement)
    rows = store.query(f"SELECT version FROM {store.table(SCHEMA_MIGRATIONS)} FINAL")
    applied = {row["version"] for row in rows}
    done = []
    for migration in load_migrations(store.database, cluster=store.cluster):
        if migration.version in applied:
            continue
        for statement in migration.statements:
            store.execute(statement)
        store.insert(SCHEMA_MIGRATIONS, ("version", "name", "applied_at"),
                     [(migration.version, migration.name, datetime.now(UTC))])  # fmt: skip
        log.info("store.migrated", version=migration.version, name=migration.name)
        done.append(migration.version)
    return done
