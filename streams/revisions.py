"""The effective visit set (SPEC §1), as pure functions: no Faust here.

Per `visit_id` the stream keeps a :class:`VisitState`: the visit's current `visits`
row, the ranks of its winning event and of its best upsert, a filter of the event ids
it has seen, and the scopes its entries were sent to. That is all the fold needs, so
the state stays the same size however many events a visit gets. Applying an event is
idempotent and commutative: the same events in any order, with any repeats, reach the
same state and the same row.

A state's `key` is the rank of its winner and best upsert: it grows with every change of
the row and is a function of the events alone, not of how many were processed. So a
consumer that keeps, per visit, the entry with the greatest key computes the maximum
over everything it was ever sent: lost, repeated or reordered messages (a crash) cannot
make it keep an older one, nor reuse a number for different contents.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Final

import msgspec

from vizita.contract.days import local_day
from vizita.contract.events import DETAIL_FIELDS, EARLIEST_INSTANT, Event, UpsertEvent
from vizita.contract.messages import VISIT_ROW_FIELDS, Key, VisitRow, decode, encode

Rank = tuple[int, int, str, str]  # revision, µs of submitted_at since 1900, event_id, digest

_ROW_COLUMNS: Final = tuple(name for name in VISIT_ROW_FIELDS if name != "version")
_IDENTITY: Final = ("visit_id", "event_id", "schema_version", "revision", "submitted_at", "op")


def rank(event: Event) -> Rank:
    """SPEC §1's order (revision, submitted_at, event_id); on a full tie (two payloads
    reusing one event_id) a digest of the canonical JSON decides, so arrival order
    never does."""
    micros = (event.submitted_at - EARLIEST_INSTANT) // timedelta(microseconds=1)
    digest = hashlib.sha256(event.model_dump_json().encode()).hexdigest()[:16]
    return (event.revision, micros, event.event_id, digest)


def _number(ranked: Rank | None) -> int:
    """Revision and submitted_at (µs since 1900, < 2**56) as one number < 2**88."""
    return 0 if ranked is None else ranked[0] * 2**56 + ranked[1]


def version(winner: Rank, best: Rank | None) -> int:
    """The `visits` row's version (UInt256): the winner's revision and submitted_at,
    then the best upsert's (which changes a voided visit's row). Only a tie on both
    event_ids' ranks beyond the microsecond is left to the row written last."""
    return _number(winner) * 2**88 + _number(best)


# --- the filter of ids seen --------------------------------------------------------------------

_FILTER_HASHES = 4  # bits set per id, in a 256-bit filter


def _id_bits(event_id: str) -> int:
    digest = hashlib.blake2b(event_id.encode(), digest_size=_FILTER_HASHES).digest()
    bits = 0
    for index in digest:  # four bytes: four positions among 256
        bits |= 1 << index
    return bits


# --- the state ------------------------------------------------------------------------------------


class VisitState(msgspec.Struct, array_like=True, frozen=True):
    """What stage 1 keeps per visit. `seen` is a Bloom filter of the event ids: a repeat
    of the winner or the best upsert is known exactly, any other one with a false
    positive rate under 0.5% for visits of up to 20 distinct events. Only the duplicate
    count reads it; the fold never depends on it."""

    visit: VisitRow
    winner: Rank
    best: Rank | None
    seen: int
    # Every municipality the row has been in, in any state it was folded to: its entries
    # go to all of them. A batch's entries can reach Kafka while its state is lost in a
    # crash; the events run again in other batches, and the entry of a state in between
    # may be all one of those municipalities ever got, so it has to be overtaken there.
    scopes: tuple[str, ...] = ()

    @property
    def row(self) -> dict[str, Any]:
        """The visit's `visits` columns, without the version."""
        return {name: getattr(self.visit, name) for name in _ROW_COLUMNS}

    @property
    def key(self) -> Key:
        """Grows with every change of the row (the best upsert only matters under a void)."""
        return (*self.winner, *(self.best or ()))

    @property
    def version(self) -> int:
        return int(self.visit.version)

    @property
    def winner_id(self) -> str:
        return self.winner[2]

    def has_seen(self, event_id: str) -> bool:
        if event_id == self.winner[2] or (self.best is not None and event_id == self.best[2]):
            return True
        bits = _id_bits(event_id)
        return self.seen & bits == bits


@dataclass(frozen=True, slots=True)
class Applied:
    state: VisitState
    duplicate: bool  # an event_id seen before for this visit


def _details(event: Event) -> dict[str, Any]:
    return {name: getattr(event, name) for name in DETAIL_FIELDS}


def _identity(event: Event) -> dict[str, Any]:
    return {name: getattr(event, name) for name in _IDENTITY}


def _row(identity: dict[str, Any], details: dict[str, Any], number: int) -> Any:
    """A voided visit keeps the details of its best upsert, when it had one, so that the
    store still shows where and when the retracted visit was; a void with none takes its
    day from its own submission."""
    moment = details["occurred_at"] or identity["submitted_at"]
    is_void = identity["op"] == "void"
    return VisitRow(**identity, **details, is_void=is_void, local_day=local_day(moment),
                    version=number)  # fmt: skip


def _pick(row: dict[str, Any], names: tuple[str, ...]) -> dict[str, Any]:
    return {name: row[name] for name in names}


def first_state(event: Event) -> VisitState:
    ranked = rank(event)
    best = ranked if isinstance(event, UpsertEvent) else None
    row = _row(_identity(event), _details(event), version(ranked, best))
    return VisitState(row, ranked, best, _id_bits(event.event_id), _been_in((), row))


def apply_event(state: VisitState | None, event: Event) -> Applied:
    """Fold one valid event of a visit into its state. The row's details are always
    those of the best upsert when there is one, else those of the winning void."""
    if state is None:
        return Applied(first_state(event), False)
    duplicate = state.has_seen(event.event_id)
    ranked = rank(event)
    winner = max(state.winner, ranked)
    best = state.best
    if isinstance(event, UpsertEvent) and (best is None or ranked > best):
        best = ranked
    if (winner, best) == (state.winner, state.best):
        row = state.visit  # the event lost to both: the row stays
    else:
        current = state.row
        # The details are the best upsert's; with no upsert at all, the winning void's.
        takes_details = best == ranked if best is not None else winner == ranked
        identity = _identity(event) if winner == ranked else _pick(current, _IDENTITY)
        details = _details(event) if takes_details else _pick(current, DETAIL_FIELDS)
        row = _row(identity, details, version(winner, best))
    seen = state.seen | _id_bits(event.event_id)
    return Applied(VisitState(row, winner, best, seen, _been_in(state.scopes, row)), duplicate)


def _been_in(scopes: tuple[str, ...], row: VisitRow) -> tuple[str, ...]:
    where = row.municipality
    return scopes if where is None or where in scopes else tuple(sorted((*scopes, where)))


# --- the state as it is kept in a changelog-backed table -----------------------------------


def state_to_bytes(state: VisitState) -> bytes:
    return encode(state)


def state_from_bytes(data: bytes) -> VisitState:
    state: VisitState = decode(data, VisitState)
    return state
