"""The sink: reads the stream's output topics and writes the store in batches.

At-least-once, made harmless: offsets are committed only after a batch is stored, and
every row is versioned (ReplacingMergeTree) or keyed by where it came from, so a batch
written twice leaves the tables as written once. While the store is unavailable the
sink retries with backoff and commits nothing: the events wait in Kafka.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

import structlog
from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition

from sinks.errors import StoreUnavailable
from sinks.schema import (
    ALERT_COLUMNS,
    ALERTS,
    DEAD_LETTER_COLUMNS,
    DEAD_LETTERS,
    INDICATOR_COLUMNS,
    INDICATOR_VALUES,
    VISIT_COLUMNS,
    VISITS,
)
from sinks.store import Store
from vizita.contract.messages import Alert, IndicatorValue, VisitRow
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

log = structlog.get_logger(__name__)

Rows = dict[str, list[tuple[Any, ...]]]


def visit_row_values(value: bytes) -> tuple[Any, ...]:
    """The `visits` row of one `visits-effective` message, in column order."""
    row = VisitRow.model_validate_json(value)
    return tuple(getattr(row, column) for column in VISIT_COLUMNS)


def indicator_row_values(value: bytes) -> tuple[Any, ...]:
    """An `indicator_values` row; the newest computation of a key wins."""
    row = IndicatorValue.model_validate_json(value)
    version = int(row.computed_at.timestamp() * 1_000_000)
    data = row.model_dump()
    return tuple(version if c == "version" else data[c] for c in INDICATOR_COLUMNS)


def alert_row_values(value: bytes) -> tuple[Any, ...]:
    data = Alert.model_validate_json(value).model_dump()
    return tuple(data[c] for c in ALERT_COLUMNS)


def _header(record: ConsumerRecord[bytes, bytes], name: str) -> str:
    for key, value in record.headers or ():
        if key == name:
            return bytes(value).decode("utf-8", "replace")
    return ""


def dead_letter_row(record: ConsumerRecord[bytes, bytes]) -> tuple[Any, ...]:
    received_at = datetime.fromtimestamp(record.timestamp / 1000, UTC)
    source = (
        _header(record, DLQ_HEADER_SOURCE) or f"{record.topic}/{record.partition}/{record.offset}"
    )
    return (received_at, _header(record, DLQ_HEADER_REASON) or "unknown",
            _header(record, DLQ_HEADER_FIELD),
            _header(record, DLQ_HEADER_DETAIL), record.value or b"", source)  # fmt: skip


class KafkaSink:
    def __init__(self, settings: Settings, store: Store) -> None:
        self.settings = settings
        self.store = store
        # topic name -> (table, columns, row maker)
        self._routes: dict[str, tuple[str, tuple[str, ...], Callable[[Any], tuple[Any, ...]]]] = {
            settings.topic(TOPIC_VISITS_EFFECTIVE): (VISITS, VISIT_COLUMNS, visit_row_values),
            settings.topic(TOPIC_VISITS_DLQ): (DEAD_LETTERS, DEAD_LETTER_COLUMNS, dead_letter_row),
            settings.topic(TOPIC_INDICATORS): (
                INDICATOR_VALUES,
                INDICATOR_COLUMNS,
                indicator_row_values,
            ),
            settings.topic(TOPIC_ALERTS): (ALERTS, ALERT_COLUMNS, alert_row_values),
        }
        self._consumer = AIOKafkaConsumer(
            *self._routes,
            bootstrap_servers=settings.kafka_bootstrap, group_id=sink_group(settings.app_id),
            enable_auto_commit=False, auto_offset_reset="earliest",
            max_poll_records=settings.sink_batch_rows,
        )  # fmt: skip
        self._stopping = asyncio.Event()

    async def run(self) -> None:
        await self._consumer.start()
        try:
            while not self._stopping.is_set():
                batch = await self._collect()
                if batch:
                    await self._store(batch)
                    await self._consumer.commit()
        finally:
            await self._consumer.stop()

    def stop(self) -> None:
        self._stopping.set()

    async def _collect(self) -> list[ConsumerRecord[bytes, bytes]]:
        """Up to `sink_batch_rows` records, waiting at most `sink_batch_seconds`."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.settings.sink_batch_seconds
        records: list[ConsumerRecord[bytes, bytes]] = []
        while len(records) < self.settings.sink_batch_rows and not self._stopping.is_set():
            left = deadline - loop.time()
            if left <= 0:
                break
            wanted = self.settings.sink_batch_rows - len(records)
            got = await self._consumer.getmany(timeout_ms=int(left * 1000) + 1, max_records=wanted)
            for part in got.values():
                records.extend(part)
        return records

    def _rows(self, batch: Sequence[ConsumerRecord[bytes, bytes]]) -> Rows:
        rows: Rows = defaultdict(list)
        for record in batch:
            table, _, make = self._routes[record.topic]
            if record.value is not None:
                # Dead letters keep their headers, so they take the whole record.
                rows[table].append(make(record if table == DEAD_LETTERS else record.value))
        return rows

    async def _store(self, batch: Sequence[ConsumerRecord[bytes, bytes]]) -> None:
        columns = {table: cols for table, cols, _ in self._routes.values()}
        for table, table_rows in self._rows(batch).items():
            await self._write_with_retry(table, columns[table], table_rows)

    async def _write_with_retry(self, table: str, columns: Sequence[str], rows: list[Any]) -> None:
        delay = 0.2
        while True:
            try:
                await asyncio.to_thread(self.store.insert, table, columns, rows)
                return
            except StoreUnavailable as exc:
                log.warning("sink.store_unavailable", table=table, retry_in=delay, error=str(exc))
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.settings.store_retry_max_seconds)

    async def caught_up(self, ends: dict[TopicPartition, int]) -> bool:
        """Whether everything up to `ends` is stored (committed after its batch)."""
        for tp, end in ends.items():
            if end and (await self._consumer.committed(tp) or 0) < end:
                return False
        return True
