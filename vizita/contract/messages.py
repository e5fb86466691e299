"""The messages between the parts: what each internal topic carries and what
`indicators` and `alerts` publish. Every producer builds one of these and every reader
decodes one with :func:`decode`; no message is an ad-hoc dict.

These are trusted messages between Vizita's own stages, so they are msgspec structs: a
compact JSON encoding (arrays where only Vizita reads them, objects where others may)
that decodes with type checks at about a microsecond a message. Validation of what
comes from outside is pydantic's, at the boundary (`vizita.contract.validation`).

- `visits-effective`: :class:`VisitRows`, finished `visits` rows (stage 1 → sink).
- `visit-contributions`: :class:`ScopeEntries` (stage 1 → the stage-2 partition of a
  scope), :class:`DaysSeen` and :class:`Tick` (to every stage-2 partition).
- `indicators`: :class:`IndicatorValues`; `alerts`: one :class:`Alert` a message.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime
from types import UnionType
from typing import TYPE_CHECKING, Annotated, Any, Final, Union, get_args, get_origin

import msgspec
import pydantic

from vizita.contract.codes import Op
from vizita.contract.events import DETAIL_FIELDS, EVENT_FIELDS, UpsertEvent
from vizita.contract.indicators import CONDITIONS, INDICATORS, WINDOWS
from vizita.contract.municipalities import MUNICIPALITIES, SCOPES
from vizita.contract.targets import AlertState

AwareDatetime = Annotated[datetime, msgspec.Meta(tz=True)]

# --- visits-effective -------------------------------------------------------------------------


def _row_type(name: str) -> Any:
    """A `visits` column's type: the upsert's type of the field, without pydantic's
    rules (they ran at the boundary), nullable where a void may leave it out."""
    if name == "op":
        return Op
    declared = UpsertEvent.model_fields[name].annotation
    parts = [_plain(part) for part in _members(declared) if part is not type(None)]
    kind: Any = parts[0]
    for part in parts[1:]:
        kind = kind | part
    nullable = name in DETAIL_FIELDS or type(None) in _members(declared)
    return kind | None if nullable else kind


def _members(kind: Any) -> tuple[Any, ...]:
    return get_args(kind) if get_origin(kind) in {Union, UnionType} else (kind,)


def _plain(kind: Any) -> Any:
    if get_origin(kind) is Annotated:
        return _plain(get_args(kind)[0])
    return AwareDatetime if kind is pydantic.AwareDatetime else kind


#: the `visits` columns of SPEC §5: every field of SPEC §1, then what the stream adds
VISIT_ROW_FIELDS: Final[tuple[str, ...]] = (*EVENT_FIELDS, "is_void", "local_day", "version")

#: a visit's finished `visits` row: its winning event's envelope, the details of the
#: visit (of its best upsert when the winner is a void), `is_void`, `local_day` and
#: `version` (UInt256: the greatest is the true row; streams.revisions). The fields
#: are the event models' own, so nothing spells them a second time.
_VisitRow = msgspec.defstruct(
    "VisitRow",
    [
        *((name, _row_type(name)) for name in EVENT_FIELDS),
        ("is_void", bool),
        ("local_day", date),
        ("version", Annotated[int, msgspec.Meta(ge=0)]),  # below 2**256 (streams.revisions)
    ],
    array_like=True,
    frozen=True,
)
if TYPE_CHECKING:
    VisitRow = Any  # to the type checker a row is open: its fields are made at run time
else:
    VisitRow = _VisitRow


class VisitRows(msgspec.Struct, frozen=True, tag="visit_rows"):
    rows: list[VisitRow]


# --- visit-contributions ----------------------------------------------------------------------


class Contribution(msgspec.Struct, array_like=True, frozen=True):
    """What one effective visit adds to its scope and day: the conditions of SPEC §3
    that hold for it, as a bitmask over `CONDITIONS`, and the ids its distinct counts
    need."""

    household_id: str
    nurse_id: str
    flags: int

    def __post_init__(self) -> None:
        _check(0 <= self.flags < 1 << len(CONDITIONS), "set of conditions", self.flags)

    @classmethod
    def of(cls, household_id: str, nurse_id: str, conditions: Iterable[str]) -> Contribution:
        return cls(
            household_id, nurse_id, sum(1 << CONDITION_BIT[name] for name in set(conditions))
        )

    @property
    def conditions(self) -> frozenset[str]:
        return _CONDITION_SETS[self.flags]


CONDITION_BIT: Final = {name: bit for bit, name in enumerate(CONDITIONS)}


class _ConditionSets(dict[int, frozenset[str]]):
    """flags -> the names of their conditions, each set made once (a few hundred occur)."""

    def __missing__(self, flags: int) -> frozenset[str]:
        if flags < 0 or flags >> len(CONDITIONS):
            raise ValueError(f"not a set of conditions: {flags}")
        names = frozenset(name for name, bit in CONDITION_BIT.items() if flags >> bit & 1)
        self[flags] = names
        return names


_CONDITION_SETS: Final = _ConditionSets()

#: a stage-1 key: the rank of the winner, then of the best upsert (streams.revisions)
Key = tuple[Any, ...]


class VisitEntry(msgspec.Struct, array_like=True, frozen=True):
    """A visit as stage 2 knows it. `contribution` None: not effective (voided).
    `key` orders a visit's entries: the greatest is the truest."""

    key: Key
    municipality: str | None
    day: date | None
    contribution: Contribution | None

    def __post_init__(self) -> None:
        if self.municipality is not None:
            _check(self.municipality in MUNICIPALITIES, "municipality", self.municipality)


