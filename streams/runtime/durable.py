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
from collections.abc import Awaitable, Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import faust
import structlog
from faust.types import AppT, EventT

log = structlog.get_logger(__name__)

BatchHandler = Callable[[Sequence[EventT[Any]]], Awaitable[None]]


class DurableTable(faust.Table[bytes, bytes]):
    """A table of bytes keys and values whose writes name their changelog partition
    (the partition of the source topic the key belongs to) and wait for `send_changes`."""

    def __init__(self, app: faust.App, **kwargs: Any) -> None:
        super().__init__(app, **kwargs)
        self._unsent: dict[bytes, tuple[int, bytes | None]] = {}

    def put(self, key: bytes, value: bytes, partition: int) -> None:
        self.data[key] = value
        self._unsent[key] = (partition, value)

    def forget(self, key: bytes, partition: int) -> None:
        self.data.pop(key, None)
        self._unsent[key] = (partition, None)

    async def send_changes(self) -> None:
        """Send the writes made since the last call (the last write of a key only),
        and wait until Kafka has them all: one record batch per partition and 256 KiB,
        straight to the Kafka client. A message at a time through Faust's topic costs
        some 50 µs of the one core, and a batch's table writes are most of its messages."""
        unsent, self._unsent = self._unsent, {}
        if not unsent:
            return
        by_partition: dict[int, list[tuple[bytes, bytes | None]]] = {}
        for key, (partition, value) in unsent.items():
            by_partition.setdefault(partition, []).append((key, value))
        topic = self.changelog_topic.get_topic_name()
        producer = _kafka_producer(self.app)
        sent = []
        for partition, records in sorted(by_partition.items()):
            for batch in _record_batches(producer, records):
                sent.append(await producer.send_batch(batch, topic, partition=partition))
        await asyncio.gather(*sent)


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
        app, name=name, default=None, partitions=partitions, key_type=bytes, value_type=bytes
    )
    app.tables.add(table)
    return table


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
