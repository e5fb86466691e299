"""Stage 2, one partition (all 39 scopes in one place, see README):

    visit-contributions ── visit-entries (LWW by key) ── rollup ──▶ indicators
                       └── ticks (clock) ──────────── alert-state ──▶ alerts

Its tables are the truth; the rollup is derived from them and rebuilt after every
rebalance (and so after a restart).
"""

from __future__ import annotations

import time
from dataclasses import asdict
from datetime import UTC, date, datetime
from typing import Any

import faust
from faust.types import EventT

from streams.alerts import next_state
from streams.errors import StreamError
from streams.indicators import Value
from streams.rollup import Rollup, supersedes
from streams.runtime.durable import durable_agent, durable_table
from streams.runtime.shared import StageTopics, StreamStats
from vizita.contract.days import LOCAL_TZ
from vizita.contract.indicators import ALERT_WINDOW
from vizita.contract.messages import (
    STAGE_TWO_ADAPTER,
    Alert,
    ContributionMessage,
    IndicatorValue,
    Tick,
    VisitEntry,
)
from vizita.contract.municipalities import MUNICIPALITIES
from vizita.contract.targets import Reading, Target, Targets

PROGRESS_TABLE, PROGRESS_KEY = "stage2-progress", "settled"
# While behind, stage 2 computes at most every this many times a computation's cost...
COMPUTE_COST_FACTOR = 4.0
# ...and at most every this many seconds.
COMPUTE_MIN_SECONDS = 2.0


class IndicatorStage:
    def __init__(self, app: faust.App, topics: StageTopics, targets: Targets) -> None:
        self.topics, self.targets = topics, targets
        self.entries = durable_table(app, "visit-entries", 1)
        self.days = durable_table(app, "days-seen", 1)
        self.alert_states = durable_table(app, "alert-state", 1)
        # The offset after the last tick that computed: how another worker (replay,
        # `worker --exit-when-done`) knows stage 2 has settled, from the changelog.
        self.progress = durable_table(app, PROGRESS_TABLE, 1)
        self.next_compute = 0.0  # monotonic time before which a tick with a backlog skips
        self.rollup = Rollup()
        self.generation = 0  # bumped by every rebalance
        self.built = -1  # the generation the rollup was rebuilt for
        self.range: tuple[date, date] | None = None  # (first day, clock day) last computed

    def due(self, backlog: int) -> bool:
        """Whether a tick computes. At the head of the topic every tick does. With a
        backlog waiting (a backfill), computing at most every COMPUTE_COST_FACTOR times
        its own cost keeps the time on contributions instead of on rows that the next
        contributions change again; the tick at the head computes everything."""
        return backlog <= 0 or time.monotonic() >= self.next_compute

    async def compute(self, tick: Tick, offset: int) -> None:
        started = time.monotonic()
        await self.on_tick(tick)
        self.progress[PROGRESS_KEY] = offset + 1
        cost = time.monotonic() - started
        self.next_compute = started + max(COMPUTE_COST_FACTOR * cost, COMPUTE_MIN_SECONDS)

    async def rebuild_if_needed(self) -> None:
        if self.built == self.generation:
            return
        self.rollup.rebuild(VisitEntry.from_json(value) for value in self.entries.values() if value)
        self.built, self.range = self.generation, None
        # The alerts table may have missed the last transitions before a crash: resend them.
        for value in self.alert_states.values():
            if value and value.get("alert"):
                await self._send_alert(Alert.model_validate(value["alert"]))

    def on_contribution(self, visit_id: str, message: ContributionMessage) -> None:
        entry = message.entry
        stored = self.entries.get(visit_id)
        old = VisitEntry.from_json(stored) if stored else None
        if supersedes(entry, old):
            self.rollup.replace(old, entry)
            self.entries[visit_id] = entry.to_json()
        if message.seen:
            self._widen_days(message.seen.isoformat())

    def _widen_days(self, seen: str) -> None:
        known = self.days.get("range")
        widened = [seen, seen] if not known else [min(known[0], seen), max(known[1], seen)]
        if widened != known:
            self.days["range"] = widened

    def _range(self, tick: Tick) -> tuple[date, date] | None:
        seen = self.days.get("range")
        if not seen:
            return None
        # live: today; event: the latest day seen
        clock = tick.clock or date.fromisoformat(seen[1])
        return date.fromisoformat(seen[0]), clock

    async def on_tick(self, tick: Tick) -> None:
        computed = self._range(tick)
        if computed is None:
            return
        first, clock = computed
        if self.range != computed:
            grew_back = self.range is None or first < self.range[0]
            self.rollup.mark_all(first if grew_back or self.range is None else self.range[1])
            self.range = computed
        now = datetime.now(UTC)
        if await self._emit_indicators(first, clock, now):
            await self._evaluate_alerts(clock, now)

    async def _emit_indicators(self, first: date, clock: date, now: datetime) -> int:
        sent = 0
        for scope, value in self.rollup.changed_values(first, clock):
            row = IndicatorValue.model_validate(
                {"municipality": scope, **asdict(value), "computed_at": now}
            )
            await self.topics.indicators.send(
                key=scope.encode(), value=row.model_dump_json().encode()
            )
            sent += 1
        return sent

    async def _evaluate_alerts(self, clock: date, now: datetime) -> None:
        for municipality in MUNICIPALITIES:
            for indicator, target in self.targets.for_municipality(municipality).items():
                value = self.rollup.value_at(municipality, indicator, ALERT_WINDOW, clock)
                if value is not None:
                    await self._transition(municipality, indicator, target, value, now)

    async def _transition(
        self, municipality: str, indicator: str, target: Target, value: Value, now: datetime
    ) -> None:
        key = f"{municipality}|{indicator}"
        state = self.alert_states.get(key) or {"raised": False, "seq": 0, "alert": None}
        reading = Reading(value.value, value.denominator)
        change = next_state(indicator, target, reading, state["raised"], self.targets)
        if change is None:
            return
        alert = Alert(
            municipality=municipality, indicator=indicator, window_days=ALERT_WINDOW,
            seq=state["seq"] + 1, state=change, value=value.value, target=target.bound,
            denominator=value.denominator, as_of=value.as_of, emitted_at=now,
        )  # fmt: skip
        self.alert_states[key] = {
            "raised": change == "raised", "seq": alert.seq, "alert": alert.model_dump(mode="json"),
        }  # fmt: skip
        await self._send_alert(alert)

    async def _send_alert(self, alert: Alert) -> None:
        await self.topics.alerts.send(
            key=alert.municipality.encode(), value=alert.model_dump_json().encode()
        )


