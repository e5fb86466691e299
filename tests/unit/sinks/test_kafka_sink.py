"""What the sink makes of the stream's messages, and what it does with store errors."""

from __future__ import annotations

import asyncio
import hashlib
import json
from datetime import UTC, datetime
from typing import Any

import pytest
from aiokafka import ConsumerRecord

from sinks.errors import Kind, StoreFatal, StoreQueryError, StoreUnavailable, kind_of
from sinks.kafka_sink import Batch, KafkaSink, dead_letter_row, visit_rows
from sinks.schema import DEAD_LETTER_COLUMNS, DEAD_LETTERS, STORE_REJECTS, VISIT_COLUMNS, VISITS
from sinks.store import Store
from streams.revisions import apply_event
from vizita.contract import metrics
from vizita.contract.messages import VisitRows, encode
from vizita.contract.settings import Settings
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


def _record(
    value: bytes | None,
    headers: list[tuple[str, bytes]] | None = None,
    topic: str = "t.visits-dlq",
    timestamp: int = 1772000000000,
) -> ConsumerRecord[bytes, bytes]:
    return ConsumerRecord(
        topic=topic, partition=1, offset=7, timestamp=timestamp, timestamp_type=0,
        key=None, value=value, checksum=None, serialized_key_size=0,
        serialized_value_size=len(value or b""), headers=headers or [],
    )  # fmt: skip


def test_a_rows_message_becomes_visits_rows() -> None:
    first = apply_event(None, _event(UPSERT).event)
    void = {"schema_version": 1, "event_id": "e2", "visit_id": "v1", "revision": 2,
            "op": "void", "submitted_at": "2026-04-02T08:00:00Z"}  # fmt: skip
    second = apply_event(first.state, _event(void).event)
    message = encode(VisitRows([first.state.visit, second.state.visit]))
    rows = visit_rows(_record(message, topic="t.visits-effective"))
    assert [table for table, _ in rows] == [VISITS, VISITS]
    row = dict(zip(VISIT_COLUMNS, rows[1][1], strict=True))
    assert row["is_void"] is True
    assert row["event_id"] == "e2"
    assert row["version"] == second.state.version > first.state.version
    assert row["municipality"] == "peje"  # kept from the upsert it retracts
    assert str(row["local_day"]) == "2026-04-01"  # 23:30Z on 31 March is 1 April in Kosovo
    assert row["topics"] == ["immunisation", "nutrition"]


def test_a_dead_letter_keeps_its_bytes_reason_and_source_and_is_keyed_by_its_payload() -> None:
    record = _record(b"\xffnot json", [("vizita-reason", b"not_json"), ("vizita-field", b""),
                     ("vizita-detail", b"payload: not valid JSON"),
                     ("vizita-source", b"t.visits/3/41")])  # fmt: skip
    row = dict(zip(DEAD_LETTER_COLUMNS, dead_letter_row(record), strict=True))
    assert row["received_at"] == datetime.fromtimestamp(1772000000, UTC)
    assert (row["reason"], row["field"], row["detail"]) == (
        "not_json",
        "",
        "payload: not valid JSON",
    )
    assert (row["payload"], row["source"]) == (b"\xffnot json", "t.visits/3/41")
    assert row["payload_sha256"] == hashlib.sha256(b"\xffnot json").digest()


def test_the_first_arrival_of_a_payload_has_the_greater_version() -> None:
    early, late = _record(b"x"), _record(b"x", timestamp=1772000060000)
    versions = {name: dict(zip(DEAD_LETTER_COLUMNS, dead_letter_row(r), strict=True))["version"]
                for name, r in (("early", early), ("late", late))}  # fmt: skip
    assert versions["early"] > versions["late"]


def test_a_dead_letter_without_headers_or_value_still_lands() -> None:
    row = dict(zip(DEAD_LETTER_COLUMNS, dead_letter_row(_record(None)), strict=True))
    assert (row["reason"], row["source"], row["payload"]) == ("unknown", "t.visits-dlq/1/7", b"")


