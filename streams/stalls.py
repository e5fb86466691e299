"""When a stage has stopped: a partition with events waiting whose processed position
has not moved for a while.

A stage that waits forever on something that never answers (a send, a lock, a
partition that is never handed over) looks alive from outside: the process runs, the
group keeps it, the lag only grows. `StallWatch` turns readings of the partitions'
positions and ends into the partitions that have been stuck for `limit` seconds, so
that the runtime can stop the worker loudly and its supervisor restart it. Pure: the
runtime (`streams.runtime.watch`) reads the consumer and the clock.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class Reading:
    """A partition at one moment: the next offset its stage has processed and
    committed, and the next offset Kafka will write (its end)."""

    position: int
    end: int

    @property
    def waiting(self) -> bool:
        return self.end > self.position


@dataclass(frozen=True)
class Stall:
    """A partition whose stage has stayed at `position` for `seconds` with events up
    to `end` waiting."""

    partition: str
    position: int
    end: int
    seconds: float

    def describe(self) -> str:
        waiting = self.end - self.position
        events = f"{waiting} event{'' if waiting == 1 else 's'}"
        return (f"{self.partition} at offset {self.position} with {events} waiting, "
                f"no progress for {self.seconds:.0f} s")  # fmt: skip


class StallWatch:
    """Remembers, per partition with events waiting, since when its position is what it
    is; a partition that moves, or has nothing waiting, starts over."""

    def __init__(self, limit: float) -> None:
        self.limit = limit
        self._since: dict[str, tuple[int, float]] = {}  # partition -> (position, since)

    def observe(self, now: float, readings: Mapping[str, Reading]) -> list[Stall]:
        """The partitions stuck for `limit` seconds or more, as of `now` (seconds on a
        monotonic clock); a partition missing from `readings` is forgotten."""
        since: dict[str, tuple[int, float]] = {}
        stalls = []
        for partition, reading in sorted(readings.items()):
            if not reading.waiting:
                continue
            position, first = self._since.get(partition, (reading.position, now))
            if position != reading.position:
                first = now
            since[partition] = (reading.position, first)
            if now - first >= self.limit:
                stall = Stall(partition, reading.position, reading.end, now - first)
                stalls.append(stall)
        self._since = since
        return stalls

    def reset(self) -> None:
        """Forget every partition: while the group rebalances or the tables recover, no
        stage is expected to move."""
        self._since = {}
