"""Stage 2: the scopes (38 municipalities and ALL) spread over the partitions of
`visit-contributions`, each computed where its entries are (`scope_partition`):

    visit-contributions ── scope-entries (LWW by key) ── rollup ──▶ indicators
      (entries, days seen) └── ticks (clock) ──────── alert-state ──▶ alerts

Per partition it keeps, durably: every entry sent to its scopes (with the offset that
brought it and the first day it changed), the range of days seen, each alert's state,
the offset it has computed up to and the days it computed. The rollup is derived from
the entries, for the scopes this worker owns, and built when it takes a partition on;
it then computes the rows of the days changed since the partition's last computation.
Rows and alerts are sent, and acknowledged by Kafka, before the tables record that they
were (`streams.runtime.durable`).
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

import faust
import structlog
from faust.types import TP, EventT

from streams.alerts import next_state
from streams.indicators import Value
from streams.rollup import Rollup, supersedes
from streams.runtime.durable import DurableTable, delivered, durable_table
from streams.runtime.shared import StageTopics, StreamStats
from streams.runtime.stage1 import chunks
from vizita.contract import metrics
from vizita.contract.days import LOCAL_TZ
from vizita.contract.indicators import ALERT_WINDOW, COUNTRYWIDE_INDICATORS, INDICATORS
from vizita.contract.messages import (
    Alert,
    Computed,
    DaysSeen,
    DecodeError,
    IndicatorValue,
    IndicatorValues,
    ScopeEntries,
    StageTwoMessage,
    StoredEntry,
    Tick,
    VisitEntry,
    decode,
    encode,
)
from vizita.contract.municipalities import ALL_KOSOVO, MUNICIPALITIES, SCOPES
from vizita.contract.targets import Reading, Target, Targets
from vizita.contract.topics import scope_partition
from vizita.contract.validation import Reason, Rejection

log = structlog.get_logger(__name__)

PROGRESS_TABLE = "stage2-progress"
ROWS_PER_MESSAGE = 2000
# While behind, a partition computes at most every this many times a computation's
# cost, and at most every this many seconds: otherwise a backfill spends its time
# sending rows the next contributions change again.
COMPUTE_COST_FACTOR = 4.0
COMPUTE_MIN_SECONDS = 2.0
# How many messages may follow a tick in its partition with the tick still at the head:
# live, stage 1 sends each partition a few messages a second, so a tick is often not
# the very last one, and holding its computation back for COMPUTE_MIN_SECONDS would put
# seconds on the freshness of its rows. A backfill is thousands of messages behind.
HEAD_BACKLOG = 64


def progress_key(partition: int) -> bytes:
    return f"settled/{partition}".encode()


def _computed_key(partition: int) -> bytes:
    return f"computed/{partition}".encode()


def _days_key(partition: int) -> bytes:
    return f"days/{partition}".encode()


def _entry_key(scope: str, visit_id: str) -> bytes:
    return f"{scope}|{visit_id}".encode()


@dataclass
class Partition:
    """What stage 2 knows of one partition it owns, besides its tables."""

    scopes: tuple[str, ...]
    # The end of the partition when this worker took it on: a tick before it was seen
    # by the worker that owned the partition before, which may have sent rows at that
    # tick's offset (as version) from entries this table has since moved past.
    computes_from: int = 0
    computed: tuple[date, date] | None = None  # (first day, clock day) last computed
    next_compute: float = 0.0  # monotonic time before which a tick with a backlog skips


@dataclass
class Pending:
    """One batch's work for one partition: the last tick that is due, and what to send."""

    tick: tuple[int, Tick] | None = None  # (offset, tick)
    sends: list[Any] = field(default_factory=list)


