"""A Faust table whose changelog writes cannot be lost between processing and commit.

Faust sends a table's changelog through its ProducerBuffer (`send_soon`), and the flush
it runs before committing offsets gives up when a message takes over 0.1 s
(`ProducerBuffer.flush_atmost` returns on the timeout, faust-streaming 0.15.3). Under
load a commit could then pass table writes that never reached the changelog, and after
a crash the table would come back *behind* its committed offsets. Here the agent sends
the writes itself, awaited, before it moves to the next event; Faust acknowledges an
event only then, and its pre-commit flush of the Kafka producer covers everything
already handed to it.
"""

from __future__ import annotations

from typing import Any

import faust


class DurableTable(faust.Table[Any, Any]):
    def __init__(self, app: faust.App, **kwargs: Any) -> None:
        super().__init__(app, **kwargs)
        self._unsent: list[tuple[int | None, Any, Any, Any, Any]] = []

    def _partition(self, key: Any) -> int:
        partition = self.partition_for_key(key)  # the current event's partition
        if partition is None:
            raise RuntimeError("a table is written only while an agent handles an event")
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
        """Send this event's writes; call it before the agent takes the next event."""
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
