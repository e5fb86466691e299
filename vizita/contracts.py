"""The contract (SPEC §1, §3, §4, §6): events, indicators, alerts, topics, codes.

Producers, streams, sinks and dashboards import from here; nothing else defines a
field. Validation happens once, at the boundary, in :func:`validate_payload`: it
answers a :class:`ValidEvent` or a :class:`Rejection` with a machine-readable reason
and never raises.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

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
    ValidationError,
    model_serializer,
)
from pydantic_core import ErrorDetails, PydanticCustomError

# --- topics -------------------------------------------------------------------------

TOPIC_VISITS = "visits"
TOPIC_VISITS_DLQ = "visits-dlq"
TOPIC_INDICATORS = "indicators"
TOPIC_ALERTS = "alerts"
# Internal: the winning revision of each visit, written by the streams, read by the sink.
TOPIC_VISITS_EFFECTIVE = "visits-effective"
# Internal: each visit's contribution to the indicators, and the clock's ticks (stage 2).
TOPIC_VISIT_CONTRIBUTIONS = "visit-contributions"

# Headers on a dead-lettered message; the value stays the original bytes.
DLQ_HEADER_REASON = "vizita-reason"
DLQ_HEADER_FIELD = "vizita-field"
DLQ_HEADER_DETAIL = "vizita-detail"
DLQ_HEADER_SOURCE = "vizita-source"
# Who sent a payload through the ingest endpoint (on `visits` and on its dead letters).
SUBMITTER_HEADER = "vizita-submitter"

# --- time -----------------------------------------------------------------------------

LOCAL_TZ = ZoneInfo("Europe/Belgrade")
MAX_PAYLOAD_BYTES = 64 * 1024
MAX_CLOCK_SKEW = timedelta(minutes=10)
WINDOWS: tuple[int, ...] = (7, 30)


def local_day(moment: datetime) -> date:
    """The programme day of an instant: its date in Kosovo's time zone (SPEC §2)."""
    return moment.astimezone(LOCAL_TZ).date()


# --- codes (SPEC §6 and the lists of §1) ---------------------------------------------

#: code -> (Albanian name, Serbian name)
MUNICIPALITIES: dict[str, tuple[str, str]] = {
    "decan": ("Deçan", "Dečani"),
    "dragash": ("Dragash", "Dragaš"),
    "ferizaj": ("Ferizaj", "Uroševac"),
    "fushe_kosove": ("Fushë Kosovë", "Kosovo Polje"),
    "gjakove": ("Gjakovë", "Đakovica"),
    "gjilan": ("Gjilan", "Gnjilane"),
    "gllogoc": ("Gllogoc", "Glogovac"),
    "gracanice": ("Graçanicë", "Gračanica"),
    "hani_i_elezit": ("Hani i Elezit", "Elez Han"),
    "istog": ("Istog", "Istok"),
    "junik": ("Junik", "Junik"),
    "kacanik": ("Kaçanik", "Kačanik"),
    "kamenice": ("Kamenicë", "Kamenica"),
    "kline": ("Klinë", "Klina"),
    "kllokot": ("Kllokot", "Klokot"),
    "leposaviq": ("Leposaviq", "Leposavić"),
    "lipjan": ("Lipjan", "Lipljan"),
    "malisheve": ("Malishevë", "Mališevo"),
    "mamushe": ("Mamushë", "Mamuša"),
    "mitrovice_jugore": ("Mitrovicë e Jugut", "Južna Mitrovica"),
    "mitrovice_veriore": ("Mitrovicë e Veriut", "Severna Mitrovica"),
    "novoberde": ("Novobërdë", "Novo Brdo"),
    "obiliq": ("Obiliq", "Obilić"),
    "partesh": ("Partesh", "Parteš"),
    "peje": ("Pejë", "Peć"),
    "podujeve": ("Podujevë", "Podujevo"),
    "prishtine": ("Prishtinë", "Priština"),
    "prizren": ("Prizren", "Prizren"),
    "rahovec": ("Rahovec", "Orahovac"),
    "ranillug": ("Ranillug", "Ranilug"),
    "shterpce": ("Shtërpcë", "Štrpce"),
    "shtime": ("Shtime", "Štimlje"),
    "skenderaj": ("Skënderaj", "Srbica"),
    "suhareke": ("Suharekë", "Suva Reka"),
    "viti": ("Viti", "Vitina"),
    "vushtrri": ("Vushtrri", "Vučitrn"),
    "zubin_potok": ("Zubin Potok", "Zubin Potok"),
    "zvecan": ("Zveçan", "Zvečan"),
}
ALL_KOSOVO = "ALL"