class ScopeEntries(msgspec.Struct, frozen=True, array_like=True, tag="entries"):
    """The entries of one stage-1 batch for one scope: visit_id -> entry. A visit's
    entry goes to its municipality, to `ALL`, and to every municipality it was in
    before (there it counts no more)."""

    scope: str
    entries: list[tuple[str, VisitEntry]]

    def __post_init__(self) -> None:
        _check(self.scope in SCOPES, "scope", self.scope)


class DaysSeen(msgspec.Struct, frozen=True, array_like=True, tag="days"):
    """The first and last local day of the upserts of a stage-1 batch (superseded ones
    too): they bound the days indicators are produced for (SPEC §3)."""

    first: date
    last: date


class Tick(msgspec.Struct, frozen=True, array_like=True, tag="tick"):
    """The clock (SPEC §2): compute now, up to `clock` (live), or up to the latest day
    seen when `clock` is None (event clock)."""

    clock: date | None


StageTwoMessage = ScopeEntries | DaysSeen | Tick


# --- what stage 2's tables keep ----------------------------------------------------------------


class StoredEntry(msgspec.Struct, frozen=True, array_like=True):
    """A visit's entry as stage 2's table keeps it, with the offset of the message that
    brought it and the earliest day it changed (its day, or the day of the entry it
    replaced): a worker that takes the partition on computes again only the rows from
    the days its entries changed after the partition's last computation."""

    entry: VisitEntry
    offset: int
    changed_from: date | None


class Computed(msgspec.Struct, frozen=True, array_like=True):
    """The days a stage-2 partition last computed rows for: the first day seen, and the
    clock day."""

    first: date
    clock: date


# --- indicators and alerts ---------------------------------------------------------------------


class IndicatorValue(msgspec.Struct, frozen=True, kw_only=True):
    """One row of `indicator_values` (SPEC §5). `version` is the offset of the tick that
    computed it in its stage-2 partition: later computations have greater ones, whatever
    any clock says."""

    municipality: str
    indicator: str
    window_days: int
    as_of: date
    numerator: int
    denominator: int | None
    value: float | None
    computed_at: AwareDatetime
    version: int

    def __post_init__(self) -> None:
        _check(self.municipality in SCOPES, "scope", self.municipality)
        _check(self.indicator in INDICATORS, "indicator", self.indicator)
        _check(self.window_days in WINDOWS, "window", self.window_days)


class IndicatorValues(msgspec.Struct, frozen=True, tag="indicator_values"):
    rows: list[IndicatorValue]


class Alert(msgspec.Struct, frozen=True, kw_only=True):
    """One alert transition (SPEC §4): a row of `alerts`."""

    municipality: str
    indicator: str
    window_days: int
    seq: int  # numbers the transitions of one (municipality, indicator, window)
    state: AlertState
    value: float | None
    target: float
    denominator: int | None
    as_of: date
    emitted_at: AwareDatetime

    def __post_init__(self) -> None:
        _check(self.municipality in MUNICIPALITIES, "municipality", self.municipality)
        _check(self.indicator in INDICATORS, "indicator", self.indicator)
        _check(self.window_days in WINDOWS, "window", self.window_days)


def _check(holds: bool, what: str, value: object) -> None:
    # In __post_init__, a ValueError becomes msgspec's ValidationError on decoding.
    if not holds:
        raise ValueError(f"unknown {what} {value!r}")


# --- encoding ----------------------------------------------------------------------------------

_ENCODER = msgspec.json.Encoder()
_DECODERS: dict[Any, msgspec.json.Decoder[Any]] = {}


def encode(message: Any) -> bytes:
    return _ENCODER.encode(message)


def decode(data: bytes, kind: Any) -> Any:
    """A message of `kind` (a struct, or a union of tagged structs); `DecodeError` (of
    which msgspec's ValidationError is one) when the bytes are not one."""
    decoder = _DECODERS.get(kind)
    if decoder is None:
        decoder = _DECODERS[kind] = msgspec.json.Decoder(kind)
    return decoder.decode(data)


DecodeError = msgspec.DecodeError
