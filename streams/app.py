"""The Faust app: wiring only. Validation is `vizita.contracts`; the maths is in
`streams.revisions`, `streams.indicators`, `streams.rollup` and `streams.alerts`;
here they meet the topics and the changelog-backed tables.

Stage 1, keyed by `visit_id` over `partitions` partitions:

    visits ──validate──┬─ invalid ───────────────────────────────▶ visits-dlq (original bytes)
                       ├─ wrong key ── re-keyed by visit_id ─────▶ visits
                       └─ valid ── visit-state (winner) ─┬───────▶ visits-effective (its row)
                                                          └───────▶ visit-contributions
Stage 2, one partition (all 39 scopes in one place, see README):

    visit-contributions ── visit-entries (LWW by version) ── rollup ──▶ indicators
                       └── ticks (clock) ─────────────── alert-state ──▶ alerts
"""

from __future__ import annotations

import json
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import faust
from faust.types import EventT, StreamT

from streams.alerts import ALERT_WINDOW, Reading, Target, Targets, load_targets, next_state
from streams.durable import durable_table
from streams.faust_fixes import VizitaApp
from streams.indicators import Value, contribution
from streams.revisions import (
    VisitState,
    apply_event,
    change_message,
    state_from_json,
    state_to_json,
)
from streams.rollup import Entry, Rollup, supersedes
from vizita.contracts import (
    LOCAL_TZ,
    MUNICIPALITIES,
    TOPIC_ALERTS,
    TOPIC_INDICATORS,
    TOPIC_VISIT_CONTRIBUTIONS,
    TOPIC_VISITS,
    TOPIC_VISITS_DLQ,
    TOPIC_VISITS_EFFECTIVE,
    Alert,
    IndicatorValue,
    Rejection,
    UpsertEvent,
    VoidEvent,
    local_day,
    validate_payload,
)
from vizita.settings import Settings

# topic -> partitions (None: the settings' number)
STAGE_TOPICS: dict[str, int | None] = {
    TOPIC_VISITS: None, TOPIC_VISITS_DLQ: None, TOPIC_VISITS_EFFECTIVE: None,
    TOPIC_VISIT_CONTRIBUTIONS: 1, TOPIC_INDICATORS: None, TOPIC_ALERTS: None,
}  # fmt: skip

PROGRESS_TABLE, PROGRESS_KEY = "stage2-progress", "settled"
# While behind, stage 2 computes at most every this many times a computation's cost...
COMPUTE_COST_FACTOR = 4.0
# ...and at most every this many seconds.
COMPUTE_MIN_SECONDS = 2.0


@dataclass
class StreamStats:
    """What the stages have done since they started; `vizita replay` reads it in-process."""

    counts: Counter[str] = field(default_factory=Counter)
    # partition -> next offset to process, of the `visits` topic
    positions: dict[int, int] = field(default_factory=dict)
    # stage 2: the offset up to which everything is computed (a tick's offset + 1)
    settled_position: int = 0

    def done(self, partition: int, offset: int, outcome: str) -> None:
        self.counts[outcome] += 1
        self.positions[partition] = offset + 1


@dataclass
class Pipelines:
    app: faust.App
    stats: StreamStats


def build_app(settings: Settings) -> Pipelines:
    if settings.kafka_bootstrap is None:
        raise ValueError("the stream needs a Kafka bootstrap address")
    datadir = settings.data_dir / "faust" / settings.app_id
    datadir.parent.mkdir(parents=True, exist_ok=True)
    app = VizitaApp(
        settings.app_id,
        broker=f"kafka://{settings.kafka_bootstrap}",
        # Tables live in memory and are rebuilt from their changelog topics at start.
        store="memory://",
        topic_partitions=settings.partitions,
        topic_replication_factor=1,
        table_standby_replicas=0,
        web_enabled=False,
        datadir=str(datadir),
        consumer_auto_offset_reset="earliest",
        broker_commit_interval=1.0,
        producer_acks=-1,
        # Batch sends a little: one produce request per event is the main cost otherwise.
        producer_linger=0.005,
        stream_wait_empty=False,
    )
    stats = StreamStats()
    topics = _Topics(app, settings)
    _wire_revisions(app, settings, topics, stats)
    _wire_indicators(app, settings, topics, stats, load_targets(Path(settings.targets_file)))
    return Pipelines(app, stats)