Municipality = Literal[
    "decan", "dragash", "ferizaj", "fushe_kosove", "gjakove", "gjilan", "gllogoc",
    "gracanice", "hani_i_elezit", "istog", "junik", "kacanik", "kamenice", "kline",
    "kllokot", "leposaviq", "lipjan", "malisheve", "mamushe", "mitrovice_jugore",
    "mitrovice_veriore", "novoberde", "obiliq", "partesh", "peje", "podujeve",
    "prishtine", "prizren", "rahovec", "ranillug", "shterpce", "shtime", "skenderaj",
    "suhareke", "viti", "vushtrri", "zubin_potok", "zvecan",
]  # fmt: skip
VisitType = Literal["prenatal", "newborn", "routine", "follow_up"]
Outcome = Literal["completed", "not_home", "refused"]
Topic = Literal[
    "immunisation", "breastfeeding", "nutrition", "early_stimulation",
    "injury_prevention", "responsive_parenting", "maternal_health",
]  # fmt: skip
RiskFlag = Literal["developmental_delay", "disability", "violence_risk"]
Referral = Literal[
    "social_services", "specialist_care", "child_protection", "early_childhood_education"
]

TOPICS: tuple[str, ...] = Topic.__args__  # type: ignore[attr-defined]  # Literal keeps its values here
RISK_FLAGS: tuple[str, ...] = RiskFlag.__args__  # type: ignore[attr-defined]  # as above
REFERRALS: tuple[str, ...] = Referral.__args__  # type: ignore[attr-defined]  # as above
VISIT_TYPES: tuple[str, ...] = VisitType.__args__  # type: ignore[attr-defined]  # as above
OUTCOMES: tuple[str, ...] = Outcome.__args__  # type: ignore[attr-defined]  # as above

# --- the event (SPEC §1) ---------------------------------------------------------------

Id = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.:\-]{1,64}$")]

# Date, time, optional seconds and fraction, then Z or a ±hh:mm offset; a missing
# offset passes here so that it is reported as missing_utc_offset.
_ISO_DATETIME = re.compile(
    r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}([.,]\d{1,9})?)?(Z|[+-]\d{2}:\d{2})?$"
)
# Instants outside these years are no visit; the bounds also keep day arithmetic
# (local_day, +10 minutes) far from datetime's own limits.
_EARLIEST = datetime(1900, 1, 1, tzinfo=UTC)
_LATEST = datetime(3000, 1, 1, tzinfo=UTC)


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
    if moment.tzinfo is not None and not _EARLIEST <= moment < _LATEST:
        raise PydanticCustomError("less_than", "Input should be between 1900 and 2999")
    return moment


def _schema_version_1(value: int) -> int:
    # A Literal[1] would compare by equality and let `true` and `1.0` through.
    if value != 1:
        raise PydanticCustomError("unsupported_schema_version", "Only schema_version 1 exists")
    return value


Instant = Annotated[AwareDatetime, BeforeValidator(_iso_8601_only)]
SchemaVersion = Annotated[int, AfterValidator(_schema_version_1)]
MAX_LIST_ITEMS = 16


def _unique_sorted(items: list[str]) -> list[str]:
    # "A repeated item counts once": keep a canonical, order-free form.
    return sorted(set(items))


_LIST_RULES = (Field(max_length=MAX_LIST_ITEMS), AfterValidator(_unique_sorted))
TopicList = Annotated[list[Topic], *_LIST_RULES]
RiskFlagList = Annotated[list[RiskFlag], *_LIST_RULES]
ReferralList = Annotated[list[Referral], *_LIST_RULES]


class _EventBase(BaseModel):
    # Unknown fields are dropped, not stored: the SPEC does not make them invalid, and
    # dropping them keeps anything a form adds (a name, say) out of the store.
    model_config = ConfigDict(strict=True, frozen=True, extra="ignore")

    schema_version: SchemaVersion
    event_id: Id
    visit_id: Id
    revision: int = Field(ge=1, le=2**31 - 1)
    submitted_at: Instant


class UpsertEvent(_EventBase):
    op: Literal["upsert"]
    occurred_at: Instant
    municipality: Municipality
    facility_id: Id | None
    nurse_id: Id
    household_id: Id
    child_age_months: int | None = Field(ge=0, le=71)
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


