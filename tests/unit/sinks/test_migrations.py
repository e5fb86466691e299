from __future__ import annotations

from sinks.migrations import load_migrations


def test_migrations_are_numbered_and_name_the_database() -> None:
    migrations = load_migrations("mydb")
    assert [m.version for m in migrations] == sorted({m.version for m in migrations})
    statements = [s for m in migrations for s in m.statements]
    assert all("{db}" not in s for s in statements)
    assert all(s.startswith("CREATE") and "IF NOT EXISTS" in s for s in statements)
    created = " ".join(statements)
    for table in ("visits", "indicator_values", "alerts", "active_alerts", "dead_letters"):
        assert f"mydb.{table}" in created