class _Topics:
    def __init__(self, app: faust.App, settings: Settings) -> None:
        def raw(name: str) -> Any:
            partitions = STAGE_TOPICS[name] or settings.partitions
            return app.topic(settings.topic(name), key_serializer="raw",
                             value_serializer="raw", partitions=partitions)  # fmt: skip

        self.visits, self.dlq = raw(TOPIC_VISITS), raw(TOPIC_VISITS_DLQ)
        self.effective = raw(TOPIC_VISITS_EFFECTIVE)
        self.contributions = raw(TOPIC_VISIT_CONTRIBUTIONS)
        self.indicators, self.alerts = raw(TOPIC_INDICATORS), raw(TOPIC_ALERTS)


# --- stage 1 ----------------------------------------------------------------------------------


def contribution_message(state: VisitState, event: UpsertEvent | VoidEvent) -> bytes:
    """Stage 2's view of a visit after this event, and the day this event (even a
    superseded upsert) adds to the range of days indicators are produced for."""
    row = state.row
    winner = state.winner
    item = contribution(winner) if isinstance(winner, UpsertEvent) else None
    entry = Entry(state.key, row["municipality"], row["local_day"], item)
    seen = local_day(event.occurred_at) if isinstance(event, UpsertEvent) else None
    return json.dumps(
        {"entry": entry.to_json(), "seen": seen.isoformat() if seen else None}
    ).encode()


def _wire_revisions(
    app: faust.App, settings: Settings, topics: _Topics, stats: StreamStats
) -> None:
    # One entry per visit_id.
    states = durable_table(app, "visit-state", settings.partitions)

    async def dead_letter(event: EventT[Any], rejection: Rejection) -> None:
        msg = event.message
        source = f"{msg.topic}/{msg.partition}/{msg.offset}"
        headers = rejection.dlq_headers(source)
        # The original timestamp travels along, so a retried dead letter is identical.
        await topics.dlq.send(
            key=msg.key, value=msg.value, headers=headers, timestamp=msg.timestamp
        )

    async def handle(event: EventT[Any]) -> str:
        msg = event.message
        result = validate_payload(msg.value if isinstance(msg.value, bytes) else b"")
        if isinstance(result, Rejection):
            await dead_letter(event, result)
            return "dead_lettered"
        visit_id = result.event.visit_id
        if msg.key != visit_id.encode():
            # A visit's revisions must meet in one partition; send it where it belongs.
            await topics.visits.send(
                key=visit_id.encode(), value=msg.value, timestamp=msg.timestamp
            )
            return "rekeyed"
        stored = states.get(visit_id)
        applied = apply_event(state_from_json(stored) if stored else None, result.event)
        states[visit_id] = state_to_json(applied.state)
        await states.send_changes()
        # Sent even when nothing changed: after a crash the state may be ahead of what
        # reached the topics (all are flushed before a commit, but not atomically), so
        # re-processing must re-send. Versioned rows make the repeat harmless.
        key = visit_id.encode()
        await topics.effective.send(key=key, value=change_message(applied.state))
        await topics.contributions.send(
            key=key, value=contribution_message(applied.state, result.event)
        )
        return "duplicate" if applied.duplicate else "valid"

    @app.agent(topics.visits, name="revisions")
    async def revisions(stream: StreamT[Any]) -> None:
        async for event in stream.events():
            outcome = await handle(event)
            stats.done(event.message.partition, event.message.offset, outcome)


# --- stage 2 ----------------------------------------------------------------------------------


