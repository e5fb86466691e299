from __future__ import annotations

from sinks.migrations import load_migrations


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
