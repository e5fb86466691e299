"""The effective visit set (SPEC §1), as pure functions: no Faust here.

Per `visit_id` the stream keeps a :class:`VisitState`: the event ids seen, the winning
event and the best `upsert`. Applying an event is idempotent and commutative: the same
events in any order, with any repeats, reach the same state and the same row.

A state's `key` is the rank of its winner (and best upsert): it grows with every change
of the row and is a function of the events alone, not of how many were processed. So a
consumer that keeps, per visit, the row with the greatest key computes the maximum over
everything it was ever sent: lost, repeated or reordered messages (a crash) cannot make
it keep an older row, nor reuse a number for different contents.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from vizita.contract.days import local_day
from vizita.contract.events import (
    DETAIL_FIELDS,
    EARLIEST_INSTANT,
    Event,
    UpsertEvent,
    VoidEvent,
    parse_event,
)
from vizita.contract.messages import VisitRow

Rank = tuple[int, int, str, str]


def rank(event: Event) -> Rank:
    """SPEC §1's order (revision, submitted_at, event_id); on a full tie (two payloads
    reusing one event_id) a digest of the canonical JSON decides, so arrival order
    never does."""
    micros = (event.submitted_at - EARLIEST_INSTANT) // timedelta(microseconds=1)
    digest = hashlib.sha256(event.model_dump_json().encode()).hexdigest()[:16]
    return (event.revision, micros, event.event_id, digest)


def _number(event: Event) -> int:
    """Revision and submitted_at (µs since 1900, < 2**56) as one number < 2**88."""
    revision, micros, _, _ = rank(event)
    return revision * 2**56 + micros


def _better(candidate: Event, current: Event | None) -> bool:
    if current is None:
        return True
    first = (candidate.revision, candidate.submitted_at, candidate.event_id)
    second = (current.revision, current.submitted_at, current.event_id)
    if first != second:  # the common case: no need for the digest
        return first > second
    return rank(candidate) > rank(current)


@dataclass(frozen=True, slots=True)
class VisitState:
    event_ids: frozenset[str]
    winner: Event
    best_upsert: UpsertEvent | None

    @property
    def row(self) -> dict[str, Any]:
        """The visit's `visits` columns, without the version."""
        return visit_row(self.winner, self.best_upsert)

    @property
    def key(self) -> tuple[Any, ...]:
        """Grows with every change of the row (the best upsert only matters under a void)."""
        best = rank(self.best_upsert) if self.best_upsert else ()
        return (*rank(self.winner), *best)

    @property
    def version(self) -> int:
        """The `visits` row's version (UInt256): the winner's revision and submitted_at,
        then the best upsert's (which changes a voided visit's row). Only a tie on both
        event_ids' ranks beyond the microsecond is left to the row written last."""
        return _number(self.winner) * 2**88 + (_number(self.best_upsert) if self.best_upsert else 0)

    def visit_row(self) -> VisitRow:
        """What `visits-effective` carries: the finished row and its version (a field
        the visit has no value for is left out: absent and null are the same in a row)."""
        given = {name: value for name, value in self.row.items() if value is not None}
        return VisitRow(**given, version=self.version)


@dataclass(frozen=True, slots=True)
class Applied:
    state: VisitState
    duplicate: bool  # an event_id seen before for this visit


def visit_row(winner: Event, best_upsert: UpsertEvent | None) -> dict[str, Any]:
    """The `visits` columns of a visit: its winning event. A voided visit keeps the
    descriptive fields of its best upsert, when it had one, so that the store still
    shows where and when the retracted visit was."""
    source: Event = best_upsert if isinstance(winner, VoidEvent) and best_upsert else winner
    row = {name: getattr(source, name) for name in DETAIL_FIELDS}
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
        return Applied(VisitState(frozenset({event.event_id}), event, best_if_first), False)
    winner = event if _better(event, state.winner) else state.winner
    best = state.best_upsert
    if isinstance(event, UpsertEvent) and _better(event, best):
        best = event
    duplicate = event.event_id in state.event_ids
    return Applied(VisitState(state.event_ids | {event.event_id}, winner, best), duplicate)


# --- the state as it is kept in a changelog-backed table -----------------------------------


def state_to_json(state: VisitState) -> dict[str, Any]:
    best = state.best_upsert.model_dump_json() if state.best_upsert else None
    return {"ids": sorted(state.event_ids), "winner": state.winner.model_dump_json(),
            "best": best}  # fmt: skip


def state_from_json(data: dict[str, Any]) -> VisitState:
    winner = parse_event(data["winner"])
    best = UpsertEvent.model_validate_json(data["best"]) if data["best"] else None
    return VisitState(frozenset(data["ids"]), winner, best)
