"""The boundary validator (SPEC §1): every rule gets a payload that breaks it and the exact
machine-readable reason it must be dead-lettered with; valid edge cases pass; and no bytes
at all make `validate_payload` raise."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vizita.contract.codes import OUTCOMES, REFERRALS, RISK_FLAGS, TOPICS, VISIT_TYPES
from vizita.contract.events import UpsertEvent, VoidEvent
from vizita.contract.municipalities import MUNICIPALITIES
from vizita.contract.validation import Reason, Rejection, ValidEvent, validate_payload

# --- payloads --------------------------------------------------------------------------

VOID_FIELDS = ("schema_version", "event_id", "visit_id", "revision", "op", "submitted_at")
UPSERT_FIELDS = (
    "schema_version", "event_id", "visit_id", "revision", "op", "occurred_at", "submitted_at",
    "municipality", "facility_id", "nurse_id", "household_id", "child_age_months", "pregnant",
    "visit_type", "outcome", "topics", "risk_flags", "referrals",
)  # fmt: skip
ID_FIELDS = ("event_id", "visit_id", "facility_id", "nurse_id", "household_id")
LIST_FIELDS = {"topics": TOPICS, "risk_flags": RISK_FLAGS, "referrals": REFERRALS}
# 64 characters, every kind the alphabet allows: letters, digits and `_ . : -`.
LONGEST_ID = "Az09_.:-" * 8
KIB_64 = 64 * 1024


def upsert_payload(**overrides: Any) -> dict[str, Any]:
    """A valid upsert with every field of SPEC §1; `overrides` replace fields."""
    payload: dict[str, Any] = {
        "schema_version": 1,
        "event_id": "evt-2024-0001",
        "visit_id": "visit:prz.0001",
        "revision": 1,
        "op": "upsert",
        "occurred_at": "2024-03-31T09:30:00Z",
        "submitted_at": "2024-03-31T11:45:00+02:00",
        "municipality": "prizren",
        "facility_id": "qmf_prizren_01",
        "nurse_id": "nurse-17",
        "household_id": "hh-8f3a9c",
        "child_age_months": 4,
        "pregnant": False,
        "visit_type": "routine",
        "outcome": "completed",
        "topics": ["immunisation", "breastfeeding"],
        "risk_flags": ["developmental_delay"],
        "referrals": ["specialist_care"],
    }
    payload.update(overrides)
    return payload


def void_payload(**overrides: Any) -> dict[str, Any]:
    """A valid void with only the six fields a void needs."""
    payload: dict[str, Any] = {
        "schema_version": 1,
        "event_id": "evt-2024-0002",
        "visit_id": "visit:prz.0001",
        "revision": 2,
        "op": "void",
        "submitted_at": "2024-04-01T08:00:00+02:00",
    }
    payload.update(overrides)
    return payload


def encode(payload: Any) -> bytes:
    return json.dumps(payload).encode()


def valid(payload: dict[str, Any] | bytes) -> UpsertEvent | VoidEvent:
    result = validate_payload(payload if isinstance(payload, bytes) else encode(payload))
    assert isinstance(result, ValidEvent), result
    return result.event


def rejected(payload: dict[str, Any] | bytes) -> Rejection:
    result = validate_payload(payload if isinstance(payload, bytes) else encode(payload))
    assert isinstance(result, Rejection), result
    assert isinstance(result.reason, Reason)
    assert result.detail
    return result


def without(payload: dict[str, Any], name: str) -> dict[str, Any]:
    return {key: value for key, value in payload.items() if key != name}


def padded_to(size: int, payload: dict[str, Any]) -> bytes:
    """`payload` with an unknown `padding` field that makes it exactly `size` bytes."""
    bare = len(encode({**payload, "padding": ""}))
    data = encode({**payload, "padding": "x" * (size - bare)})
    assert len(data) == size
    return data


@pytest.fixture
def upsert() -> dict[str, Any]:
    return upsert_payload()


@pytest.fixture
def void() -> dict[str, Any]:
    return void_payload()


# --- the valid baselines -------------------------------------------------------------------


def test_the_baseline_upsert_is_valid(upsert: dict[str, Any]) -> None:
    event = valid(upsert)
    assert isinstance(event, UpsertEvent)
    assert event.model_dump(mode="json").keys() == set(UPSERT_FIELDS)
    assert event.occurred_at == datetime(2024, 3, 31, 9, 30, tzinfo=UTC)
    assert event.submitted_at == datetime(2024, 3, 31, 9, 45, tzinfo=UTC)


def test_a_void_with_only_its_six_fields_is_valid(void: dict[str, Any]) -> None:
    assert set(void) == set(VOID_FIELDS)
    event = valid(void)
    assert isinstance(event, VoidEvent)
    assert event.occurred_at is None
    assert event.municipality is None


def test_a_void_may_carry_valid_descriptive_fields(upsert: dict[str, Any]) -> None:
    event = valid({**upsert, "op": "void"})
    assert isinstance(event, VoidEvent)
    assert event.municipality == "prizren"


# --- not JSON, not an object -----------------------------------------------------------------


@pytest.mark.parametrize(
    "payload",
    [
        b"",
        b"   ",
        b"not json",
        b"{",
        b'{"schema_version": 1,',
        b"{'single': 'quotes'}",
        b'{"a": 1} trailing',
        b"\xff\xfe\x00\x01",  # not UTF-8 at all
        b'{"op": "\xff"}',  # an object, but with a byte that is not UTF-8
        b"\xef\xbb\xbf{}",  # a UTF-8 byte order mark is not JSON
    ],
)
def test_bytes_that_are_not_json(payload: bytes) -> None:
    rejection = rejected(payload)
    assert rejection.reason is Reason.NOT_JSON
    assert rejection.field == ""


def test_a_valid_event_with_a_non_utf8_byte_is_not_json(upsert: dict[str, Any]) -> None:
    data = encode(upsert)[:-1] + b', "note": "caf\xe9"}'
    assert rejected(data).reason is Reason.NOT_JSON


@pytest.mark.parametrize("payload", [[], [upsert_payload()], 7, 3.5, "upsert", True, None])
def test_json_that_is_not_an_object(payload: Any) -> None:
    rejection = rejected(encode(payload))
    assert rejection.reason is Reason.NOT_OBJECT
    assert rejection.field == ""


# --- required fields, op, schema version -----------------------------------------------------


@pytest.mark.parametrize("name", UPSERT_FIELDS)
def test_every_upsert_field_is_required(upsert: dict[str, Any], name: str) -> None:
    rejection = rejected(without(upsert, name))
    assert rejection.reason is Reason.MISSING_FIELD
    assert rejection.field == name


@pytest.mark.parametrize("name", VOID_FIELDS)
def test_every_void_field_is_required(void: dict[str, Any], name: str) -> None:
    rejection = rejected(without(void, name))
    assert rejection.reason is Reason.MISSING_FIELD
    assert rejection.field == name


def test_an_empty_object_misses_fields() -> None:
    assert rejected(b"{}").reason is Reason.MISSING_FIELD


@pytest.mark.parametrize("build", [upsert_payload, void_payload])
def test_op_missing_is_a_missing_field(build: Any) -> None:
    assert rejected(without(build(), "op")).reason is Reason.MISSING_FIELD


@pytest.mark.parametrize("op", ["delete", "UPSERT", "Void", "", 1, None, True, ["upsert"]])
def test_an_unknown_op_is_an_unknown_code(upsert: dict[str, Any], op: Any) -> None:
    rejection = rejected({**upsert, "op": op})
    assert rejection.reason is Reason.UNKNOWN_CODE
    assert rejection.field == "op"


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (2, Reason.UNSUPPORTED_SCHEMA_VERSION),
        (0, Reason.UNSUPPORTED_SCHEMA_VERSION),
        (-1, Reason.UNSUPPORTED_SCHEMA_VERSION),
        # The right number as the wrong type is a type error, like `"7"` for a revision:
        # SPEC §1 says `1` is not `true`, and a Literal[1] would let `true` and `1.0` in.
        ("1", Reason.WRONG_TYPE),
        (True, Reason.WRONG_TYPE),
        (1.0, Reason.WRONG_TYPE),
        (None, Reason.WRONG_TYPE),
    ],
)
@pytest.mark.parametrize("build", [upsert_payload, void_payload])
def test_schema_version(build: Any, value: Any, reason: Reason) -> None:
    rejection = rejected(build(schema_version=value))
    assert rejection.reason is reason
    assert rejection.field == "schema_version"


# --- strict types ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("revision", "7"),
        ("revision", 3.0),
        ("revision", 1.5),
        ("revision", True),
        ("revision", None),
        ("pregnant", 1),
        ("pregnant", 0),
        ("pregnant", "true"),
        ("pregnant", None),
        ("child_age_months", True),
        ("child_age_months", 3.0),
        ("child_age_months", "4"),
        ("topics", "immunisation"),
        ("topics", {"immunisation": True}),
        ("risk_flags", None),
        ("referrals", "social_services"),
        ("nurse_id", 17),
        ("household_id", None),
        ("event_id", 42),
        ("facility_id", ["qmf"]),
        ("occurred_at", 1711877400),
        ("submitted_at", None),
        ("occurred_at", None),
    ],
)
def test_wrong_types(upsert: dict[str, Any], name: str, value: Any) -> None:
    rejection = rejected({**upsert, name: value})
    assert rejection.reason is Reason.WRONG_TYPE
    assert rejection.field == name


def test_a_float_revision_on_a_void_is_a_wrong_type(void: dict[str, Any]) -> None:
    rejection = rejected({**void, "revision": 2.0})
    assert (rejection.reason, rejection.field) == (Reason.WRONG_TYPE, "revision")


# --- codes and list items ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("municipality", "atlantis"),
        ("municipality", "Prizren"),  # codes are case-sensitive
        ("municipality", "ALL"),  # the all-Kosovo aggregate is not a place a visit happens
        ("municipality", "prizren "),
        ("visit_type", "postnatal"),
        ("outcome", "cancelled"),
    ],
)
def test_unknown_codes(upsert: dict[str, Any], name: str, value: str) -> None:
    rejection = rejected({**upsert, name: value})
    assert rejection.reason is Reason.UNKNOWN_CODE
    assert rejection.field == name


@pytest.mark.parametrize(("name", "known"), LIST_FIELDS.items())
def test_unknown_list_items(upsert: dict[str, Any], name: str, known: tuple[str, ...]) -> None:
    rejection = rejected({**upsert, name: [known[0], "astrology", known[-1]]})
    assert rejection.reason is Reason.UNKNOWN_LIST_ITEM
    assert rejection.field == f"{name}.1"


def test_every_code_of_the_spec_is_accepted(upsert: dict[str, Any]) -> None:
    assert len(MUNICIPALITIES) == 38
    for municipality in MUNICIPALITIES:
        assert valid({**upsert, "municipality": municipality}).municipality == municipality
    for visit_type in VISIT_TYPES:
        assert valid({**upsert, "visit_type": visit_type}).visit_type == visit_type
    for outcome in OUTCOMES:
        assert valid({**upsert, "outcome": outcome}).outcome == outcome
    everything = {name: list(items) for name, items in LIST_FIELDS.items()}
    event = valid({**upsert, **everything})
    for name, items in LIST_FIELDS.items():
        assert sorted(getattr(event, name) or []) == sorted(items)


@pytest.mark.parametrize("name", LIST_FIELDS)
def test_empty_lists_are_valid(upsert: dict[str, Any], name: str) -> None:
    assert getattr(valid({**upsert, name: []}), name) == []


# --- ranges ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("child_age_months", -1),
        ("child_age_months", 72),
        ("child_age_months", 10**6),
        ("revision", 0),
        ("revision", -3),
    ],
)
def test_out_of_range(upsert: dict[str, Any], name: str, value: int) -> None:
    rejection = rejected({**upsert, name: value})
    assert rejection.reason is Reason.OUT_OF_RANGE
    assert rejection.field == name


def test_a_void_with_revision_zero_is_out_of_range(void: dict[str, Any]) -> None:
    rejection = rejected({**void, "revision": 0})
    assert (rejection.reason, rejection.field) == (Reason.OUT_OF_RANGE, "revision")


@pytest.mark.parametrize("age", [0, 71, None])
def test_child_age_bounds_and_null_are_valid(upsert: dict[str, Any], age: int | None) -> None:
    assert valid({**upsert, "child_age_months": age}).child_age_months == age


def test_null_facility_is_valid(upsert: dict[str, Any]) -> None:
    assert valid({**upsert, "facility_id": None}).facility_id is None


# --- ids ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ID_FIELDS)
@pytest.mark.parametrize(
    "value",
    ["", "a" * 65, "visit 1", "visit/1", "visit\n", "vizitë", "a+b", "a@b"],
    ids=["empty", "65-chars", "space", "slash", "newline", "non-ascii", "plus", "at"],
)
def test_invalid_ids(upsert: dict[str, Any], name: str, value: str) -> None:
    rejection = rejected({**upsert, name: value})
    assert rejection.reason is Reason.INVALID_ID
    assert rejection.field == name


@pytest.mark.parametrize("name", ID_FIELDS)
@pytest.mark.parametrize("value", [LONGEST_ID, "a", "0", "_", ".", ":", "-"])
def test_ids_of_the_allowed_alphabet_are_valid(
    upsert: dict[str, Any], name: str, value: str
) -> None:
    assert len(LONGEST_ID) == 64
    assert getattr(valid({**upsert, name: value}), name) == value


# --- lists ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "known"), LIST_FIELDS.items())
def test_a_list_of_17_items_is_too_many(
    upsert: dict[str, Any], name: str, known: tuple[str, ...]
) -> None:
    items = [known[i % len(known)] for i in range(17)]
    rejection = rejected({**upsert, name: items})
    assert rejection.reason is Reason.TOO_MANY_ITEMS
    assert rejection.field == name


@pytest.mark.parametrize(("name", "known"), LIST_FIELDS.items())
def test_16_items_with_repeats_are_valid_and_count_once(
    upsert: dict[str, Any], name: str, known: tuple[str, ...]
) -> None:
    items = [known[i % len(known)] for i in range(16)]
    kept = getattr(valid({**upsert, name: items}), name)
    assert len(kept) == len(set(kept)) == len(known)
    assert set(kept) == set(known)


def test_a_repeated_item_counts_once(upsert: dict[str, Any]) -> None:
    event = valid({**upsert, "topics": ["nutrition", "immunisation", "nutrition"]})
    assert sorted(event.topics or []) == ["immunisation", "nutrition"]


# --- datetimes ------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["occurred_at", "submitted_at"])
@pytest.mark.parametrize("value", ["2024-03-31T09:30:00", "2024-03-31T09:30:00.123456"])
def test_naive_datetimes_miss_the_utc_offset(upsert: dict[str, Any], name: str, value: str) -> None:
    rejection = rejected({**upsert, name: value})
    assert rejection.reason is Reason.MISSING_UTC_OFFSET
    assert rejection.field == name


def test_a_naive_submitted_at_on_a_void(void: dict[str, Any]) -> None:
    rejection = rejected({**void, "submitted_at": "2024-04-01T08:00:00"})
    assert (rejection.reason, rejection.field) == (Reason.MISSING_UTC_OFFSET, "submitted_at")


@pytest.mark.parametrize("name", ["occurred_at", "submitted_at"])
@pytest.mark.parametrize(
    "value",
    [
        "yesterday",
        "",
        "2024-03-31",
        "2024-13-01T10:00:00Z",
        "2024-02-30T10:00:00Z",
        "2024-03-31T25:00:00Z",
        "2024-03-31T10:00:00+25:00",
        "31/03/2024 10:00 +01:00",
        "2024-03-31T10:00:00Zjunk",
    ],
)
def test_garbage_datetimes_are_invalid(upsert: dict[str, Any], name: str, value: str) -> None:
    rejection = rejected({**upsert, name: value})
    assert rejection.reason is Reason.INVALID_DATETIME
    assert rejection.field == name


@pytest.mark.parametrize("name", ["occurred_at", "submitted_at"])
@pytest.mark.parametrize(
    "value",
    [
        "1711877400", "12", "1711877400.5", "2024-W13-7T10:00:00Z",
        # ISO-8601's basic and hour-only offsets, and offsets with seconds (which the
        # event's own JSON could not carry back), are refused: ±hh:mm or Z only.
        "2024-03-31T10:30:00+0100", "2024-03-31T10:30:00+01",
        "2024-03-31T10:30:00+01:00:30", "2024-03-31T10:30:00.25+01:00:30.5",
    ],
)  # fmt: skip
def test_other_datetime_notations_are_invalid(
    upsert: dict[str, Any], name: str, value: str
) -> None:
    # pydantic alone would read a numeric string as a Unix timestamp in UTC.
    rejection = rejected({**upsert, name: value})
    assert (rejection.reason, rejection.field) == (Reason.INVALID_DATETIME, name)


@pytest.mark.parametrize(
    "occurred_at",
    [
        "2024-03-31T09:30:00Z",
        "2024-03-31T09:30:00-00:00",
        "2024-03-31 09:30:00Z",
        "2024-03-31T09:30Z",
        "2024-03-31T09:30:00.5Z",
        "2024-03-31T09:30:00,5Z",
        "2024-03-31T09:30:00.123456789Z",
    ],
)
def test_every_accepted_datetime_notation_round_trips(
    upsert: dict[str, Any], occurred_at: str
) -> None:
    event = valid({**upsert, "occurred_at": occurred_at})
    again = valid(event.model_dump_json().encode())
    assert again == event
    assert again.occurred_at == event.occurred_at


@pytest.mark.parametrize(
    ("occurred_at", "submitted_at"),
    [
        ("2024-03-31T09:30:00Z", "2024-03-31T09:40:00Z"),
        ("2024-03-31T09:30:00+00:00", "2024-03-31T11:40:00+02:00"),
        ("2024-03-31T10:30:00+01:00", "2024-03-31T09:40:00Z"),
        ("2024-03-31T09:30:00.123456Z", "2024-03-31T09:40:00.123456Z"),
    ],
)
def test_z_and_numeric_offsets_are_both_accepted(
    upsert: dict[str, Any], occurred_at: str, submitted_at: str
) -> None:
    event = valid({**upsert, "occurred_at": occurred_at, "submitted_at": submitted_at})
    assert isinstance(event, UpsertEvent)
    assert event.occurred_at.utcoffset() is not None
    assert event.submitted_at - event.occurred_at == timedelta(minutes=10)


def test_offsets_keep_the_instant(upsert: dict[str, Any]) -> None:
    upsert["submitted_at"] = "2024-04-01T08:00:00+02:00"
    z = valid({**upsert, "occurred_at": "2024-03-31T23:30:00Z"})
    plus_one = valid({**upsert, "occurred_at": "2024-04-01T00:30:00+01:00"})
    assert isinstance(z, UpsertEvent)
    assert isinstance(plus_one, UpsertEvent)
    assert z.occurred_at == plus_one.occurred_at == datetime(2024, 3, 31, 23, 30, tzinfo=UTC)
    assert plus_one.occurred_at.utcoffset() == timedelta(hours=1)


# --- the programme's start, and clocks far ahead (SPEC §1) -------------------------------------


@pytest.mark.parametrize(
    ("occurred_at", "valid_day"),
    [
        ("2013-12-31T22:59:59.999Z", False),  # 23:59:59.999 on 31 December in Kosovo
        ("2013-12-31T23:00:00Z", True),  # midnight, 1 January 2014, in Kosovo
        ("2014-01-01T00:00:00+01:00", True),
        ("1999-06-01T10:00:00Z", False),
        ("1900-01-01T00:00:00Z", False),
    ],
)
def test_a_visit_before_the_programme_began_is_out_of_range(
    upsert: dict[str, Any], occurred_at: str, valid_day: bool
) -> None:
    payload = {**upsert, "occurred_at": occurred_at, "submitted_at": "2014-01-02T08:00:00Z"}
    if valid_day:
        assert valid(payload).occurred_at == datetime.fromisoformat(occurred_at)
    else:
        assert (rejected(payload).reason, rejected(payload).field) == (
            Reason.OUT_OF_RANGE,
            "occurred_at",
        )


def test_a_void_carrying_an_occurred_at_before_the_programme_is_out_of_range(
    void: dict[str, Any],
) -> None:
    rejection = rejected({**void, "occurred_at": "2013-06-01T10:00:00Z"})
    assert (rejection.reason, rejection.field) == (Reason.OUT_OF_RANGE, "occurred_at")


@pytest.mark.parametrize(
    ("ahead", "accepted"),
    [
        (timedelta(hours=24), True),
        (timedelta(hours=23, minutes=59), True),
        (timedelta(hours=24, microseconds=1), False),
        (timedelta(days=365 * 5), False),  # a phone whose clock says five years on
        (-timedelta(days=30), True),  # a late sync: submitted long before it arrived
    ],
)
@pytest.mark.parametrize("build", [upsert_payload, void_payload])
def test_a_submission_dated_more_than_a_day_after_it_arrived_is_out_of_range(
    build: Any, ahead: timedelta, accepted: bool
) -> None:
    received = datetime(2024, 5, 1, 8, 0, tzinfo=UTC)
    submitted = received + ahead
    payload = build(
        submitted_at=submitted.isoformat(), occurred_at=(submitted - timedelta(hours=1)).isoformat()
    )
    result = validate_payload(json.dumps(payload).encode(), received_at=received)
    if accepted:
        assert isinstance(result, ValidEvent)
    else:
        assert isinstance(result, Rejection)
        assert (result.reason, result.field) == (Reason.OUT_OF_RANGE, "submitted_at")
    # Without an arrival time the rule cannot apply (as for a file checked on its own).
    assert isinstance(validate_payload(json.dumps(payload).encode()), ValidEvent)


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
@pytest.mark.parametrize("where", ["revision", "an_unknown_field"])
def test_non_json_constants_anywhere_make_a_payload_not_json(
    upsert: dict[str, Any], constant: str, where: str
) -> None:
    text = json.dumps({**upsert, where: "PLACEHOLDER"}).replace('"PLACEHOLDER"', constant)
    rejection = rejected(text.encode())
    assert (rejection.reason, rejection.field) == (Reason.NOT_JSON, "")


# --- occurred_at against submitted_at -------------------------------------------------------------

SUBMITTED = datetime(2024, 3, 31, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    "later",
    [
        timedelta(minutes=10),
        timedelta(minutes=9),
        timedelta(minutes=9, seconds=59, microseconds=999999),
        timedelta(0),
        timedelta(days=-40),
    ],
)
def test_occurred_at_up_to_10_minutes_after_submitted_is_valid(
    upsert: dict[str, Any], later: timedelta
) -> None:
    payload = {
        **upsert,
        "submitted_at": SUBMITTED.isoformat(),
        "occurred_at": (SUBMITTED + later).isoformat(),
    }
    assert valid(payload).occurred_at == SUBMITTED + later


@pytest.mark.parametrize(
    "later",
    [timedelta(minutes=10, microseconds=1), timedelta(minutes=10, seconds=1), timedelta(days=1)],
)
def test_occurred_at_more_than_10_minutes_after_submitted(
    upsert: dict[str, Any], later: timedelta
) -> None:
    payload = {
        **upsert,
        "submitted_at": SUBMITTED.isoformat(),
        "occurred_at": (SUBMITTED + later).isoformat(),
    }
    rejection = rejected(payload)
    assert rejection.reason is Reason.OCCURRED_AFTER_SUBMITTED
    assert rejection.field == "occurred_at"


def test_the_clock_rule_compares_instants_not_wall_clocks(upsert: dict[str, Any]) -> None:
    # 12:05+01:00 is 11:05Z: an hour and five minutes after a submission at 10:00Z...
    upsert["submitted_at"] = "2024-03-31T10:00:00Z"
    late = {**upsert, "occurred_at": "2024-03-31T12:05:00+01:00"}
    assert rejected(late).reason is Reason.OCCURRED_AFTER_SUBMITTED
    # ...while 12:05+02:00 is 10:05Z, five minutes after.
    assert valid({**upsert, "occurred_at": "2024-03-31T12:05:00+02:00"})


def test_a_void_with_an_occurred_at_follows_the_clock_rule(void: dict[str, Any]) -> None:
    payload = {
        **void,
        "submitted_at": "2024-04-01T08:00:00Z",
        "occurred_at": "2024-04-01T08:10:01Z",
    }
    assert rejected(payload).reason is Reason.OCCURRED_AFTER_SUBMITTED


def test_a_submitted_at_at_the_end_of_time_does_not_raise(upsert: dict[str, Any]) -> None:
    payload = {
        **upsert,
        "submitted_at": "9999-12-31T23:55:00Z",
        "occurred_at": "9999-12-31T23:50:00Z",
    }
    # submitted_at + 10 minutes would overflow datetime.max: the rule must not add.
    result = validate_payload(encode(payload))
    assert isinstance(result, ValidEvent | Rejection)
    late = validate_payload(encode({**payload, "occurred_at": "9999-12-31T23:59:59Z"}))
    assert isinstance(late, ValidEvent | Rejection)


# --- size -----------------------------------------------------------------------------------------


def test_exactly_64_kib_is_valid(upsert: dict[str, Any]) -> None:
    assert valid(padded_to(KIB_64, upsert))


def test_just_under_64_kib_is_valid(upsert: dict[str, Any]) -> None:
    event = valid(padded_to(KIB_64 - 100, upsert))
    assert "padding" not in event.model_dump()


def test_one_byte_over_64_kib_is_too_large(upsert: dict[str, Any]) -> None:
    rejection = rejected(padded_to(KIB_64 + 1, upsert))
    assert rejection.reason is Reason.TOO_LARGE
    assert rejection.field == ""


def test_size_is_checked_before_anything_else() -> None:
    assert rejected(b"\xff" * (KIB_64 + 1)).reason is Reason.TOO_LARGE


# --- unknown fields and privacy -------------------------------------------------------------------


@pytest.mark.parametrize("build", [upsert_payload, void_payload])
def test_unknown_fields_are_ignored_and_not_kept(build: Any) -> None:
    event = valid(
        build(mother_name="Drita Krasniqi", phone="+383 44 123 456", extra={"nested": [1]})
    )
    dumped = event.model_dump()
    assert "mother_name" not in dumped
    assert "phone" not in dumped
    assert "extra" not in dumped
    assert "Drita" not in event.model_dump_json()
    assert not event.model_extra


# --- property tests -------------------------------------------------------------------------------

FIELD_NAMES = frozenset(UPSERT_FIELDS)
JSON_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30)
)
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=12,
)
ZONES = [UTC, timezone(timedelta(hours=1)), timezone(timedelta(hours=-5, minutes=-30))]
# The programme began on 1 January 2014, Kosovo time (SPEC §1).
PROGRAMME_START = datetime(2014, 1, 1, tzinfo=ZoneInfo("Europe/Belgrade"))
# Aware instants of the programme's years, shown in one of a few offsets.
AWARE = st.builds(
    lambda micros, zone: (PROGRAMME_START + timedelta(microseconds=micros)).astimezone(zone),
    st.integers(min_value=0, max_value=85 * 365 * 24 * 3600 * 10**6),
    st.sampled_from(ZONES),
)
# Values that look like what a form might send: near misses of every rule.
NEAR_MISSES: list[Any] = [
    *MUNICIPALITIES, *VISIT_TYPES, *OUTCOMES, *TOPICS, *RISK_FLAGS, *REFERRALS,
    "upsert", "void", "", "1", "7", 1, 2, 0, -1, 71, 72, 2**31, True, False, None, 3.0,
    LONGEST_ID, LONGEST_ID + "x", "a b", "2024-03-31T10:00:00", "2024-03-31",
]  # fmt: skip
PLAUSIBLE = st.one_of(
    st.sampled_from(NEAR_MISSES),
    AWARE.map(datetime.isoformat),
    # Anywhere in datetime's range, up to its ends: the clock rule must not overflow.
    st.datetimes(timezones=st.sampled_from(ZONES)).map(datetime.isoformat),
    st.lists(st.sampled_from([*TOPICS, *RISK_FLAGS, *REFERRALS, "x"]), max_size=20),
)
IDS = st.from_regex(r"\A[A-Za-z0-9_.:\-]{1,64}\Z")


# Payloads around the size limit: random ends around a run of JSON whitespace.
NEAR_LIMIT = st.builds(
    lambda head, size, tail: head + b" " * size + tail,
    st.sampled_from([b"", b"{", b"[", b'{"op": "void"']) | st.binary(max_size=16),
    st.integers(min_value=KIB_64 - 40, max_value=KIB_64),
    st.sampled_from([b"", b"}", b"]"]) | st.binary(max_size=16),
)


@settings(max_examples=300, deadline=None)
@given(payload=st.one_of(st.binary(max_size=300), NEAR_LIMIT))
def test_arbitrary_bytes_never_raise(payload: bytes) -> None:
    result = validate_payload(payload)
    assert isinstance(result, ValidEvent | Rejection)
    if isinstance(result, Rejection):
        assert isinstance(result.reason, Reason)
        assert result.detail


@settings(max_examples=100, deadline=None)
@given(value=JSON_VALUES)
def test_arbitrary_json_never_raises(value: Any) -> None:
    result = validate_payload(encode(value))
    assert isinstance(result, Rejection)
    assert isinstance(result.reason, Reason)


@st.composite
def mutated_payloads(draw: st.DrawFn) -> dict[str, Any]:
    payload: dict[str, Any] = draw(st.sampled_from([upsert_payload, void_payload]))()
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        kind = draw(st.sampled_from(["drop", "replace", "plausible", "add", "retype"]))
        if kind == "add":
            payload[draw(st.text(max_size=12))] = draw(JSON_VALUES)
            continue
        if not payload:
            continue
        key = draw(st.sampled_from(sorted(payload)))
        if kind == "drop":
            del payload[key]
        elif kind == "replace":
            payload[key] = draw(JSON_VALUES)
        elif kind == "plausible":
            payload[key] = draw(PLAUSIBLE)
        else:  # the same value, another JSON type
            value = payload[key]
            payload[key] = draw(st.sampled_from([str(value), [value], {"v": value}, None]))
    return payload


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(payload=mutated_payloads())
def test_mutated_events_never_raise_and_explain_themselves(payload: dict[str, Any]) -> None:
    result = validate_payload(encode(payload))
    if isinstance(result, ValidEvent):
        assert set(result.event.model_dump()) <= FIELD_NAMES
        return
    assert isinstance(result, Rejection)
    assert isinstance(result.reason, Reason)
    assert result.detail.strip()
    # The field is the whole payload or (a path into) a field of SPEC §1.
    assert result.field == "" or result.field.split(".", 1)[0] in FIELD_NAMES


def _items(known: tuple[str, ...]) -> st.SearchStrategy[list[str]]:
    return st.lists(st.sampled_from(known), max_size=16)


@st.composite
def valid_payloads(draw: st.DrawFn) -> dict[str, Any]:
    submitted = draw(AWARE)
    before = draw(st.timedeltas(min_value=timedelta(minutes=-10), max_value=timedelta(days=60)))
    occurred = max(submitted - before, PROGRAMME_START)
    base: dict[str, Any] = {
        "schema_version": 1,
        "event_id": draw(IDS),
        "visit_id": draw(IDS),
        "revision": draw(st.integers(min_value=1, max_value=2**31 - 1)),
        "submitted_at": submitted.isoformat(),
    }
    descriptive: dict[str, Any] = {
        "occurred_at": occurred.isoformat(),
        "municipality": draw(st.sampled_from(sorted(MUNICIPALITIES))),
        "facility_id": draw(st.none() | IDS),
        "nurse_id": draw(IDS),
        "household_id": draw(IDS),
        "child_age_months": draw(st.none() | st.integers(min_value=0, max_value=71)),
        "pregnant": draw(st.booleans()),
        "visit_type": draw(st.sampled_from(VISIT_TYPES)),
        "outcome": draw(st.sampled_from(OUTCOMES)),
        "topics": draw(_items(TOPICS)),
        "risk_flags": draw(_items(RISK_FLAGS)),
        "referrals": draw(_items(REFERRALS)),
    }
    if draw(st.booleans()):
        return {**base, "op": "upsert", **descriptive}
    kept = draw(st.lists(st.sampled_from(sorted(descriptive)), unique=True))
    return {**base, "op": "void", **{name: descriptive[name] for name in kept}}


@settings(max_examples=200, deadline=None)
@given(payload=valid_payloads())
def test_valid_events_round_trip(payload: dict[str, Any]) -> None:
    event = valid(payload)
    again = valid(event.model_dump_json().encode())
    assert again == event
    assert again.model_dump() == event.model_dump()
    for name in LIST_FIELDS:
        items = getattr(event, name)
        if items is not None:
            assert len(items) == len(set(items))
            assert set(items) == set(payload[name])


MARKER = "ZQXMARK"


@settings(max_examples=300, deadline=None)
@given(
    name=st.sampled_from(sorted(set(FIELD_NAMES) | {"op", "schema_version"})),
    value=st.one_of(
        st.text(max_size=20).map(lambda t: MARKER + t),
        st.lists(st.text(max_size=5).map(lambda t: MARKER + t), min_size=1, max_size=3),
        st.dictionaries(st.just(MARKER), st.just(MARKER), min_size=1),
    ),
)
def test_a_rejection_never_echoes_what_was_submitted(name: str, value: Any) -> None:
    # `detail` is stored and shown; a payload may hold a name, which must stay in it.
    result = validate_payload(encode({**upsert_payload(), name: value}))
    if isinstance(result, Rejection):
        assert MARKER not in result.detail
        assert MARKER not in result.field
