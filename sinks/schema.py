"""Table and column names: the one place the sinks, the CLI and the dashboards take
them from (SPEC §5). The DDL itself is in `sinks/migrations/`."""

from __future__ import annotations

from typing import Final

from vizita.contract.messages import VisitRow

VISITS: Final = "visits"
INDICATOR_VALUES: Final = "indicator_values"
ALERTS: Final = "alerts"
ACTIVE_ALERTS: Final = "active_alerts"
DEAD_LETTERS: Final = "dead_letters"
CONSUMER_LAG: Final = "consumer_lag"  # migration 0002, written by sinks/lag.py
SCHEMA_MIGRATIONS: Final = "schema_migrations"

#: the `visits` columns: the fields of the row stage 1 sends (SPEC §1, and what the
#: store adds); `stored_at` is the store's own
VISIT_COLUMNS: Final = tuple(VisitRow.model_fields)

DEAD_LETTER_COLUMNS: Final = ("received_at", "reason", "field", "detail", "payload", "source")

INDICATOR_COLUMNS: Final = (
    "municipality", "indicator", "window_days", "as_of", "numerator", "denominator",
    "value", "computed_at", "version",
)  # fmt: skip
ALERT_COLUMNS: Final = (
    "municipality", "indicator", "window_days", "seq", "state", "value", "target",
    "denominator", "as_of", "emitted_at",
)  # fmt: skip
CONSUMER_LAG_COLUMNS: Final = (
    "measured_at", "consumer_group", "topic", "partition", "end_offset", "committed_offset", "lag",
)  # fmt: skip
