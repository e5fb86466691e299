"""Stage 1, keyed by `visit_id`, a batch of events at a time:

    visits ──validate──┬─ invalid ───────────────────────────────▶ visits-dlq (original bytes)
                       ├─ wrong key ── re-keyed by visit_id ─────▶ visits
                       └─ valid ── visit-state (fold) ─┬─────────▶ visits-effective (rows)
                                                        └─────────▶ visit-contributions
                                                          (entries per scope; days seen)

A batch's visits are folded from their stored states, and only visits whose row changed
send anything: the table is written after Kafka acknowledged the batch's messages
(`streams.runtime.durable`), so a state is never ahead of what was sent.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

import faust
import structlog
from faust.types import EventT

from streams.errors import StreamError
from streams.indicators import entry_of, scopes_of, seen_day
from streams.revisions import VisitState, apply_event, state_from_bytes, state_to_bytes
from streams.runtime.durable import DurableTable, delivered, durable_table
from streams.runtime.shared import StageTopics
from vizita.contract import metrics
from vizita.contract.events import Event
from vizita.contract.messages import DaysSeen, ScopeEntries, VisitEntry, VisitRows, encode
from vizita.contract.topics import scope_partition
from vizita.contract.validation import Reason, Rejection, validate_payload

log = structlog.get_logger(__name__)

ROWS_PER_MESSAGE = 500  # a message stays far below Kafka's 1 MiB limit
ENTRIES_PER_MESSAGE = 1000


def received_at(timestamp: float | None) -> datetime | None:
    """When Kafka received a record (its timestamp, in seconds), if it says."""
    return datetime.fromtimestamp(timestamp, UTC) if timestamp and timestamp > 0 else None


def internal_error(exc: BaseException) -> Rejection:
    """What a valid event's dead letter says when handling it failed twice: the kind of
    failure only, never its message (which could echo the payload)."""
    return Rejection(Reason.INTERNAL_ERROR, "", f"internal error: {type(exc).__name__}")


def chunks(items: Sequence[Any], size: int) -> Iterator[list[Any]]:
    for start in range(0, len(items), size):
        yield list(items[start : start + size])


@dataclass
class Batch:
    """What one batch of `visits` leads to, before anything is sent."""

    stored: dict[str, VisitState | None] = field(default_factory=dict)  # before the batch
    states: dict[str, VisitState] = field(default_factory=dict)  # after it
    partitions: dict[str, int] = field(default_factory=dict)  # visit_id -> its partition
    dead: list[tuple[Any, Rejection]] = field(default_factory=list)  # (message, why)
    rekeyed: list[tuple[bytes, Any]] = field(default_factory=list)  # (key, message)
    days: list[date] = field(default_factory=list)
    outcomes: Counter[str] = field(default_factory=Counter)

    def changed(self) -> list[tuple[str, VisitState]]:
        return [(visit_id, state) for visit_id, state in self.states.items()
                if self.stored[visit_id] != state]  # fmt: skip


class RevisionStage:
    def __init__(self, app: faust.App, topics: StageTopics, partitions: int) -> None:
        self.topics = topics
        self.partitions = partitions
        self.states: DurableTable = durable_table(app, "visit-state", partitions)
        # The days this process has told stage 2 about: another batch within them says
        # nothing new (stage 2 keeps the widest range it was told, durably).
        self.told: tuple[date, date] | None = None

    async def handle(self, events: Sequence[EventT[Any]]) -> Counter[str]:
        batch = Batch()
        for event in events:
            self._take(batch, event.message)
        await delivered(self._sends(batch))
        for visit_id, state in batch.changed():
            self.states.put(visit_id.encode(), state_to_bytes(state), batch.partitions[visit_id])
        count(batch, len(events))
        return batch.outcomes

    def _take(self, batch: Batch, message: Any) -> None:
        try:
            self._fold(batch, message)
        except StreamError:
            raise  # the worker's fault (its tables), not the event's: stop, unacked
        except Exception:  # a bug on one event: try once more, then dead-letter it
            try:
                self._fold(batch, message)
            except StreamError:
                raise
            except Exception as exc:
                log.exception("stage1.event_failed", source=_source(message))
                batch.dead.append((message, internal_error(exc)))
                batch.outcomes["dead_lettered"] += 1

    def _fold(self, batch: Batch, message: Any) -> None:
        value = message.value if isinstance(message.value, bytes) else b""
        result = validate_payload(value, received_at=received_at(message.timestamp))
        if isinstance(result, Rejection):
            batch.dead.append((message, result))
            batch.outcomes["dead_lettered"] += 1
            return
        event = result.event
        key = event.visit_id.encode()
        if message.key != key:
            # A visit's revisions must meet in one partition; send it where it belongs.
            batch.rekeyed.append((key, message))
            batch.outcomes["rekeyed"] += 1
            return
        self._apply(batch, event, message.partition)

    def _apply(self, batch: Batch, event: Event, partition: int) -> None:
        visit_id = event.visit_id
        if visit_id not in batch.states:
            stored = self.states.read(visit_id.encode(), partition)
            batch.stored[visit_id] = state_from_bytes(stored) if stored else None
        applied = apply_event(batch.states.get(visit_id) or batch.stored[visit_id], event)
        batch.states[visit_id] = applied.state
        batch.partitions[visit_id] = partition
        day = seen_day(event)
        if day is not None:
            batch.days.append(day)
        batch.outcomes["duplicate" if applied.duplicate else "valid"] += 1

    def _sends(self, batch: Batch) -> Iterator[Any]:
        changed = batch.changed()
        for rows in chunks([state.visit for _, state in changed], ROWS_PER_MESSAGE):
            yield self.topics.effective.send(value=encode(VisitRows(rows)), force=True)
        yield from self._entries(batch, changed)
        yield from self._days(batch)
        for message, rejection in batch.dead:
            yield self._dead_letter(message, rejection)
        for key, message in batch.rekeyed:
            yield self.topics.visits.send(
                key=key, value=message.value, timestamp=message.timestamp, force=True
            )

    def _entries(self, batch: Batch, changed: list[tuple[str, VisitState]]) -> Iterator[Any]:
        by_scope: dict[str, list[tuple[str, VisitEntry]]] = {}
        for visit_id, state in changed:
            entry = entry_of(state)
            for scope in scopes_of(state):
                by_scope.setdefault(scope, []).append((visit_id, entry))
        for scope, entries in sorted(by_scope.items()):
            for part in chunks(entries, ENTRIES_PER_MESSAGE):
                yield self.topics.contributions.send(
                    key=scope.encode(), value=encode(ScopeEntries(scope, part)),
                    partition=scope_partition(scope, self.partitions), force=True,
                )  # fmt: skip

    def _days(self, batch: Batch) -> Iterator[Any]:
        if not batch.days:
            return
        first, last = min(batch.days), max(batch.days)
        if self.told is not None:
            if self.told[0] <= first and last <= self.told[1]:
                return
            first, last = min(first, self.told[0]), max(last, self.told[1])
        self.told = (first, last)
        message = encode(DaysSeen(first, last))
        for partition in range(self.partitions):
            yield self.topics.contributions.send(
                key=b"days", value=message, partition=partition, force=True
            )

    def _dead_letter(self, message: Any, rejection: Rejection) -> Any:
        # The original bytes and timestamp travel along: a retried dead letter is identical.
        return self.topics.dlq.send(
            key=message.key, value=message.value, headers=rejection.dlq_headers(_source(message)),
            timestamp=message.timestamp, force=True,
        )  # fmt: skip


def count(batch: Batch, events: int) -> None:
    """The batch in the metrics, once its messages are acknowledged: one increment per
    counter and batch, by the batch's own tallies."""
    outcomes = batch.outcomes
    metrics.EVENTS_IN.inc(events)
    metrics.EVENTS_VALID.inc(outcomes["valid"] + outcomes["duplicate"])
    metrics.EVENTS_DUPLICATE.inc(outcomes["duplicate"])
    metrics.EVENTS_REKEYED.inc(outcomes["rekeyed"])
    for reason, dead in Counter(rejection.reason.value for _, rejection in batch.dead).items():
        metrics.EVENTS_DEAD_LETTERED.labels(reason).inc(dead)


def _source(message: Any) -> str:
    return f"{message.topic}/{message.partition}/{message.offset}"