class ScopeStage:
    def __init__(
        self, app: faust.App, topics: StageTopics, targets: Targets, partitions: int,
        stats: StreamStats,
    ) -> None:  # fmt: skip
        self.app, self.topics, self.targets = app, topics, targets
        self.partitions, self.stats = partitions, stats
        self.entries = durable_table(app, "scope-entries", partitions)
        self.days = durable_table(app, "days-seen", partitions)
        self.alert_states = durable_table(app, "alert-state", partitions)
        self.progress = durable_table(app, PROGRESS_TABLE, partitions)
        self.tables: tuple[DurableTable, ...] = (
            self.entries, self.days, self.alert_states, self.progress,
        )  # fmt: skip
        self.rollup = Rollup()
        self.owned: dict[int, Partition] = {}
        # After a rebalance Faust reads each table partition's changelog from its
        # database's offset, maybe more than once: a partition this worker still owns
        # gets records only if another worker wrote it meanwhile, and then its scopes
        # are stale, to be built again at the next batch.
        self.entries.on_recover(self._recovered)

    async def _recovered(self) -> None:
        changed = set().union(*(table.take_recovered() for table in self.tables))
        for partition in changed & set(self.owned):
            for scope in self.owned.pop(partition).scopes:
                self.rollup.drop(scope)

    # --- a batch ---------------------------------------------------------------------------

    async def handle(self, events: Sequence[EventT[Any]]) -> None:
        await delivered(await self._reconcile())
        pending: dict[int, Pending] = {}
        for event in events:
            message = event.message
            work = pending.setdefault(message.partition, Pending())
            self._take(work, message)
        for partition, work in sorted(pending.items()):
            if work.tick is not None and partition in self.owned:
                await self._compute(partition, *work.tick)
            await delivered(work.sends)

    def _take(self, work: Pending, message: Any) -> None:
        try:
            decoded = decode(message.value or b"", StageTwoMessage)
            if isinstance(decoded, ScopeEntries):
                self._entries(message.partition, message.offset, decoded)
            elif isinstance(decoded, DaysSeen):
                self._widen(message.partition, decoded)
            elif self._due(message):
                work.tick = (message.offset, decoded)
        except (DecodeError, ValueError) as exc:
            work.sends.append(self._dead_letter(message, exc))

    def _entries(self, partition: int, offset: int, message: ScopeEntries) -> None:
        scope = message.scope
        if scope_partition(scope, self.partitions) != partition:
            raise ValueError(f"entries of {scope} on partition {partition}")
        owned = partition in self.owned
        settled = self._settled(partition)
        for visit_id, entry in message.entries:
            key = _entry_key(scope, visit_id)
            stored = self.entries.read(key, partition)
            was = decode(stored, StoredEntry) if stored else None
            old = None if was is None else was.entry
            if supersedes(entry, old):
                kept = StoredEntry(entry, offset, _changed_from(entry, was, settled))
                self.entries.put(key, encode(kept), partition)
                if owned:
                    self.rollup.replace(scope, visit_id, old, entry)

    def _widen(self, partition: int, seen: DaysSeen) -> None:
        known = self._known_days(partition)
        widened = seen if known is None else DaysSeen(min(known.first, seen.first),
                                                      max(known.last, seen.last))  # fmt: skip
        if widened != known:
            self.days.put(_days_key(partition), encode(widened), partition)

    def _known_days(self, partition: int) -> DaysSeen | None:
        stored = self.days.read(_days_key(partition), partition)
        known: DaysSeen | None = decode(stored, DaysSeen) if stored else None
        return known

    def _due(self, message: Any) -> bool:
        """Whether a tick computes. At the head of the topic (HEAD_BACKLOG) every tick
        does. Further behind, computing at most every COMPUTE_COST_FACTOR times its own
        cost keeps the time on contributions; the tick at the head computes everything."""
        owned = self.owned.get(message.partition)
        if owned is None or message.offset < owned.computes_from:
            return False
        return _backlog(self.app, message.tp, message.offset) <= HEAD_BACKLOG or (
            time.monotonic() >= owned.next_compute
        )

    def _dead_letter(self, message: Any, exc: BaseException) -> Any:
        source = f"{message.topic}/{message.partition}/{message.offset}"
        why = Rejection(
            Reason.UNDECODABLE_MESSAGE, "", f"not a stage-2 message: {type(exc).__name__}"
        )
        log.warning("stage2.undecodable", source=source, error=type(exc).__name__)
        metrics.UNDECODABLE.labels("stage2").inc()
        return self.topics.dlq.send(
            key=message.key, value=message.value or b"", headers=why.dlq_headers(source),
            timestamp=message.timestamp, force=True,
        )  # fmt: skip

    # --- owning partitions -----------------------------------------------------------------

    async def _reconcile(self) -> list[Any]:
        """After a rebalance: give up the scopes of partitions another worker owns now,
        and build the scopes of partitions this one took on, from their entries. They
        compute from their first tick past the partition's end (see `Partition`), all
        their rows at once. The last alert of each of their keys is sent again: an
        alert's state is written before the alert is sent, so the alert may be what a
        crash lost."""
        assigned = self._assigned()
        if assigned == set(self.owned):
            return []
        for partition in set(self.owned) - assigned:
            for scope in self.owned.pop(partition).scopes:
                self.rollup.drop(scope)
        started = time.monotonic()
        taken = {p: _scopes_of(p, self.partitions) for p in assigned - set(self.owned)}
        since = self._build(taken)
        ends = await self._ends(set(taken))
        for partition, scopes in taken.items():
            computed = self._computed(partition)
            self.owned[partition] = Partition(scopes, ends[partition], computed)
        if taken:
            log.info(
                "stage2.took_on", partitions=sorted(taken), scopes=sum(map(len, taken.values())),
                since={p: str(day) for p, day in since.items()},
                seconds=round(time.monotonic() - started, 3),
            )  # fmt: skip
        self._count_active_alerts()
        return [self._send_alert(alert) for alert in self._last_alerts(set(taken))]

    def _last_alerts(self, partitions: set[int]) -> Iterator[Alert]:
        # An alert's state is kept in the partition that computes it (`_home`).
        for _, value in self.alert_states.items_in(partitions):
            yield decode(value, Alert)

    def _home(self, municipality: str, indicator: str) -> int:
        """The partition that computes an indicator of a municipality (and keeps its
        alert's state): the municipality's, or for a countrywide indicator ALL's."""
        scope = ALL_KOSOVO if indicator in COUNTRYWIDE_INDICATORS else municipality
        return scope_partition(scope, self.partitions)

    def _count_active_alerts(self) -> None:
        """The alerts gauge, from the states of the partitions this worker owns (each
        partition is one worker's: summed over workers, every alert counts once)."""
        raised = dict.fromkeys(INDICATORS, 0)
        for alert in self._last_alerts(set(self.owned)):
            if alert.state == "raised":
                raised[alert.indicator] += 1
        for indicator, count in raised.items():
            metrics.ALERTS_ACTIVE.labels(indicator).set(count)

    def _send_alert(self, alert: Alert) -> Any:
        return self.topics.alerts.send(
            key=alert.municipality.encode(), value=encode(alert), force=True
        )

    async def _ends(self, partitions: set[int]) -> dict[int, int]:
        if not partitions:
            return {}
        topic = self.topics.contributions.get_topic_name()
        ends = await self.app.consumer.highwaters(*(TP(topic, p) for p in partitions))
        return {tp.partition: int(end) for tp, end in ends.items()}

    def _assigned(self) -> set[int]:
        # Asked at every batch: a rebalance can settle after the batch that follows it.
        topic = self.topics.contributions.get_topic_name()
        return {tp.partition for tp in self.app.consumer.assignment() if tp.topic == topic}

    def _build(self, taken: dict[int, tuple[str, ...]]) -> dict[int, date | None]:
        """Build the scopes of the partitions taken on from their entries; per partition,
        the earliest day an entry changed on after its last computation (its settled
        offset), None when none did. The rows before that day are in the store as the
        last owner computed them, from the same entries."""
        home = {scope: partition for partition, scopes in taken.items() for scope in scopes}
        settled = {partition: self._settled(partition) for partition in taken}
        since: dict[int, date | None] = dict.fromkeys(taken)
        found: dict[str, list[tuple[str, VisitEntry]]] = {scope: [] for scope in home}
        for key, value in self.entries.items_in(taken):
            scope, visit_id = key.decode().split("|", 1)
            if scope in found and value:
                stored: StoredEntry = decode(value, StoredEntry)
                found[scope].append((visit_id, stored.entry))
                partition = home[scope]
                if stored.offset >= settled[partition]:
                    since[partition] = _earliest(since[partition], stored.changed_from)
        for scope, entries in found.items():
            self.rollup.build(scope, entries, since[home[scope]])
        return since

    def _settled(self, partition: int) -> int:
        stored = self.progress.read(progress_key(partition), partition)
        return int(stored) if stored else 0

    def _computed(self, partition: int) -> tuple[date, date] | None:
        stored = self.progress.read(_computed_key(partition), partition)
        if not stored:
            return None
        computed: Computed = decode(stored, Computed)
        return computed.first, computed.clock

    # --- computing ---------------------------------------------------------------------------

    async def _compute(self, partition: int, offset: int, tick: Tick) -> None:
        started = time.monotonic()
        owned = self.owned[partition]
        span = self._span(partition, tick)
        if span is not None:
            first, clock = span
            if owned.computed != span:
                earlier = owned.computed is None or first < owned.computed[0]
                since = first if earlier or owned.computed is None else owned.computed[1]
                self.rollup.mark_all(since, owned.scopes)
                owned.computed = span
                self.progress.put(_computed_key(partition), encode(Computed(*span)), partition)
            await self._emit(owned, first, clock, offset)
        self.progress.put(progress_key(partition), str(offset + 1).encode(), partition)
        self.stats.settled[partition] = offset + 1
        cost = time.monotonic() - started
        metrics.STAGE2_COMPUTE_SECONDS.observe(cost)
        if span is not None:
            metrics.CLOCK_DAY.set(metrics.day_timestamp(span[1]))
        owned.next_compute = started + max(COMPUTE_COST_FACTOR * cost, COMPUTE_MIN_SECONDS)

    def _span(self, partition: int, tick: Tick) -> tuple[date, date] | None:
        known = self._known_days(partition)
        if known is None:
            return None
        return known.first, tick.clock or known.last  # live: today; event: the latest day seen

    async def _emit(self, owned: Partition, first: date, clock: date, offset: int) -> None:
        now = datetime.now(UTC)  # shown as computed_at only; versions are offsets
        rows = [
            IndicatorValue(
                municipality=scope,
                indicator=value.indicator,
                window_days=value.window_days,
                as_of=value.as_of,
                numerator=value.numerator,
                denominator=value.denominator,
                value=value.value,
                computed_at=now,
                version=offset,
            )
            for scope, value in self.rollup.changed_values(first, clock, owned.scopes)
        ]
        sends = [
            self.topics.indicators.send(value=encode(IndicatorValues(part)), force=True)
            for part in chunks(rows, ROWS_PER_MESSAGE)
        ]
        await delivered(sends)
        alerts = self._alerts(owned, clock, now) if rows else []
        if alerts:
            # The state first, then the alert (see _reconcile): a transition may be sent
            # twice, never lost, and never sent without the state that numbers the next.
            for alert, partition in alerts:
                self._record(alert, partition)
            await self.alert_states.send_changes()
            await delivered(self._send_alert(alert) for alert, _ in alerts)
            self._count_active_alerts()

    def _alerts(self, owned: Partition, clock: date, now: datetime) -> list[tuple[Alert, int]]:
        found = []
        current: dict[str, dict[str, Value]] = {}  # a municipality's values, computed once
        for municipality, indicator, target in self._targets_of(owned):
            if municipality not in current:
                current[municipality] = self.rollup.values_at(municipality, ALERT_WINDOW, clock)
            value = current[municipality].get(indicator)
            alert = self._transition(municipality, indicator, target, value, now)
            if alert is not None:
                found.append((alert, self._home(municipality, indicator)))
        return found

    def _targets_of(self, owned: Partition) -> Iterator[tuple[str, str, Target]]:
        """(municipality, indicator, target) of every alert the partition computes."""
        countrywide = ALL_KOSOVO in owned.scopes
        for municipality in MUNICIPALITIES:
            home = municipality in owned.scopes
            for indicator, target in self.targets.for_municipality(municipality).items():
                if countrywide if indicator in COUNTRYWIDE_INDICATORS else home:
                    yield municipality, indicator, target

    def _transition(
        self, municipality: str, indicator: str, target: Target, value: Value | None,
        now: datetime,
    ) -> Alert | None:  # fmt: skip
        if value is None:
            return None
        last = self._last_alert(municipality, indicator)
        raised = last is not None and last.state == "raised"
        reading = Reading(value.value, value.denominator)
        change = next_state(indicator, target, reading, raised, self.targets)
        if change is None:
            return None
        return Alert(
            municipality=municipality, indicator=indicator, window_days=ALERT_WINDOW,
            seq=(last.seq if last else 0) + 1, state=change, value=value.value,
            target=target.bound, denominator=value.denominator, as_of=value.as_of,
            emitted_at=now,
        )  # fmt: skip

    def _last_alert(self, municipality: str, indicator: str) -> Alert | None:
        key = f"{municipality}|{indicator}".encode()
        stored = self.alert_states.read(key, self._home(municipality, indicator))
        last: Alert | None = decode(stored, Alert) if stored else None
        return last

    def _record(self, alert: Alert, partition: int) -> None:
        key = f"{alert.municipality}|{alert.indicator}".encode()
        self.alert_states.put(key, encode(alert), partition)


