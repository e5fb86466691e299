"""The messages between the parts, as models: what each internal topic carries and
what `indicators` and `alerts` publish. Every producer builds one of these and every
reader parses one; no message is an ad-hoc dict.

- `visits-effective`: :class:`VisitRow`, a visit's finished `visits` row (stage 1 → sink).
- `visit-contributions`: :class:`ContributionMessage` (stage 1 → stage 2) and
  :class:`Tick` (the clock → stage 2), told apart by `kind`.
- `indicators`: :class:`IndicatorValue`; `alerts`: :class:`Alert`.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Final, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    model_serializer,
    model_validator,
)

from vizita.contract.codes import Op
from vizita.contract.events import EventEnvelope, OptionalVisitDetails
from vizita.contract.indicators import IndicatorName, WindowDays
from vizita.contract.municipalities import MunicipalityCode, ScopeCode
from vizita.contract.targets import AlertState

_MESSAGE = ConfigDict(frozen=True)


class VisitRow(OptionalVisitDetails, EventEnvelope):
    """A visit's `visits` row (SPEC §5): its winning event's envelope, the details of
    the visit (of its best upsert when the winner is a void), and what the store adds.
    `version` orders a visit's rows; the greatest is the true one (streams.revisions)."""

    op: Op
    is_void: bool
    local_day: date
    version: int = Field(ge=0, lt=2**256)  # the store's UInt256


class Contribution(BaseModel):
    """What one effective visit adds to its scope and day: the names of the indicator
    conditions that hold for it (streams.indicators defines them) and the ids its
    distinct counts need. On the wire a compact list: [household, nurse, [flags]]."""

    model_config = _MESSAGE

    household_id: str
    nurse_id: str
    flags: frozenset[str]

    @model_validator(mode="before")
    @classmethod
    def _from_list(cls, data: Any) -> Any:
        if isinstance(data, list | tuple) and len(data) == 3:  # noqa: PLR2004  # the three fields
            return dict(zip(("household_id", "nurse_id", "flags"), data, strict=True))
        return data

    @model_serializer(mode="plain")
    def to_json(self) -> list[Any]:
        return [self.household_id, self.nurse_id, sorted(self.flags)]

    @classmethod
    def from_json(cls, data: Any) -> Contribution:
        return cls.model_validate(data)


class VisitEntry(BaseModel):
    """A visit as stage 2 knows it. `contribution` None: not effective (voided).
    `key` orders a visit's entries: the greatest is the truest (streams.revisions).
    On the wire a compact list: [key, municipality, day, contribution]."""

    model_config = _MESSAGE

    key: tuple[Any, ...]
    municipality: MunicipalityCode | None
    day: date | None
    contribution: Contribution | None

    @model_validator(mode="before")
    @classmethod
    def _from_list(cls, data: Any) -> Any:
        if isinstance(data, list | tuple) and len(data) == 4:  # noqa: PLR2004  # the four fields
            return dict(zip(("key", "municipality", "day", "contribution"), data, strict=True))
        return data

    @model_serializer(mode="plain")
    def to_json(self) -> list[Any]:
        contribution = self.contribution.to_json() if self.contribution else None
        day = self.day.isoformat() if self.day else None
        return [list(self.key), self.municipality, day, contribution]

    @classmethod
    def from_json(cls, data: Any) -> VisitEntry:
        return cls.model_validate(data)


class ContributionMessage(BaseModel):
    """A visit's entry after one of its events, and the day that event adds to the
    range of days indicators are produced for (an upsert's, superseded or not)."""

    model_config = _MESSAGE

    kind: Literal["contribution"] = "contribution"
    entry: VisitEntry
    seen: date | None


class Tick(BaseModel):
    """The clock (SPEC §2): compute now, up to `clock` (live), or up to the latest day
    seen when `clock` is None (event clock)."""

    model_config = _MESSAGE

    kind: Literal["tick"] = "tick"
    clock: date | None


StageTwoMessage = ContributionMessage | Tick
STAGE_TWO_ADAPTER: Final[TypeAdapter[StageTwoMessage]] = TypeAdapter(
    Annotated[StageTwoMessage, Field(discriminator="kind")]
)


class IndicatorValue(BaseModel):
    """One row of `indicator_values` (SPEC §5)."""

    model_config = _MESSAGE

    municipality: ScopeCode
    indicator: IndicatorName
    window_days: WindowDays
    as_of: date
    numerator: int
    denominator: int | None
    value: float | None
    computed_at: AwareDatetime


class Alert(BaseModel):
    """One alert transition (SPEC §4): a row of `alerts`."""

    model_config = _MESSAGE

    municipality: MunicipalityCode
    indicator: IndicatorName
    window_days: WindowDays
    seq: int  # numbers the transitions of one (municipality, indicator, window)
    state: AlertState
    value: float | None
    target: float
    denominator: int | None
    as_of: date
    emitted_at: AwareDatetime
