"""Tables whose writes are never lost between processing and commit, and the batch loop
every agent runs in, which makes that so without any handler having to remember it.

A stage handles a batch of events and sends what it produces, each message awaited
until Kafka acknowledges it; only then does the loop send the batch's table writes
(awaited too), and only then does it acknowledge the events. So a table is never
*ahead* of what reached the output topics: after a crash, the events whose effects are
missing are processed again, and the stages fold a repeat into the same state. Faust's
own path does not guarantee this: it buffers changelog writes and its pre-commit flush
gives up after 0.1 s (`ProducerBuffer.flush_atmost`, faust-streaming 0.15.3).

An exception out of a handler is a fault the stage cannot absorb (bad input never
raises: the handlers dead-letter it). The loop then acknowledges nothing more, stops
taking events and reports the fault to `Health`; the runner stops the worker loudly,
and the unacknowledged batch is processed again after the restart.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import faust
import rocksdict
import structlog
from faust.types import AppT, EventT

from streams.errors import TableUnavailable

log = structlog.get_logger(__name__)

BatchHandler = Callable[[Sequence[EventT[Any]]], Awaitable[None]]


class DurableTable(faust.Table[bytes, bytes]):
    """A table of bytes keys and values, one RocksDB database per partition, whose
    writes name their partition (the partition of the source topic the key belongs to)
    and wait for `send_changes`.

    A database holds only what its changelog holds: `send_changes` writes it after
    Kafka acknowledged the records, with the changelog offset they end at in the same
    write batch (Faust's own persisted offset). A restarted worker, or one that takes
    a partition back, then reads only the changelog's tail. Faust's own writes pick the
    database from the current event, which in a batch is not the key's."""

    def __init__(self, app: faust.App, **kwargs: Any) -> None:
        super().__init__(app, **kwargs)
        self._unsent: dict[int, dict[bytes, bytes]] = {}
        self._sending: dict[int, dict[bytes, bytes]] = {}
        self._recovered_into: set[int] = set()

    def read(self, key: bytes, partition: int) -> bytes | None:
        for pending in (self._unsent, self._sending):
            value = pending.get(partition, {}).get(key)
            if value is not None:
                return value
        with self._unavailable_as_error(partition):
            stored: bytes | None = self._database(partition).get(key)
        return stored

    def put(self, key: bytes, value: bytes, partition: int) -> None:
        self._unsent.setdefault(partition, {})[key] = value

    def items_in(self, partitions: Iterable[int]) -> Iterator[tuple[bytes, bytes]]:
        """Every key and value of these partitions, the writes not yet sent included."""
        offset_key = self.data.offset_key  # type: ignore[attr-defined]  # faust's RocksDB store
        for partition in sorted(partitions):
            pending = {**self._sending.get(partition, {}), **self._unsent.get(partition, {})}
            with self._unavailable_as_error(partition):
                stored = list(self._database(partition).items())
            for key, value in stored:
                if key != offset_key and key not in pending:
                    yield key, value
            yield from pending.items()

    async def send_changes(self) -> None:
        """Send the writes made since the last call (the last write of a key only),
        wait until Kafka has them all, then write them to the databases: one record
        batch per partition and 256 KiB, straight to the Kafka client. A message at a
        time through Faust's topic costs some 50 µs of the one core, and a batch's table
        writes are most of its messages."""
        self._sending, self._unsent = self._unsent, {}
        if not self._sending:
            return
        topic = self.changelog_topic.get_topic_name()
        producer = _kafka_producer(self.app)
        sent: list[tuple[int, int, Any]] = []  # (partition, records, delivery)
        for partition, records in sorted(self._sending.items()):
            for batch in _record_batches(producer, list(records.items())):
                count = batch.record_count()
                delivery = await producer.send_batch(batch, topic, partition=partition)
                sent.append((partition, count, delivery))
        ends: dict[int, int] = {}
        for (partition, count, _), metadata in zip(
            sent, await asyncio.gather(*(d for _, _, d in sent)), strict=True
        ):
            ends[partition] = max(ends.get(partition, -1), metadata.offset + count - 1)
        for partition, records in self._sending.items():
            self.apply_changelog(partition, records.items(), ends[partition])
        self._sending = {}

    def apply_changelog_batch(self, batch: Iterable[EventT[Any]]) -> None:
        """Faust's recovery writes what others wrote since this database's offset."""
        events = list(batch)
        self._recovered_into.update(event.message.partition for event in events)
        super().apply_changelog_batch(events)

    def take_recovered(self) -> set[int]:
        """The partitions Faust's recovery has written into since the last call."""
        recovered, self._recovered_into = self._recovered_into, set()
        return recovered

    def stored_offset(self, partition: int) -> int:
        """The last changelog offset this partition's database holds, -1 for none."""
        with self._unavailable_as_error(partition):
            stored = self._database(partition).get(self.data.offset_key)  # type: ignore[attr-defined]  # faust's RocksDB store
        return -1 if stored is None else int(stored)

    def close_databases(self) -> None:
        """Close the databases opened so far; Faust opens those it is assigned again."""
        databases = self.data._dbs  # type: ignore[attr-defined]  # faust's RocksDB store
        for partition in list(databases):
            with self._unavailable_as_error(partition):
                databases.pop(partition).close()

    def apply_changelog(
        self, partition: int, records: Iterable[tuple[bytes, bytes | None]], last_offset: int
    ) -> None:
        """Write records the changelog holds, up to and including `last_offset`, with
        that offset. With RocksDB's write-ahead log, as Faust's recovery writes: after a
        crash a database never has an offset ahead of its records."""
        batch = rocksdict.WriteBatch(raw_mode=True)
        for key, value in records:
            if value is None:  # a tombstone
                batch.delete(key)
            else:
                batch.put(key, value)
        batch.put(self.data.offset_key, str(last_offset).encode())  # type: ignore[attr-defined]  # faust's RocksDB store
        with self._unavailable_as_error(partition):
            self._database(partition).write(batch)

    def _database(self, partition: int) -> Any:
        return self.data._db_for_partition(partition)  # type: ignore[attr-defined]  # faust's RocksDB store

    @contextlib.contextmanager
    def _unavailable_as_error(self, partition: int) -> Iterator[None]:
        try:
            yield
        except Exception as exc:  # rocksdict raises its own Exception subclasses
            raise TableUnavailable(f"{self.name} partition {partition}: {exc!r}") from exc


def _kafka_producer(app: AppT) -> Any:
    """The aiokafka producer under Faust's (which has no call for a record batch)."""
    return app.producer._ensure_producer()  # type: ignore[attr-defined]  # faust's aiokafka driver


def _record_batches(producer: Any, records: Sequence[tuple[bytes, bytes | None]]) -> Iterator[Any]:
    batch = producer.create_batch()
    for key, value in records:
        if batch.append(key=key, value=value, timestamp=None) is None:  # full
            yield batch
            batch = producer.create_batch()
            batch.append(key=key, value=value, timestamp=None)  # the first always fits
    yield batch


def durable_table(app: faust.App, name: str, partitions: int) -> DurableTable:
    # bytes keys and values: Faust's codec for them is "raw"
    table = DurableTable(
        app, name=name, default=None, partitions=partitions, key_type=bytes, value_type=bytes,
        options=rocksdb_options(),
    )  # fmt: skip
    app.tables.add(table)
    return table


def rocksdb_options() -> dict[str, int]:
    """Small buffers and caches: Faust's defaults (three buffers of 64 MiB and a 2 GiB cache
    per database) are sized for one table, and a worker has a database per table and partition.
    A fresh dict for each table: Faust's store pops keys from it."""
    return {
        "write_buffer_size": 4 * 1024 * 1024,
        "max_write_buffer_number": 2,
        "block_cache_size": 8 * 1024 * 1024,
    }


async def delivered(sends: Iterable[Awaitable[Awaitable[Any]]]) -> None:
    """Send messages (each a `topic.send(..., force=True)`) and wait until Kafka
    acknowledged every one."""
    pending = [await send for send in sends]
    await asyncio.gather(*pending)


@dataclass
class Health:
    """The first fault any agent could not absorb, for the runner to act on."""

    failures: list[tuple[str, BaseException]] = field(default_factory=list)
    _failed: asyncio.Event = field(default_factory=asyncio.Event)

    def fail(self, where: str, exc: BaseException) -> None:
        log.error("stream.failed", agent=where, error=repr(exc), exc_info=exc)
        self.failures.append((where, exc))
        self._failed.set()

    async def wait_failed(self) -> tuple[str, BaseException]:
        await self._failed.wait()
        return self.failures[0]


def batch_agent(
    app: faust.App, topic: Any, name: str, handle: BatchHandler, *,
    tables: Sequence[DurableTable], health: Health, max_batch: int, within: float,
) -> None:  # fmt: skip
    """Run `handle` on batches of `topic`'s events as the agent `name`: the handler's
    sends are awaited by the handler, then the tables' writes, then the acks."""

    async def agent(stream: Any) -> None:  # noack_take is not in faust's stubs
        async for events in stream.noack_take(max_batch, within=within):
            try:
                await handle(events)
                for table in tables:
                    await table.send_changes()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # a fault, not bad input: stop, loudly, unacked
                health.fail(name, exc)
                await asyncio.Event().wait()  # hold the batch until the worker stops
            for event in events:
                await stream.ack(event)

    app.agent(topic, name=name)(agent)