def _changed_from(entry: VisitEntry, was: StoredEntry | None, settled: int) -> date | None:
    """The earliest day whose rows `entry` changes: its own, the one it moves from, and
    the days its predecessor changed if no computation has covered them yet."""
    if was is None:
        return entry.day
    if was.offset < settled:
        return _earliest(entry.day, was.entry.day)
    return _earliest(entry.day, was.entry.day, was.changed_from)


def _earliest(*days: date | None) -> date | None:
    known = [day for day in days if day is not None]
    return min(known) if known else None


def _scopes_of(partition: int, partitions: int) -> tuple[str, ...]:
    return tuple(s for s in SCOPES if scope_partition(s, partitions) == partition)


def _backlog(app: faust.App, tp: Any, offset: int) -> int:
    """Messages already in the partition after this one (0 when unknown)."""
    highwater = app.consumer.highwater(tp)
    return max(int(highwater) - offset - 1, 0) if highwater is not None else 0


def send_ticks(topics: StageTopics, partitions: int, live_clock: bool) -> list[Any]:
    """A tick to every stage-2 partition: they go through the topic so that stage 2
    computes inside an event, in order with the entries before it."""
    clock = datetime.now(LOCAL_TZ).date() if live_clock else None
    message = encode(Tick(clock))
    return [
        topics.contributions.send(key=b"tick", value=message, partition=p, force=True)
        for p in range(partitions)
    ]