def _sink(store: Store) -> KafkaSink:
    settings = Settings(
        kafka_bootstrap="127.0.0.1:9", topic_prefix="t.", store_retry_max_seconds=0.05
    )
    return KafkaSink(settings, store)


@pytest.mark.parametrize("topic", ["t.visits-effective", "t.indicators", "t.alerts"])
@pytest.mark.parametrize("value", [b"", b"not json", b'{"rows": 5}', b"[1, 2]", None])
def test_a_message_that_is_no_message_of_its_topic_becomes_a_dead_letter(
    topic: str, value: bytes | None
) -> None:
    batch = _sink(Store(_Recording(), "db"))._batch([_record(value, topic=topic)])
    assert list(batch.rows) == [DEAD_LETTERS]
    row = dict(zip(DEAD_LETTER_COLUMNS, batch.rows[DEAD_LETTERS][0], strict=True))
    assert row["reason"] == "undecodable_message"
    assert row["source"] == f"{topic}/1/7"
    assert row["payload"] == (value or b"")
    assert topic in row["detail"]


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        (StoreUnavailable("connection refused"), Kind.TRANSIENT),
        (StoreQueryError("Code: 241. DB::Exception: Memory limit exceeded"), Kind.TRANSIENT),
        (StoreQueryError("Code: 243. DB::Exception: Cannot reserve 1.00 MiB"), Kind.TRANSIENT),
        (StoreQueryError("Code: 252. DB::Exception: Too many parts (300)"), Kind.TRANSIENT),
        (
            StoreQueryError(
                "Code: 252. DB::Exception: Too many partitions for single INSERT "
                "block (more than 100)"
            ),
            Kind.ROWS,
        ),
        (StoreQueryError("Code: 38. DB::Exception: Cannot parse date"), Kind.ROWS),
        (  # a Distributed insert while no replica of one shard answers
            StoreQueryError("Code: 279. DB::Exception: All connection tries failed."),
            Kind.TRANSIENT,
        ),
        (StoreQueryError("no code at all"), Kind.ROWS),
        (
            StoreQueryError("Code: 60. DB::Exception: Table vizita.visits does not exist"),
            Kind.FATAL,
        ),
        (StoreQueryError("refused", code=497), Kind.FATAL),
        (RuntimeError("a bug"), Kind.FATAL),
    ],
)
def test_store_errors_are_taken_by_their_kind(error: Exception, kind: Kind) -> None:
    assert kind_of(error) is kind


class _Recording:
    """A store backend that records what it is asked, refusing rows that hold `poison`
    (as a real store refuses a value it cannot parse) and, the first `transient` times,
    everything (as a store that is down for a moment)."""

    def __init__(self, poison: str = "\x00never", transient: int = 0, fatal: bool = False) -> None:
        self.poison, self.transient, self.fatal = poison, transient, fatal
        self.inserted: list[str] = []
        self.attempts = 0

    def execute(self, sql: str) -> None:
        self.attempts += 1
        if self.fatal:
            raise StoreQueryError("Code: 60. DB::Exception: Table does not exist")
        if self.transient > 0:
            self.transient -= 1
            raise StoreUnavailable("down for a moment")
        if self.poison in sql and STORE_REJECTS not in sql:  # the row, not its record
            raise StoreQueryError("Code: 38. DB::Exception: Cannot parse input")
        self.inserted.append(sql)

    def fetch(self, sql: str) -> list[dict[str, Any]]:
        return []

    def close(self) -> None:
        pass


def _rows(values: list[str]) -> tuple[list[tuple[Any, ...]], list[str]]:
    return [(value,) for value in values], [f"t.visits-effective/0/{i}" for i in range(len(values))]


