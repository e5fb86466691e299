"""The visit event (SPEC §1) as models: an `upsert` with every field, a `void` with
the six fields it needs and any other it carries. Validation of raw payloads, with
the reasons a payload is refused, is `vizita.contract.validation`.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Any, Final, Literal

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    StringConstraints,
    TypeAdapter,
    WithJsonSchema,
    model_serializer,
)
from pydantic_core import PydanticCustomError

from vizita.contract.codes import CounsellingTopic, Outcome, Referral, RiskFlag, VisitType
from vizita.contract.municipalities import MunicipalityCode

Id = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.:\-]{1,64}$")]

# Date, time, optional seconds and fraction, then Z or a ±hh:mm offset; a missing
# offset passes here so that it is reported as missing_utc_offset.
_ISO_DATETIME = re.compile(
    r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}([.,]\d{1,9})?)?(Z|[+-]\d{2}:\d{2})?$"
)
#: instants outside these years are no visit; the bounds also keep day arithmetic
#: (local_day, +10 minutes) far from datetime's own limits
EARLIEST_INSTANT: Final = datetime(1900, 1, 1, tzinfo=UTC)
LATEST_INSTANT: Final = datetime(3000, 1, 1, tzinfo=UTC)
MAX_LIST_ITEMS: Final = 16
MAX_REVISION: Final = 2**31 - 1
MAX_CHILD_AGE_MONTHS: Final = 71


def _iso_8601_only(value: Any) -> Any:
    # Parsed here because pydantic would also read "1711877400" as a Unix timestamp;
    # SPEC §1 wants ISO-8601. Non-strings go on to fail the strict type check.
    if not isinstance(value, str):
        return value
    try:
        if not _ISO_DATETIME.match(value):
            raise ValueError(value)
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise PydanticCustomError(
            "datetime_parsing", "Input should be an ISO-8601 datetime"
        ) from None
    if moment.tzinfo is not None and not EARLIEST_INSTANT <= moment < LATEST_INSTANT:
        raise PydanticCustomError("less_than", "Input should be between 1900 and 2999")
    return moment


def _schema_version_1(value: int) -> int:
    # A Literal[1] would compare by equality and let `true` and `1.0` through.
    if value != 1:
        raise PydanticCustomError("unsupported_schema_version", "Only schema_version 1 exists")
    return value


def _unique_sorted(items: list[str]) -> list[str]:
    # "A repeated item counts once": keep a canonical, order-free form.
    return sorted(set(items))


Instant = Annotated[AwareDatetime, BeforeValidator(_iso_8601_only)]
# The JSON schema (the ingest endpoint's OpenAPI document) says what the rule above says.
SchemaVersion = Annotated[
    int, AfterValidator(_schema_version_1), WithJsonSchema({"type": "integer", "const": 1})
]
Revision = Annotated[int, Field(ge=1, le=MAX_REVISION)]
ChildAge = Annotated[int, Field(ge=0, le=MAX_CHILD_AGE_MONTHS)]
_LIST_RULES = (Field(max_length=MAX_LIST_ITEMS), AfterValidator(_unique_sorted))
TopicList = Annotated[list[CounsellingTopic], *_LIST_RULES]
RiskFlagList = Annotated[list[RiskFlag], *_LIST_RULES]
ReferralList = Annotated[list[Referral], *_LIST_RULES]

# Unknown fields are dropped, not stored: the SPEC does not make them invalid, and
# dropping them keeps anything a form adds (a name, say) out of the store.
_STRICT = ConfigDict(strict=True, frozen=True, extra="ignore")


class EventEnvelope(BaseModel):
    """What every event carries besides `op` (with it, all a void needs)."""

    model_config = _STRICT

    schema_version: SchemaVersion
    event_id: Id
    visit_id: Id
    revision: Revision
    submitted_at: Instant


class VisitDetails(BaseModel):
    """What the visit was, as an upsert must give it: every field of §1 but the envelope."""

    model_config = _STRICT

    occurred_at: Instant
    municipality: MunicipalityCode
    facility_id: Id | None
    nurse_id: Id
    household_id: Id
    child_age_months: ChildAge | None
    pregnant: bool
    visit_type: VisitType
    outcome: Outcome
    topics: TopicList
    risk_flags: RiskFlagList
    referrals: ReferralList


def _not_null(value: Any) -> Any:
    # Runs only on values the payload gives, never on the default of an absent field.
    if value is None:
        raise PydanticCustomError("null_not_allowed", "Input should not be null")
    return value


_NOT_NULL = BeforeValidator(_not_null)


class OptionalVisitDetails(BaseModel):
    """The fields of :class:`VisitDetails` where each may be absent (a void, a row).
    A value given must follow the same rule; `null` only where an upsert allows it
    (facility, child age). Absent fields stay absent in the model's own JSON."""

    model_config = _STRICT

    occurred_at: Annotated[Instant | None, _NOT_NULL] = None
    municipality: Annotated[MunicipalityCode | None, _NOT_NULL] = None
    facility_id: Id | None = None
    nurse_id: Annotated[Id | None, _NOT_NULL] = None
    household_id: Annotated[Id | None, _NOT_NULL] = None
    child_age_months: ChildAge | None = None
    pregnant: Annotated[bool | None, _NOT_NULL] = None
    visit_type: Annotated[VisitType | None, _NOT_NULL] = None
    outcome: Annotated[Outcome | None, _NOT_NULL] = None
    topics: Annotated[TopicList | None, _NOT_NULL] = None
    risk_flags: Annotated[RiskFlagList | None, _NOT_NULL] = None
    referrals: Annotated[ReferralList | None, _NOT_NULL] = None

    @model_serializer(mode="wrap")
    def _without_absent(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        data: dict[str, Any] = handler(self)
        return {name: value for name, value in data.items() if value is not None}


class UpsertEvent(VisitDetails, EventEnvelope):
    op: Literal["upsert"]


class VoidEvent(OptionalVisitDetails, EventEnvelope):
    """A retraction. Only the envelope is required; any other field it carries must
    still follow the rules (a careful validator does not store bad data)."""

    op: Literal["void"]


Event = UpsertEvent | VoidEvent
EVENT_ADAPTER: Final[TypeAdapter[Event]] = TypeAdapter(Annotated[Event, Field(discriminator="op")])
#: every field of SPEC §1, in the order the event models declare them
EVENT_FIELDS: Final[tuple[str, ...]] = tuple(UpsertEvent.model_fields)
#: the fields that describe the visit (everything but the envelope and op)
DETAIL_FIELDS: Final[tuple[str, ...]] = tuple(VisitDetails.model_fields)


def parse_event(text: str | bytes) -> Event:
    """An event this pipeline validated before (trusted: errors here are bugs)."""
    return EVENT_ADAPTER.validate_json(text, strict=True)