class VoidEvent(_EventBase):
    """A retraction. Only the base fields are required; any other field it carries
    must still follow the rules (a careful validator does not store bad data)."""

    op: Literal["void"]
    # Absent is fine; `null` only where an upsert allows it (facility, child age).
    occurred_at: Annotated[Instant | None, _NOT_NULL] = None
    municipality: Annotated[Municipality | None, _NOT_NULL] = None
    facility_id: Id | None = None
    nurse_id: Annotated[Id | None, _NOT_NULL] = None
    household_id: Annotated[Id | None, _NOT_NULL] = None
    child_age_months: int | None = Field(default=None, ge=0, le=71)
    pregnant: Annotated[bool | None, _NOT_NULL] = None
    visit_type: Annotated[VisitType | None, _NOT_NULL] = None
    outcome: Annotated[Outcome | None, _NOT_NULL] = None
    topics: Annotated[TopicList | None, _NOT_NULL] = None
    risk_flags: Annotated[RiskFlagList | None, _NOT_NULL] = None
    referrals: Annotated[ReferralList | None, _NOT_NULL] = None

    @model_serializer(mode="wrap")
    def _without_absent(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        # An absent field stays absent in the event's own JSON, which must validate again.
        data: dict[str, Any] = handler(self)
        return {name: value for name, value in data.items() if value is not None}


VisitEvent = Annotated[UpsertEvent | VoidEvent, Field(discriminator="op")]
EVENT_ADAPTER: TypeAdapter[UpsertEvent | VoidEvent] = TypeAdapter(VisitEvent)

# --- rejections --------------------------------------------------------------------------


class Reason(enum.StrEnum):
    """Why a payload was dead-lettered. The values are stable: dashboards group by them."""

    TOO_LARGE = "too_large"
    NOT_JSON = "not_json"
    NOT_OBJECT = "not_object"
    UNSUPPORTED_SCHEMA_VERSION = "unsupported_schema_version"
    MISSING_FIELD = "missing_field"
    WRONG_TYPE = "wrong_type"
    INVALID_ID = "invalid_id"
    INVALID_DATETIME = "invalid_datetime"
    MISSING_UTC_OFFSET = "missing_utc_offset"
    UNKNOWN_CODE = "unknown_code"
    UNKNOWN_LIST_ITEM = "unknown_list_item"
    TOO_MANY_ITEMS = "too_many_items"
    OUT_OF_RANGE = "out_of_range"
    OCCURRED_AFTER_SUBMITTED = "occurred_after_submitted"


@dataclass(frozen=True, slots=True)
class Rejection:
    reason: Reason
    field: str  # dotted path of the offending field, "" for the whole payload
    detail: str

    @property
    def is_valid(self) -> Literal[False]:
        return False

    def dlq_headers(self, source: str) -> list[tuple[str, bytes]]:
        """The headers of this rejection's dead letter; `source` says where it came from."""
        return [(DLQ_HEADER_REASON, self.reason.value.encode()),
                (DLQ_HEADER_FIELD, self.field.encode()),
                (DLQ_HEADER_DETAIL, self.detail.encode()),
                (DLQ_HEADER_SOURCE, source.encode())]  # fmt: skip


@dataclass(frozen=True, slots=True)
class ValidEvent:
    event: UpsertEvent | VoidEvent

    @property
    def is_valid(self) -> Literal[True]:
        return True


Validation = ValidEvent | Rejection

_TYPE_ERRORS = {
    "int_type", "bool_type", "string_type", "list_type", "datetime_type", "none_required",
    "int_from_float", "float_type", "dict_type", "model_type", "is_instance_of",
}  # fmt: skip
_DATETIME_ERRORS = {"datetime_parsing", "datetime_from_date_parsing", "datetime_object_invalid"}
_RANGE_ERRORS = {"greater_than_equal", "less_than_equal", "greater_than", "less_than"}
_ID_ERRORS = {"string_pattern_mismatch", "string_too_long", "string_too_short"}
_MAX_DETAIL = 120
_CODE_FIELDS = {"municipality", "visit_type", "outcome", "op"}


def _field_path(error: ErrorDetails) -> str:
    # Union branches add the tag ("upsert"/"void") as the first location item.
    if error["type"] in {"union_tag_invalid", "union_tag_not_found"}:
        return "op"  # the discriminator: pydantic reports it at the payload's root
    loc = [str(part) for part in error["loc"]]
    if loc and loc[0] in ("upsert", "void"):
        loc = loc[1:]
    return ".".join(loc)


def _reason_for(error: ErrorDetails, path: str) -> Reason:  # noqa: PLR0911  # a flat lookup reads best
    kind = error["type"]
    top = path.split(".", 1)[0]
    if kind in {"missing", "union_tag_not_found"}:
        return Reason.MISSING_FIELD
    if kind == "json_invalid":
        return Reason.NOT_JSON
    if kind == "model_attributes_type" and not path:
        return Reason.NOT_OBJECT
    if kind == "union_tag_invalid":
        return Reason.UNKNOWN_CODE
    if kind == "unsupported_schema_version":
        return Reason.UNSUPPORTED_SCHEMA_VERSION
    if kind == "literal_error":
        return Reason.UNKNOWN_CODE if top in _CODE_FIELDS else Reason.UNKNOWN_LIST_ITEM
    if kind == "timezone_aware":
        return Reason.MISSING_UTC_OFFSET
    if kind in _DATETIME_ERRORS:
        return Reason.INVALID_DATETIME
    if kind in _RANGE_ERRORS:
        return Reason.OUT_OF_RANGE
    if kind in _ID_ERRORS:
        return Reason.INVALID_ID
    if kind == "too_long":
        return Reason.TOO_MANY_ITEMS
    return Reason.WRONG_TYPE


def _rejection_from(exc: ValidationError) -> Rejection:
    errors = exc.errors(include_url=False, include_input=False)
    first = errors[0]
    path = _field_path(first)
    message = first["msg"]
    if len(message) > _MAX_DETAIL:  # the list of 38 codes says nothing a reader needs
        message = message[: _MAX_DETAIL - 3] + "..."
    return Rejection(_reason_for(first, path), path, f"{path or 'payload'}: {message}")


def _clock_rejection(event: UpsertEvent | VoidEvent) -> Rejection | None:
    # A difference, not submitted_at + 10 min: that could overflow at datetime.max.
    if event.occurred_at is None or event.occurred_at - event.submitted_at <= MAX_CLOCK_SKEW:
        return None
    return Rejection(
        Reason.OCCURRED_AFTER_SUBMITTED,
        "occurred_at",
        "occurred_at: more than 10 minutes after submitted_at",
    )


def validate_payload(payload: bytes) -> Validation:
    """Check one raw payload against SPEC §1. Never raises."""
    if len(payload) > MAX_PAYLOAD_BYTES:
        return Rejection(Reason.TOO_LARGE, "", f"payload: {len(payload)} bytes > 64 KiB")
    if payload.lstrip()[:1] != b"{":
        # Cheap check first; pydantic would call a JSON list "not an object" anyway,
        # but bytes that are no JSON at all should say so.
        return _rejection_for_non_object(payload)
    try:
        event = EVENT_ADAPTER.validate_json(payload, strict=True)
    except ValidationError as exc:
        return _rejection_from(exc)
    return _clock_rejection(event) or ValidEvent(event)


def _rejection_for_non_object(payload: bytes) -> Rejection:
    try:
        _ANY_JSON.validate_json(payload)
    except ValidationError:
        return Rejection(Reason.NOT_JSON, "", "payload: not valid JSON")
    return Rejection(Reason.NOT_OBJECT, "", "payload: JSON but not an object")


_ANY_JSON: TypeAdapter[Any] = TypeAdapter(Any)

# --- the effective visit (SPEC §1) --------------------------------------------------------


def winner_rank(event: UpsertEvent | VoidEvent) -> tuple[int, datetime, str]:
    """Order of revisions: highest revision, then later submitted_at, then greater event_id."""
    return (event.revision, event.submitted_at, event.event_id)


# --- indicators and alerts (SPEC §3, §4) ----------------------------------------------------

Indicator = Literal[
    "visits_completed",
    "households_reached",
    "immunisation_counselling_coverage",
    "breastfeeding_counselling_coverage",
    "maternal_health_counselling_coverage",
    "early_stimulation_coverage",
    "at_risk_referral_rate",
    "missed_visit_rate",
    "visits_per_nurse",
]
INDICATORS: tuple[str, ...] = Indicator.__args__  # type: ignore[attr-defined]  # as above
COUNT_INDICATORS: frozenset[str] = frozenset({"visits_completed", "households_reached"})


class IndicatorValue(BaseModel):
    model_config = ConfigDict(frozen=True)

    municipality: Municipality | Literal["ALL"]
    indicator: Indicator
    window_days: Literal[7, 30]
    as_of: date
    numerator: int
    denominator: int | None
    value: float | None
    computed_at: AwareDatetime


class Alert(BaseModel):
    model_config = ConfigDict(frozen=True)

    municipality: Municipality
    indicator: Indicator
    window_days: Literal[7, 30]
    seq: int  # numbers the transitions of one (municipality, indicator, window)
    state: Literal["raised", "resolved"]
    value: float | None
    target: float
    denominator: int | None
    as_of: date
    emitted_at: AwareDatetime
