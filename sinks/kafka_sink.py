"""The sink: reads the stream's output topics and writes the store in batches.

At-least-once, made harmless: offsets are committed only after a batch is stored, and
every row is versioned (ReplacingMergeTree) or keyed by what it is, so a batch written
twice leaves the tables as written once. A message that is no message of its topic
becomes a dead letter (with its topic, partition and offset) instead of stopping the
sink. Store errors are taken by their kind (`sinks.errors`): transient ones are retried
with backoff and jitter for as long as it takes, while the events wait in Kafka; rows
the store refuses are split off until the one at fault is alone, and that one is set
aside in `store_rejects`; a fatal one stops the sink, and so the worker, loudly.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import random
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeAlias

import msgspec
import structlog
from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition

from sinks.errors import Kind, StoreFatal, kind_of
from sinks.schema import (
    ALERT_COLUMNS,
    ALERTS,
    DEAD_LETTER_COLUMNS,
    DEAD_LETTERS,
    INDICATOR_COLUMNS,
    INDICATOR_VALUES,
    STORE_REJECT_COLUMNS,
    STORE_REJECTS,
    VISIT_COLUMNS,
    VISITS,
)
from sinks.store import Store
from vizita.contract import metrics
from vizita.contract.messages import Alert, DecodeError, IndicatorValues, VisitRows, decode
from vizita.contract.settings import Settings
from vizita.contract.topics import (
    DLQ_HEADER_DETAIL,
    DLQ_HEADER_FIELD,
    DLQ_HEADER_REASON,
    DLQ_HEADER_SOURCE,
    TOPIC_ALERTS,
    TOPIC_INDICATORS,
    TOPIC_VISITS_DLQ,
    TOPIC_VISITS_EFFECTIVE,
    sink_group,
)
from vizita.contract.validation import Reason

log = structlog.get_logger(__name__)

Record: TypeAlias = "ConsumerRecord[bytes, bytes]"
Row = tuple[Any, ...]
COLUMNS: dict[str, tuple[str, ...]] = {
    VISITS: VISIT_COLUMNS, INDICATOR_VALUES: INDICATOR_COLUMNS, ALERTS: ALERT_COLUMNS,
    DEAD_LETTERS: DEAD_LETTER_COLUMNS, STORE_REJECTS: STORE_REJECT_COLUMNS,
}  # fmt: skip
_NEWEST_FIRST = 2**63 - 1  # dead_letters keeps the greatest version: the first arrival


def _source(record: Record) -> str:
    return f"{record.topic}/{record.partition}/{record.offset}"


def _received_at(record: Record) -> datetime:
    return datetime.fromtimestamp(record.timestamp / 1000, UTC)


def _header(record: Record, name: str) -> str:
    for key, value in record.headers or ():
        if key == name:
            return bytes(value).decode("utf-8", "replace")
    return ""


def dead_letter_row(
    record: Record, reason: str = "", field: str = "", detail: str = "", source: str = ""
) -> Row:
    """A `dead_letters` row: keyed by the payload, keeping the first arrival."""
    payload = record.value or b""
    received = _received_at(record)
    return (received, reason or _header(record, DLQ_HEADER_REASON) or "unknown",
            field or _header(record, DLQ_HEADER_FIELD),
            detail or _header(record, DLQ_HEADER_DETAIL), payload,
            source or _header(record, DLQ_HEADER_SOURCE) or _source(record),
            hashlib.sha256(payload).digest(),
            _NEWEST_FIRST - int(received.timestamp() * 1000))  # fmt: skip


def visit_rows(record: Record) -> list[tuple[str, Row]]:
    rows = decode(record.value or b"", VisitRows).rows
    return [(VISITS, msgspec.structs.astuple(row)) for row in rows]


def indicator_rows(record: Record) -> list[tuple[str, Row]]:
    rows = decode(record.value or b"", IndicatorValues).rows
    return [(INDICATOR_VALUES, msgspec.structs.astuple(row)) for row in rows]


def alert_rows(record: Record) -> list[tuple[str, Row]]:
    return [(ALERTS, msgspec.structs.astuple(decode(record.value or b"", Alert)))]


def dead_letter_rows(record: Record) -> list[tuple[str, Row]]:
    return [(DEAD_LETTERS, dead_letter_row(record))]


@dataclass
class Batch:
    """Rows per table, each with where it came from (for the rows the store refuses)."""

    rows: dict[str, list[Row]] = field(default_factory=dict)
    sources: dict[str, list[str]] = field(default_factory=dict)

    def add(self, table: str, row: Row, source: str) -> None:
        self.rows.setdefault(table, []).append(row)
        self.sources.setdefault(table, []).append(source)


class _Stopping(Exception):  # a signal within the sink, never raised out of it
    """The sink was asked to stop while a batch still waited for the store."""


class KafkaSink:
    def __init__(self, settings: Settings, store: Store) -> None:
        self.settings = settings
        self.store = store
        self._routes: dict[str, Callable[[Record], list[tuple[str, Row]]]] = {
            settings.topic(TOPIC_VISITS_EFFECTIVE): visit_rows,
            settings.topic(TOPIC_VISITS_DLQ): dead_letter_rows,
            settings.topic(TOPIC_INDICATORS): indicator_rows,
            settings.topic(TOPIC_ALERTS): alert_rows,
        }
        self._consumer: Any = None  # made in run(): aiokafka wants the running loop
        self._stopping = asyncio.Event()
        self.retries = 0  # store attempts that failed and were tried again
        self.rejected = 0  # rows set aside in store_rejects
        self.stored: Counter[str] = Counter()  # rows inserted, per table (progress)
        for table in COLUMNS:  # every table's series from the start, at 0
            metrics.SINK_BATCHES.labels(table)
            metrics.SINK_ROWS.labels(table)

    async def run(self) -> None:
        self._consumer = AIOKafkaConsumer(
            *self._routes,
            bootstrap_servers=self.settings.kafka_bootstrap,
            group_id=sink_group(self.settings.app_id), enable_auto_commit=False,
            auto_offset_reset="earliest", max_poll_records=self.settings.sink_batch_rows,
        )  # fmt: skip
        await self._consumer.start()
        try:
            while not self._stopping.is_set():
                records = await self._collect()
                if not records:
                    continue
                try:
                    await self._store(self._batch(records))
                except _Stopping:
                    return  # nothing committed: the batch is read again at the next start
                await self._consumer.commit()
        finally:
            await self._consumer.stop()

    def stop(self) -> None:
        self._stopping.set()

    async def _collect(self) -> list[Record]:
        """Up to `sink_batch_rows` records, waiting at most `sink_batch_seconds`."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.settings.sink_batch_seconds
        records: list[Record] = []
        while len(records) < self.settings.sink_batch_rows and not self._stopping.is_set():
            left = deadline - loop.time()
            if left <= 0:
                break
            wanted = self.settings.sink_batch_rows - len(records)
            got = await self._consumer.getmany(timeout_ms=int(left * 1000) + 1, max_records=wanted)
            for part in got.values():
                records.extend(part)
        return records

    def _batch(self, records: Sequence[Record]) -> Batch:
        batch = Batch()
        for record in records:
            source = _source(record)
            try:
                rows = self._routes[record.topic](record)
            except (DecodeError, ValueError) as exc:
                log.warning("sink.undecodable", source=source, error=type(exc).__name__)
                metrics.UNDECODABLE.labels("sink").inc()
                detail = f"not a message of {record.topic}: {type(exc).__name__}"
                rows = [(DEAD_LETTERS, dead_letter_row(
                    record, Reason.UNDECODABLE_MESSAGE.value, "", detail, source,
                ))]  # fmt: skip
            for table, row in rows:
                batch.add(table, row, source)
        return batch

    async def _store(self, batch: Batch) -> None:
        for table, rows in batch.rows.items():
            with metrics.SINK_STORE_SECONDS.labels(table).time():
                stored = await self._write(table, rows, batch.sources[table])
            metrics.SINK_BATCHES.labels(table).inc()
            metrics.SINK_ROWS.labels(table).inc(stored)
            self.stored[table] += stored

    async def _write(self, table: str, rows: list[Row], sources: list[str]) -> int:
        """Insert, retrying what is transient; split what the store refuses. Answers
        how many rows went into the table (the others are in store_rejects)."""
        refusal = await self._insert(table, rows)
        if refusal is None:
            return len(rows)
        if len(rows) == 1:
            await self._reject(table, rows[0], sources[0], refusal)
            return 0
        middle = len(rows) // 2
        first = await self._write(table, rows[:middle], sources[:middle])
        return first + await self._write(table, rows[middle:], sources[middle:])

    async def _insert(self, table: str, rows: list[Row]) -> Exception | None:
        """None once stored; the store's refusal when it is about the rows."""
        delay = 0.2
        while True:
            try:
                await asyncio.to_thread(self.store.insert, table, COLUMNS[table], rows)
                return None
            except Exception as exc:  # sorted by kind below; a bug is fatal
                kind = kind_of(exc)
                metrics.STORE_ERRORS.labels(table, kind.value).inc()
                if kind is Kind.ROWS:
                    return exc
                if kind is Kind.FATAL:
                    raise StoreFatal(f"the store refuses {table}: {exc}") from exc
                self.retries += 1
                metrics.STORE_RETRIES.labels(table).inc()
                log.warning("sink.store_unavailable", table=table, retry_in=round(delay, 2),
                            error=str(exc)[:300])  # fmt: skip
            await self._pause(delay)
            delay = min(delay * 2, self.settings.store_retry_max_seconds)

    async def _pause(self, delay: float) -> None:
        """Sleep about `delay` (jittered, so that many workers do not retry in step),
        or until the sink is asked to stop."""
        jittered = delay * random.uniform(0.5, 1.0)  # noqa: S311  # jitter, not secrecy
        try:
            await asyncio.wait_for(self._stopping.wait(), jittered)
        except TimeoutError:
            return
        raise _Stopping

    async def _reject(self, table: str, row: Row, source: str, refusal: Exception) -> None:
        self.rejected += 1
        metrics.SINK_ROWS_REJECTED.labels(table).inc()
        reason = str(refusal).strip().splitlines()[0][:500]
        log.error("sink.row_rejected", table=table, source=source, reason=reason)
        reject = (datetime.now(UTC), table, reason, json.dumps(row, default=str), source)
        if await self._insert(STORE_REJECTS, [reject]) is not None:
            raise StoreFatal(f"the store refuses even its rejects: {refusal}")
        metrics.SINK_ROWS.labels(STORE_REJECTS).inc()

    async def caught_up(self, ends: dict[TopicPartition, int]) -> bool:
        """Whether everything up to `ends` is stored (committed after its batch)."""
        if self._consumer is None:
            return False
        for tp, end in ends.items():
            if end and (await self._consumer.committed(tp) or 0) < end:
                return False
        return True