class _IndicatorStage:
    """Stage 2. Its tables are the truth; the rollup is derived from them and rebuilt
    after every rebalance (and so after a restart)."""

    def __init__(self, app: faust.App, topics: _Topics, targets: Targets) -> None:
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

    async def send_changes(self) -> None:
        for table in (self.entries, self.days, self.alert_states, self.progress):
            await table.send_changes()

    def due(self, backlog: int) -> bool:
        """Whether a tick computes. At the head of the topic every tick does. With a
        backlog waiting (a backfill), computing at most every COMPUTE_COST_FACTOR times
        its own cost keeps the time on contributions instead of on rows that the next
        contributions change again; the tick at the head computes everything."""
        return backlog <= 0 or time.monotonic() >= self.next_compute

    async def compute(self, tick: dict[str, Any], offset: int) -> None:
        started = time.monotonic()
        await self.on_tick(tick)
        self.progress[PROGRESS_KEY] = offset + 1
        cost = time.monotonic() - started
        self.next_compute = started + max(COMPUTE_COST_FACTOR * cost, COMPUTE_MIN_SECONDS)

    async def rebuild_if_needed(self) -> None:
        if self.built == self.generation:
            return
        self.rollup.rebuild(Entry.from_json(value) for value in self.entries.values() if value)
        self.built, self.range = self.generation, None
        # The alerts table may have missed the last transitions before a crash: resend them.
        for value in self.alert_states.values():
            if value and value.get("alert"):
                await self._send_alert(value["alert"])

    def on_contribution(self, visit_id: str, message: dict[str, Any]) -> None:
        entry = Entry.from_json(message["entry"])
        stored = self.entries.get(visit_id)
        old = Entry.from_json(stored) if stored else None
        if supersedes(entry, old):
            self.rollup.replace(old, entry)
            self.entries[visit_id] = entry.to_json()
        if message["seen"]:
            self._widen_days(message["seen"])

    def _widen_days(self, seen: str) -> None:
        known = self.days.get("range")
        widened = [seen, seen] if not known else [min(known[0], seen), max(known[1], seen)]
        if widened != known:
            self.days["range"] = widened

    def _range(self, tick: dict[str, Any]) -> tuple[date, date] | None:
        seen = self.days.get("range")
        if not seen:
            return None
        clock = tick.get("clock") or seen[1]  # live: today; event: the latest day seen
        return date.fromisoformat(seen[0]), date.fromisoformat(clock)

    async def on_tick(self, tick: dict[str, Any]) -> None:
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
        alert = Alert.model_validate({
            "municipality": municipality, "indicator": indicator, "window_days": ALERT_WINDOW,
            "seq": state["seq"] + 1, "state": change, "value": value.value,
            "target": target.bound, "denominator": value.denominator, "as_of": value.as_of,
            "emitted_at": now,
        })  # fmt: skip
        payload = alert.model_dump(mode="json")
        self.alert_states[key] = {"raised": change == "raised", "seq": alert.seq, "alert": payload}
        await self._send_alert(payload)

    async def _send_alert(self, payload: dict[str, Any]) -> None:
        await self.topics.alerts.send(
            key=payload["municipality"].encode(), value=json.dumps(payload).encode()
        )


def _backlog(app: faust.App, tp: Any, offset: int) -> int:
    """Messages already in the partition after this one (0 when unknown)."""
    highwater = app.consumer.highwater(tp)
    return max(int(highwater) - offset - 1, 0) if highwater is not None else 0


def _wire_indicators(
    app: faust.App, settings: Settings, topics: _Topics, stats: StreamStats, targets: Targets
) -> None:
    stage = _IndicatorStage(app, topics, targets)

    @app.on_rebalance_complete.connect
    def on_rebalance(sender: Any, /, *args: Any, signal: Any, **kwargs: Any) -> None:
        stage.generation += 1

    @app.agent(topics.contributions, name="indicators")
    async def indicators(stream: StreamT[Any]) -> None:
        async for event in stream.events():
            await stage.rebuild_if_needed()
            message = json.loads(event.value)
            if "tick" in message:
                offset = event.message.offset
                if stage.due(_backlog(app, event.message.tp, offset)):
                    await stage.compute(message, offset)
                    stats.settled_position = offset + 1
            else:
                stage.on_contribution(event.key.decode(), message)
            await stage.send_changes()

    @app.timer(settings.tick_seconds, on_leader=True)  # type: ignore[untyped-decorator]  # faust's timer is untyped
    async def tick() -> None:
        # Ticks go through the topic so that stage 2 computes inside an event, where its
        # tables may be written, and in order with the contributions before them.
        clock = datetime.now(LOCAL_TZ).date().isoformat() if settings.clock == "live" else None
        message = json.dumps({"tick": True, "clock": clock}).encode()
        await topics.contributions.send(key=b"tick", value=message)
