"""The effective visit set (SPEC §1), as pure functions: no Faust here.

Per `visit_id` the stream keeps a :class:`VisitState`: the event ids seen, the winning
event, the best `upsert` and the row last emitted for the `visits` table. Applying an
event is idempotent and commutative: the same events in any order, with any repeats,
reach the same state and the same final row. (The `version` counter counts emitted
changes, so it may differ between orders; the store keeps the highest.)
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from vizita.contracts import EVENT_ADAPTER, UpsertEvent, VoidEvent, local_day

Event = UpsertEvent | VoidEvent
_DESCRIPTIVE = (
    "occurred_at", "municipality", "facility_id", "nurse_id", "household_id",
    "child_age_months", "pregnant", "visit_type", "outcome", "topics", "risk_flags",
    "referrals",
)  # fmt: skip


def _rank(event: Event) -> tuple[int, datetime, str]:
    return (event.revision, event.submitted_at, event.event_id)


def _better(candidate: Event, current: Event | None) -> bool:
    """SPEC §1's order (revision, submitted_at, event_id); on a full tie (two payloads
    reusing one event_id) the canonical JSON decides, so arrival order never does."""
    if current is None or _rank(candidate) != _rank(current):
        return current is None or _rank(candidate) > _rank(current)
    return candidate.model_dump_json() > current.model_dump_json()


@dataclass(frozen=True, slots=True)
class VisitState:
    event_ids: frozenset[str]
    winner: Event
    best_upsert: UpsertEvent | None
    version: int  # how many different rows this visit has had; the store keeps the highest

    @property
    def row(self) -> dict[str, Any]:
        return visit_row(self.winner, self.best_upsert)


@dataclass(frozen=True, slots=True)
class Applied:
    state: VisitState
    duplicate: bool  # an event_id seen before for this visit
    changed: bool  # the visit's row changed: write it


def visit_row(winner: Event, best_upsert: UpsertEvent | None) -> dict[str, Any]:
    """The `visits` row of a visit: its winning event. A voided visit keeps the
    descriptive fields of its best upsert, when it had one, so that the store still
    shows where and when the retracted visit was."""
    source: Event = best_upsert if isinstance(winner, VoidEvent) and best_upsert else winner
    row = {name: getattr(source, name) for name in _DESCRIPTIVE}
    row.update(
        visit_id=winner.visit_id, event_id=winner.event_id, revision=winner.revision,
        schema_version=winner.schema_version, op=winner.op, submitted_at=winner.submitted_at,
        is_void=isinstance(winner, VoidEvent),
        local_day=local_day(row["occurred_at"] or winner.submitted_at),
    )  # fmt: skip
    return row


def apply_event(state: VisitState | None, event: Event) -> Applied:
    """Fold one valid event of a visit into its state."""
    best_if_first = event if isinstance(event, UpsertEvent) else None
    if state is None:
        return Applied(
            VisitState(frozenset({event.event_id}), event, best_if_first, 1), False, True
        )
    winner = event if _better(event, state.winner) else state.winner
    best = state.best_upsert
    if isinstance(event, UpsertEvent) and _better(event, best):
        best = event
    duplicate = event.event_id in state.event_ids
    ids = state.event_ids | {event.event_id}
    changed = visit_row(winner, best) != state.row
    version = state.version + 1 if changed else state.version
    return Applied(VisitState(ids, winner, best, version), duplicate, changed)


# --- the state as it is kept in a changelog-backed table -----------------------------------


def state_to_json(state: VisitState) -> dict[str, Any]:
    best = state.best_upsert.model_dump_json() if state.best_upsert else None
    return {"ids": sorted(state.event_ids), "winner": state.winner.model_dump_json(),
            "best": best, "version": state.version}  # fmt: skip


def state_from_json(data: dict[str, Any]) -> VisitState:
    winner = parse_event(data["winner"])
    best = UpsertEvent.model_validate_json(data["best"]) if data["best"] else None
    return VisitState(frozenset(data["ids"]), winner, best, int(data["version"]))


def parse_event(text: str | bytes) -> Event:
    """An event this stream validated and stored before (trusted, so no Rejection)."""
    return EVENT_ADAPTER.validate_json(text, strict=True)


def change_message(state: VisitState) -> bytes:
    """What `visits-effective` carries when a visit's row changed (see sinks)."""
    return json.dumps(state_to_json(state)).encode()


def row_from_message(value: bytes) -> dict[str, Any]:
    """The `visits` row, with its version, of a `visits-effective` message."""
    state = state_from_json(json.loads(value))
    return {**state.row, "version": state.version}
