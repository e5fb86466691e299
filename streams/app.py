"""The Faust app: wiring only. Validation is `vizita.contracts`, the maths is
`streams.revisions`; here they meet the topics and the changelog-backed table.

Topology (stage 1, keyed by `visit_id`):

    visits ──validate──┬─ invalid ──────────────────────────────▶ visits-dlq (original bytes)
                       ├─ wrong key ─ re-keyed by visit_id ─────▶ visits
                       └─ valid ── visit-state table (winner) ──▶ visits-effective (its row)
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import faust
from faust.types import EventT, StreamT

from streams.revisions import apply_event, change_message, state_from_json, state_to_json
from vizita.contracts import (
    DLQ_HEADER_DETAIL,
    DLQ_HEADER_FIELD,
    DLQ_HEADER_REASON,
    DLQ_HEADER_SOURCE,
    TOPIC_VISITS,
    TOPIC_VISITS_DLQ,
    TOPIC_VISITS_EFFECTIVE,
    Rejection,
    validate_payload,
)
from vizita.settings import Settings

STAGE_TOPICS = (TOPIC_VISITS, TOPIC_VISITS_DLQ, TOPIC_VISITS_EFFECTIVE)


@dataclass
class StreamStats:
    """What the stage has done since it started; `vizita replay` reads it in-process."""

    counts: Counter[str] = field(default_factory=Counter)
    # partition -> next offset to process, of the `visits` topic
    positions: dict[int, int] = field(default_factory=dict)

    def done(self, partition: int, offset: int, outcome: str) -> None:
        self.counts[outcome] += 1
        self.positions[partition] = offset + 1


@dataclass
class VisitStage:
    app: faust.App
    stats: StreamStats


def build_app(settings: Settings) -> VisitStage:
    if settings.kafka_bootstrap is None:
        raise ValueError("the stream needs a Kafka bootstrap address")
    datadir = settings.data_dir / "faust" / settings.app_id
    datadir.parent.mkdir(parents=True, exist_ok=True)
    app = faust.App(
        settings.app_id,
        broker=f"kafka://{settings.kafka_bootstrap}",
        # Tables live in memory and are rebuilt from their changelog topics at start.
        store="memory://",
        topic_partitions=settings.partitions,
        topic_replication_factor=1,
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
    _wire(app, settings, stats)
    return VisitStage(app, stats)


def _raw_topic(app: faust.App, settings: Settings, name: str) -> Any:
    return app.topic(settings.topic(name), key_serializer="raw", value_serializer="raw",
                     partitions=settings.partitions)  # fmt: skip


def _wire(app: faust.App, settings: Settings, stats: StreamStats) -> None:
    visits = _raw_topic(app, settings, TOPIC_VISITS)
    dlq = _raw_topic(app, settings, TOPIC_VISITS_DLQ)
    effective = _raw_topic(app, settings, TOPIC_VISITS_EFFECTIVE)
    # JSON keys and values (Faust's default codec); one entry per visit_id.
    states = app.Table("visit-state", default=None, partitions=settings.partitions)

    async def dead_letter(event: EventT[Any], rejection: Rejection) -> None:
        msg = event.message
        source = f"{msg.topic}/{msg.partition}/{msg.offset}"
        headers = [(DLQ_HEADER_REASON, rejection.reason.value.encode()),
                   (DLQ_HEADER_FIELD, rejection.field.encode()),
                   (DLQ_HEADER_DETAIL, rejection.detail.encode()),
                   (DLQ_HEADER_SOURCE, source.encode())]  # fmt: skip
        # The original timestamp travels along, so a retried dead letter is identical.
        await dlq.send(key=msg.key, value=msg.value, headers=headers, timestamp=msg.timestamp)

    async def handle(event: EventT[Any]) -> str:
        msg = event.message
        result = validate_payload(msg.value if isinstance(msg.value, bytes) else b"")
        if isinstance(result, Rejection):
            await dead_letter(event, result)
            return "dead_lettered"
        visit_id = result.event.visit_id
        if msg.key != visit_id.encode():
            # A visit's revisions must meet in one partition; send it where it belongs.
            await visits.send(key=visit_id.encode(), value=msg.value, timestamp=msg.timestamp)
            return "rekeyed"
        stored = states.get(visit_id)
        applied = apply_event(state_from_json(stored) if stored else None, result.event)
        states[visit_id] = state_to_json(applied.state)
        # Sent even when nothing changed: after a crash the state may be ahead of what
        # reached the topic (both are flushed before a commit, but not atomically), so
        # re-processing must re-send. Versioned rows make the repeat harmless.
        await effective.send(key=visit_id.encode(), value=change_message(applied.state))
        return "duplicate" if applied.duplicate else "valid"

    @app.agent(visits, name="revisions")
    async def revisions(stream: StreamT[Any]) -> None:
        async for event in stream.events():
            outcome = await handle(event)
            stats.done(event.message.partition, event.message.offset, outcome)
