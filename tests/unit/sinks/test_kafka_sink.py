"""What the sink makes of the stream's messages."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from aiokafka import ConsumerRecord

from sinks.kafka_sink import dead_letter_row, visit_row_values
from sinks.schema import DEAD_LETTER_COLUMNS, VISIT_COLUMNS
from streams.revisions import apply_event
from vizita.contract.validation import ValidEvent, validate_payload

UPSERT = {
    "schema_version": 1, "event_id": "e1", "visit_id": "v1", "revision": 1, "op": "upsert",
    "occurred_at": "2026-03-31T23:30:00Z", "submitted_at": "2026-04-01T08:00:00+02:00",
    "municipality": "peje", "facility_id": None, "nurse_id": "n1", "household_id": "h1",
    "child_age_months": 3, "pregnant": False, "visit_type": "routine", "outcome": "completed",
    "topics": ["nutrition", "immunisation", "nutrition"], "risk_flags": [], "referrals": [],
}  # fmt: skip


def _event(payload: dict[str, object]) -> ValidEvent:
    result = validate_payload(json.dumps(payload).encode())
    assert isinstance(result, ValidEvent)
    return result


def test_a_change_message_becomes_one_visits_row() -> None:
    first = apply_event(None, _event(UPSERT).event)
    void = {"schema_version": 1, "event_id": "e2", "visit_id": "v1", "revision": 2,
            "op": "void", "submitted_at": "2026-04-02T08:00:00Z"}  # fmt: skip
    second = apply_event(first.state, _event(void).event)
    row = dict(
        zip(
            VISIT_COLUMNS,
            visit_row_values(second.state.visit_row().model_dump_json().encode()),
            strict=True,
        )
    )
    assert row["is_void"] is True
    assert row["event_id"] == "e2"
    assert row["version"] == second.state.version > first.state.version
    assert row["municipality"] == "peje"  # kept from the upsert it retracts
    assert str(row["local_day"]) == "2026-04-01"  # 23:30Z on 31 March is 1 April in Kosovo
    assert row["topics"] == ["immunisation", "nutrition"]


def _record(headers: list[tuple[str, bytes]]) -> ConsumerRecord[bytes, bytes]:
    return ConsumerRecord(
        topic="t.visits-dlq", partition=1, offset=7, timestamp=1772000000000, timestamp_type=0,
        key=None, value=b"\xffnot json", checksum=None, serialized_key_size=0,
        serialized_value_size=9, headers=headers,
    )  # fmt: skip


def test_a_dead_letter_keeps_its_bytes_reason_and_source() -> None:
    record = _record([("vizita-reason", b"not_json"), ("vizita-field", b""),
                      ("vizita-detail", b"payload: not valid JSON"),
                      ("vizita-source", b"t.visits/3/41")])  # fmt: skip
    row = dict(zip(DEAD_LETTER_COLUMNS, dead_letter_row(record), strict=True))
    assert row == {
        "received_at": datetime.fromtimestamp(1772000000, UTC), "reason": "not_json",
        "field": "", "detail": "payload: not valid JSON", "payload": b"\xffnot json",
        "source": "t.visits/3/41",
    }  # fmt: skip


def test_a_dead_letter_without_headers_still_lands() -> None:
    row = dict(zip(DEAD_LETTER_COLUMNS, dead_letter_row(_record([])), strict=True))
    assert (row["reason"], row["source"]) == ("unknown", "t.visits-dlq/1/7")
