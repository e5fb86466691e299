"""Validation at the boundary (SPEC §1): :func:`validate_payload` answers a
:class:`ValidEvent` or a :class:`Rejection` with a machine-readable reason, and never
raises. The stream and the ingest endpoint both call it; nothing else validates.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Final, Literal

from pydantic import ValidationError
from pydantic_core import ErrorDetails, from_json

from vizita.contract.days import local_day
from vizita.contract.events import EVENT_ADAPTER, Event
from vizita.contract.topics import (
    DLQ_HEADER_DETAIL,
    DLQ_HEADER_FIELD,
    DLQ_HEADER_REASON,
    DLQ_HEADER_SOURCE,
)

MAX_PAYLOAD_BYTES: Final = 64 * 1024
MAX_CLOCK_SKEW: Final = timedelta(minutes=10)
#: the first local day a visit can have: the programme began at the end of 2014
PROGRAMME_START: Final = date(2014, 1, 1)
#: how far past its arrival (the Kafka record's timestamp) a submission may be dated
MAX_SUBMITTED_AHEAD: Final = timedelta(hours=24)


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
    # Not the payload's fault: the pipeline could not handle it or pass it on.
    INTERNAL_ERROR = "internal_error"  # handling a valid event failed twice
    UNDECODABLE_MESSAGE = "undecodable_message"  # an internal topic's message is no message
    STORE_REFUSED = "store_refused"  # the store refused a row for good


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
    event: Event

    @property
    def is_valid(self) -> Literal[True]:
        return True


Validation = ValidEvent | Rejection

_DATETIME_ERRORS = {"datetime_parsing", "datetime_from_date_parsing", "datetime_object_invalid"}
_RANGE_ERRORS = {"greater_than_equal", "less_than_equal", "greater_than", "less_than"}
_ID_ERRORS = {"string_pattern_mismatch", "string_too_long", "string_too_short"}
_CODE_FIELDS = {"municipality", "visit_type", "outcome", "op"}
_MAX_DETAIL = 120


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
    if kind in {"union_tag_invalid", "unknown_code"}:
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


# Messages that would quote the value sent: `detail` is stored and shown, and a value may
# be what a form added (a name), so these say what was expected instead.
_QUOTING_MESSAGES = {"union_tag_invalid": "Input should be 'upsert' or 'void'"}


def _rejection_from(exc: ValidationError) -> Rejection:
    errors = exc.errors(include_url=False, include_input=False)
    first = errors[0]
    path = _field_path(first)
    message = _QUOTING_MESSAGES.get(first["type"], first["msg"])
    if len(message) > _MAX_DETAIL:  # the list of 38 codes says nothing a reader needs
        message = message[: _MAX_DETAIL - 3] + "..."
    return Rejection(_reason_for(first, path), path, f"{path or 'payload'}: {message}")


def _time_rejection(event: Event, received_at: datetime | None) -> Rejection | None:
    """SPEC §1's rules on the instants: a device clock far off must not move the days
    indicators cover. (Differences, not sums: a sum could overflow near datetime.max.)"""
    occurred = event.occurred_at
    if occurred is not None and local_day(occurred) < PROGRAMME_START:
        return Rejection(
            Reason.OUT_OF_RANGE,
            "occurred_at",
            f"occurred_at: before the programme began ({PROGRAMME_START.isoformat()})",
        )
    if occurred is not None and occurred - event.submitted_at > MAX_CLOCK_SKEW:
        return Rejection(
            Reason.OCCURRED_AFTER_SUBMITTED,
            "occurred_at",
            "occurred_at: more than 10 minutes after submitted_at",
        )
    if received_at is not None and event.submitted_at - received_at > MAX_SUBMITTED_AHEAD:
        return Rejection(
            Reason.OUT_OF_RANGE,
            "submitted_at",
            "submitted_at: more than 24 hours after the payload was received",
        )
    return None


def validate_payload(payload: bytes, received_at: datetime | None = None) -> Validation:
    """Check one raw payload against SPEC §1; `received_at` is when Vizita received it
    (the Kafka record's timestamp; None skips the rule that needs it). Never raises."""
    if len(payload) > MAX_PAYLOAD_BYTES:
        return Rejection(Reason.TOO_LARGE, "", f"payload: {len(payload)} bytes > 64 KiB")
    try:
        # NaN and Infinity are not JSON (SPEC §1), whatever field they are in.
        data = from_json(payload, allow_inf_nan=False)
    except ValueError as exc:
        return Rejection(Reason.NOT_JSON, "", f"payload: not valid JSON ({exc})"[:_MAX_DETAIL])
    if not isinstance(data, dict):
        return Rejection(Reason.NOT_OBJECT, "", "payload: JSON but not an object")
    try:
        event = EVENT_ADAPTER.validate_python(data, strict=True)
    except ValidationError as exc:
        return _rejection_from(exc)
    return _time_rejection(event, received_at) or ValidEvent(event)