def _backlog(app: faust.App, tp: Any, offset: int) -> int:
    """Messages already in the partition after this one (0 when unknown)."""
    highwater = app.consumer.highwater(tp)
    return max(int(highwater) - offset - 1, 0) if highwater is not None else 0


def _visit_id(event: EventT[Any]) -> str:
    if not isinstance(event.key, bytes):
        raise StreamError("a contribution without its visit_id as the key")
    return event.key.decode()


def wire_indicators(
    app: faust.App, topics: StageTopics, targets: Targets, stats: StreamStats, *,
    tick_seconds: float, live_clock: bool,
) -> IndicatorStage:  # fmt: skip
    stage = IndicatorStage(app, topics, targets)

    @app.on_rebalance_complete.connect
    def on_rebalance(sender: Any, /, *args: Any, signal: Any, **kwargs: Any) -> None:
        stage.generation += 1

    async def handle(event: EventT[Any]) -> None:
        await stage.rebuild_if_needed()
        message = STAGE_TWO_ADAPTER.validate_json(event.value)
        if isinstance(message, Tick):
            offset = event.message.offset
            if stage.due(_backlog(app, event.message.tp, offset)):
                await stage.compute(message, offset)
                stats.settled_position = offset + 1
        else:
            stage.on_contribution(_visit_id(event), message)

    durable_agent(app, topics.contributions, "indicators", handle)

    @app.timer(tick_seconds, on_leader=True)  # type: ignore[untyped-decorator]  # faust's timer is untyped
    async def tick() -> None:
        # Ticks go through the topic so that stage 2 computes inside an event, where its
        # tables may be written, and in order with the contributions before them.
        clock = datetime.now(LOCAL_TZ).date() if live_clock else None
        await topics.contributions.send(
            key=b"tick", value=Tick(clock=clock).model_dump_json().encode()
        )

    return stage
