"""Table and column names: the one place the sinks, the CLI and the dashboards take
them from (SPEC §5). The DDL itself is in `sinks/migrations/`. Where a table holds a
contract message, its columns are that message's fields."""

from __future__ import annotations

from typing import Final

import msgspec

from vizita.contract.messages import VISIT_ROW_FIELDS, Alert, IndicatorValue

VISITS: Final = "visits"
INDICATOR_VALUES: Final = "indicator_values"
ALERTS: Final = "alerts"
ACTIVE_ALERTS: Final = "active_alerts"
DEAD_LETTERS: Final = "dead_letters"
CONSUMER_LAG: Final = "consumer_lag"  # migration 0002, written by sinks/lag.py
STORE_REJECTS: Final = "store_rejects"  # migration 0003: rows the store refused for good
SCHEMA_MIGRATIONS: Final = "schema_migrations"

#: On a ClickHouse cluster (`store_cluster`, sinks/ddl.py) every table above is a
#: Distributed table over each shard's replicated table, named with this suffix, so
#: that every reader keeps the names above.
LOCAL_SUFFIX: Final = "_local"

#: `stored_at` is the store's own
VISIT_COLUMNS: Final = VISIT_ROW_FIELDS
INDICATOR_COLUMNS: Final = tuple(f.name for f in msgspec.structs.fields(IndicatorValue))
ALERT_COLUMNS: Final = tuple(f.name for f in msgspec.structs.fields(Alert))
DEAD_LETTER_COLUMNS: Final = (
    "received_at", "reason", "field", "detail", "payload", "source", "payload_sha256", "version",
)  # fmt: skip
STORE_REJECT_COLUMNS: Final = ("rejected_at", "target", "reason", "row", "source")
#: table -> its columns that may hold what a form added (a name, say): kept only for the
#: retention, and never readable by Grafana's user (config/clickhouse/users.d)
PERSONAL_COLUMNS: Final = {DEAD_LETTERS: ("payload",), STORE_REJECTS: ("row",)}
#: the tables Grafana may read (the bookkeeping of migrations is no reading)
READABLE_TABLES: Final = (
    VISITS, INDICATOR_VALUES, ALERTS, ACTIVE_ALERTS, CONSUMER_LAG, DEAD_LETTERS, STORE_REJECTS,
)  # fmt: skip
CONSUMER_LAG_COLUMNS: Final = (
    "measured_at", "consumer_group", "topic", "partition", "end_offset", "committed_offset", "lag",
)  # fmt: skip


def local_name(table: str) -> str:
    """The name of a table's replicated table on each shard of a cluster."""
    return f"{table}{LOCAL_SUFFIX}"