def test_a_refused_row_is_set_aside_and_the_rest_go_in() -> None:
    backend = _Recording(poison="BAD")
    sink = _sink(Store(backend, "db"))
    rows, sources = _rows(["a", "b", "BAD", "c", "d", "e", "f"])
    asyncio.run(sink._write(VISITS, rows, sources))
    stored = "".join(sql for sql in backend.inserted if "db.visits " in sql)
    assert all(f"'{v}'" in stored for v in "abcdef")
    assert "'BAD'" not in stored
    rejects = [sql for sql in backend.inserted if f"db.{STORE_REJECTS}" in sql]
    assert len(rejects) == 1
    assert "t.visits-effective/0/2" in rejects[0]
    assert "Cannot parse input" in rejects[0]
    assert sink.rejected == 1


def test_a_transient_refusal_is_retried_until_it_passes() -> None:
    backend = _Recording(transient=3)
    sink = _sink(Store(backend, "db"))
    rows, sources = _rows(["a", "b"])
    asyncio.run(sink._write(VISITS, rows, sources))
    assert backend.attempts == 4
    assert sink.retries == 3
    assert len(backend.inserted) == 1  # one insert of both rows, nothing set aside


def test_a_fatal_refusal_stops_the_sink() -> None:
    sink = _sink(Store(_Recording(fatal=True), "db"))
    rows, sources = _rows(["a"])
    with pytest.raises(StoreFatal, match="refuses visits"):
        asyncio.run(sink._write(VISITS, rows, sources))


def _sample(name: str, **labels: str) -> float:
    # The registry is the process's: tests compare what it holds before and after.
    return metrics.WORKER.get_sample_value(name, labels) or 0.0


def _metric_deltas(action: Any, *keys: tuple[str, dict[str, str]]) -> list[float]:
    before = [_sample(name, **labels) for name, labels in keys]
    action()
    return [_sample(name, **labels) - old for (name, labels), old in zip(keys, before, strict=True)]


def test_the_metrics_count_batches_rows_rejects_errors_and_retries_per_table() -> None:
    backend = _Recording(poison="BAD", transient=2)
    sink = _sink(Store(backend, "db"))
    batch = Batch()
    for value in ["a", "BAD", "c"]:
        batch.add(VISITS, (value,), "t.visits-effective/0/1")
    batch.add(DEAD_LETTERS, ("d",), "t.visits-dlq/0/1")
    table = {"table": VISITS}
    deltas = _metric_deltas(
        lambda: asyncio.run(sink._store(batch)),
        ("vizita_sink_batches_total", table), ("vizita_sink_rows_total", table),
        ("vizita_sink_rows_total", {"table": DEAD_LETTERS}),
        ("vizita_sink_rows_total", {"table": STORE_REJECTS}),
        ("vizita_sink_rows_rejected_total", table),
        ("vizita_store_errors_total", {"table": VISITS, "kind": "transient"}),
        ("vizita_store_errors_total", {"table": VISITS, "kind": "rows"}),
        ("vizita_store_retries_total", table),
        ("vizita_sink_store_seconds_count", table),
    )  # fmt: skip
    # One batch of visits: 2 rows in, 1 set aside; the store was down twice, then refused
    # the rows for what they hold three times: all three, the half with BAD, BAD alone.
    assert deltas == [1, 2, 1, 1, 1, 2, 3, 2, 1]


def test_a_fatal_refusal_is_counted_as_such() -> None:
    sink = _sink(Store(_Recording(fatal=True), "db"))
    rows, sources = _rows(["a"])

    def write() -> None:
        with pytest.raises(StoreFatal):
            asyncio.run(sink._write(VISITS, rows, sources))

    key = ("vizita_store_errors_total", {"table": VISITS, "kind": "fatal"})
    assert _metric_deltas(write, key) == [1]


def test_every_tables_series_is_there_from_the_start() -> None:
    _sink(Store(_Recording(), "db"))
    for table in (VISITS, DEAD_LETTERS, STORE_REJECTS):
        assert (
            metrics.WORKER.get_sample_value("vizita_sink_rows_total", {"table": table}) is not None
        )
