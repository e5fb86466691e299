"""Tables whose changelog writes cannot be lost between processing and commit, and the
agent loop that makes that so for every agent.

Faust sends a table's changelog through its ProducerBuffer (`send_soon`), and the flush
it runs before committing offsets gives up when a message takes over 0.1 s
(`ProducerBuffer.flush_atmost` returns on the timeout, faust-streaming 0.15.3). Under
load a commit could then pass table writes that never reached the changelog, and after
a crash the table would come back *behind* its committed offsets. A `DurableTable`
keeps its writes instead, and `durable_agent` sends them, awaited, after each event and
before the next: Faust acknowledges an event only then, and its pre-commit flush of the
Kafka producer covers everything already handed to it. No handler has to remember it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import faust
from faust.types import EventT, StreamT

from streams.errors import StreamError

Handler = Callable[[EventT[Any]], Awaitable[Any]]
Done = Callable[[EventT[Any], Any], None]


class DurableTable(faust.Table[Any, Any]):
    def __init__(self, app: faust.App, **kwargs: Any) -> None:
        super().__init__(app, **kwargs)
        self._unsent: list[tuple[int | None, Any, Any, Any, Any]] = []

    def _partition(self, key: Any) -> int:
        partition = self.partition_for_key(key)  # the current event's partition
        if partition is None:
            raise StreamError("a table is written only while an agent handles an event")
        return int(partition)

    # Faust's own versions of these two hand the write to send_changelog (send_soon).
    def on_key_set(self, key: Any, value: Any) -> None:
        partition = self._partition(key)
        self._unsent.append((partition, key, value, None, None))
        self._maybe_set_key_ttl(key, partition)
        self._sensor_on_set(self, key, value)

    def on_key_del(self, key: Any) -> None:
        partition = self._partition(key)
        self._unsent.append((partition, key, None, None, "raw"))
        self._maybe_del_key_ttl(key, partition)
        self._sensor_on_del(self, key)

    async def send_changes(self) -> None:
        """Send the writes made since the last call, each awaited."""
        unsent, self._unsent = self._unsent, []
        for partition, key, value, key_serializer, value_serializer in unsent:
            await self.changelog_topic.send(
                key=key, value=value, partition=partition,
                key_serializer=key_serializer or self.key_serializer,
                value_serializer=value_serializer or self.value_serializer,
            )  # fmt: skip


def durable_table(app: faust.App, name: str, partitions: int) -> DurableTable:
    """A table of JSON keys and values (Faust's default codec), registered with the app."""
    table = DurableTable(app, name=name, default=None, partitions=partitions)
    app.tables.add(table)
    return table


async def send_table_changes(app: faust.App) -> None:
    for table in app.tables.values():
        if isinstance(table, DurableTable):
            await table.send_changes()


def durable_agent(
    app: faust.App, topic: Any, name: str, handle: Handler, done: Done | None = None
) -> None:
    """Run `handle` on each event of `topic` as the agent `name`; after each event the
    writes of every durable table are sent before the next event is taken, then
    `done(event, what handle answered)` is told."""

    async def agent(stream: StreamT[Any]) -> None:
        async for event in stream.events():
            outcome = await handle(event)
            await send_table_changes(app)
            if done is not None:
                done(event, outcome)

    app.agent(topic, name=name)(agent)
