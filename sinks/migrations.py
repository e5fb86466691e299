"""Versioned migrations, applied idempotently at start.

A migration is `sinks/migrations/NNNN_name.sql`; `{db}` in it is the database name.
Applied versions are recorded in `schema_migrations`; every statement is written to
be safe to run again, so a migration interrupted halfway is simply applied again.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import structlog

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


def _statements(text: str, database: str) -> tuple[str, ...]:
    without_comments = "\n".join(line.split("--", 1)[0] for line in text.splitlines())
    parts = without_comments.replace("{db}", database).split(";")
    return tuple(part.strip() for part in parts if part.strip())


def load_migrations(database: str, directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    found = []
    for path in sorted(directory.glob("*.sql")):
        match = _NAME.match(path.name)
        if match is None:
            raise ValueError(f"migration file name must be NNNN_name.sql: {path.name}")
        text = path.read_text(encoding="utf-8")
        found.append(Migration(int(match[1]), match[2], _statements(text, database)))
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
    for table, column in ((DEAD_LETTERS, "received_at"), (STORE_REJECTS, "rejected_at")):
        store.execute(
            f"ALTER TABLE {store.table(table)} MODIFY TTL toDateTime({column}) + "
            f"INTERVAL {int(days)} DAY SETTINGS materialize_ttl_after_modify = 0"
        )


def _apply_migrations(store: Store) -> list[int]:
    store.execute(f"CREATE DATABASE IF NOT EXISTS {store.database}")
    store.execute(
        f"CREATE TABLE IF NOT EXISTS {store.table(SCHEMA_MIGRATIONS)} "
        "(version UInt32, name String, applied_at DateTime64(3, 'UTC')) "
        "ENGINE = ReplacingMergeTree ORDER BY version"
    )
    rows = store.query(f"SELECT version FROM {store.table(SCHEMA_MIGRATIONS)} FINAL")
    applied = {row["version"] for row in rows}
    done = []
    for migration in load_migrations(store.database):
        if migration.version in applied:
            continue
        for statement in migration.statements:
            store.execute(statement)
        store.insert(SCHEMA_MIGRATIONS, ("version", "name", "applied_at"),
                     [(migration.version, migration.name, datetime.now(UTC))])  # fmt: skip
        log.info("store.migrated", version=migration.version, name=migration.name)
        done.append(migration.version)
    return done
