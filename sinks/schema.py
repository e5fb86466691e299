"""Table and column names: the one place the sinks, the CLI and the dashboards take
them from (SPEC §5). The DDL itself is in `sinks/migrations/`."""

from __future__ import annotations

from typing import Final

VISITS: Final = "visits"
INDICATOR_VALUES: Final = "indicator_values"
ALERTS: Final = "alerts"
ACTIVE_ALERTS: Final = "active_alerts"
DEAD_LETTERS: Final = "dead_letters"
CONSUMER_LAG: Final = "consumer_lag"  # migration 0002, written by sinks/lag.py
SCHEMA_MIGRATIONS: Final = "schema_migrations"

# Every field of SPEC §1, then what the store adds.
VISIT_EVENT_COLUMNS: Final = (
    "visit_id", "event_id", "schema_version", "revision", "op", "occurred_at",
    "submitted_at", "municipality", "facility_id", "nurse_id", "household_id",
    "child_age_months", "pregnant", "visit_type", "outcome", "topics", "risk_flags",
    "referrals",
)  # fmt: skip
VISIT_COLUMNS: Final = (*VISIT_EVENT_COLUMNS, "is_void", "local_day", "version")

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
