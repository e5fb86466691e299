"""Stage 1, keyed by `visit_id` over `partitions` partitions:

visits ──validate──┬─ invalid ───────────────────────────────▶ visits-dlq (original bytes)
                   ├─ wrong key ── re-keyed by visit_id ─────▶ visits
                   └─ valid ── visit-state (winner) ─┬───────▶ visits-effective (its row)
                                                      └───────▶ visit-contributions
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import faust
from faust.types import EventT

from streams.indicators import contribution_message
from streams.revisions import apply_event, state_from_json, state_to_json
from streams.runtime.durable import DurableTable, durable_agent, durable_table
from streams.runtime.shared import StageTopics, StreamStats
from vizita.contract.validation import Rejection, validate_payload


class RevisionStage:
    def __init__(self, app: faust.App, topics: StageTopics, partitions: int) -> None:
        self.topics = topics
        self.states: DurableTable = durable_table(app, "visit-state", partitions)

    async def handle(self, event: EventT[Any]) -> str:
        msg = event.message
        value = msg.value if isinstance(msg.value, bytes) else b""
        result = validate_payload(value, received_at=received_at(msg.timestamp))
        if isinstance(result, Rejection):
            await self._dead_letter(event, result)
            return "dead_lettered"
        visit_id = result.event.visit_id
        key = visit_id.encode()
        if msg.key != key:
            # A visit's revisions must meet in one partition; send it where it belongs.
            await self.topics.visits.send(key=key, value=msg.value, timestamp=msg.timestamp)
            return "rekeyed"
        stored = self.states.get(visit_id)
        applied = apply_event(state_from_json(stored) if stored else None, result.event)
        self.states[visit_id] = state_to_json(applied.state)
        # Sent even when nothing changed: after a crash the state may be ahead of what
        # reached the topics (all are flushed before a commit, but not atomically), so
        # re-processing must re-send. Versioned rows make the repeat harmless.
        row = applied.state.visit_row()
        await self.topics.effective.send(key=key, value=row.model_dump_json().encode())
        message = contribution_message(applied.state, result.event)
        await self.topics.contributions.send(key=key, value=message.model_dump_json().encode())
        return "duplicate" if applied.duplicate else "valid"

    async def _dead_letter(self, event: EventT[Any], rejection: Rejection) -> None:
        msg = event.message
        headers = rejection.dlq_headers(f"{msg.topic}/{msg.partition}/{msg.offset}")
        # The original timestamp travels along, so a retried dead letter is identical.
        await self.topics.dlq.send(
            key=msg.key, value=msg.value, headers=headers, timestamp=msg.timestamp
        )


def received_at(timestamp: float | None) -> datetime | None:
    """When Kafka received a record (its timestamp, in seconds), if it says."""
    return datetime.fromtimestamp(timestamp, UTC) if timestamp and timestamp > 0 else None


def wire_revisions(
    app: faust.App, topics: StageTopics, partitions: int, stats: StreamStats
) -> RevisionStage:
    stage = RevisionStage(app, topics, partitions)

    def done(event: EventT[Any], outcome: str) -> None:
        stats.done(event.message.partition, event.message.offset, outcome)

    durable_agent(app, topics.visits, "revisions", stage.handle, done)
    return stage
