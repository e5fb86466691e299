"""An independent reference for SPEC §1-§3, used only by the tests.

It reads the raw payloads (bytes, arrival order) and computes, in the plainest way,
which events are valid, the effective visit set, and every indicator row the pipeline
must store. It deliberately shares no code with the pipeline (no `vizita`, `streams`,
`sinks` or `producers` import): if both agree, they agree by two separate readings of
the SPEC, not by a shared helper.

Readings of the SPEC made here (where it leaves room):
- a time is `YYYY-MM-DDTHH:MM:SS[.fraction]` followed by `Z` or `+hh:mm`/`-hh:mm`; a
  naive time, a number, `+0100` or a space instead of `T` is invalid;
- instants before 1900 or from 3000 on (in UTC) are invalid (project rule);
- a list holds at most 16 items as sent (repeats included); a repeated item counts once;
- a repeated `event_id` among valid events is a duplicate: the first one seen is kept
  (the generated streams only repeat byte-identical payloads; two different payloads
  reusing one `event_id` are not judged here);
- digits are ASCII digits (a year in fullwidth digits is no year);
- JSON's non-standard `NaN`/`Infinity` literals make a payload invalid;
- a payload is received when the oracle reads it (tests publish and compute at once),
  unless a time of receipt is given.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

LOCAL_TZ = ZoneInfo("Europe/Belgrade")
MAX_PAYLOAD_BYTES = 65536
MAX_LIST_ITEMS = 16
MAX_AHEAD = timedelta(minutes=10)
PROGRAMME_START = date(2014, 1, 1)  # local day of the first possible visit
MAX_SUBMITTED_AFTER_RECEIPT = timedelta(hours=24)
WINDOWS = (7, 30)
ALL = "ALL"

# SPEC §6
MUNICIPALITIES = frozenset({
    "decan", "dragash", "ferizaj", "fushe_kosove", "gjakove", "gjilan", "gllogoc", "gracanice",
    "hani_i_elezit", "istog", "junik", "kacanik", "kamenice", "kline", "kllokot", "leposaviq",
    "lipjan", "malisheve", "mamushe", "mitrovice_jugore", "mitrovice_veriore", "novoberde",
    "obiliq", "partesh", "peje", "podujeve", "prishtine", "prizren", "rahovec", "ranillug",
    "shterpce", "shtime", "skenderaj", "suhareke", "viti", "vushtrri", "zubin_potok", "zvecan",
})  # fmt: skip
assert len(MUNICIPALITIES) == 38

VISIT_TYPES = frozenset({"prenatal", "newborn", "routine", "follow_up"})
OUTCOMES = frozenset({"completed", "not_home", "refused"})
TOPICS = frozenset(
    {
        "immunisation",
        "breastfeeding",
        "nutrition",
        "early_stimulation",
        "injury_prevention",
        "responsive_parenting",
        "maternal_health",
    }
)
RISK_FLAGS = frozenset({"developmental_delay", "disability", "violence_risk"})
REFERRALS = frozenset(
    {"social_services", "specialist_care", "child_protection", "early_childhood_education"}
)

INDICATORS = (
    "visits_completed",
    "households_reached",
    "immunisation_counselling_coverage",
    "breastfeeding_counselling_coverage",
    "maternal_health_counselling_coverage",
    "early_stimulation_coverage",
    "at_risk_referral_rate",
    "missed_visit_rate",
    "visits_per_nurse",
)
COUNT_INDICATORS = frozenset({"visits_completed", "households_reached"})

VOID_REQUIRED = ("schema_version", "event_id", "visit_id", "revision", "op", "submitted_at")
UPSERT_REQUIRED = (
    *VOID_REQUIRED,
    "occurred_at",
    "municipality",
    "facility_id",
    "nurse_id",
    "household_id",
    "child_age_months",
    "pregnant",
    "visit_type",
    "outcome",
    "topics",
    "risk_flags",
    "referrals",
)

ID_RE = re.compile(r"[A-Za-z0-9_.:-]{1,64}")
TIME_RE = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})T([0-9]{2}):([0-9]{2}):([0-9]{2})(?:\.([0-9]{1,9}))?"
    r"(?:(Z)|([+-])([0-9]{2}):([0-9]{2}))"
)

Key = tuple[str, str, int, date]
Row = tuple[int, int | None, float | None]


class Invalid(Exception):  # a verdict on a payload, not an error
    """The payload breaks a rule of SPEC §1."""


# --- validity (SPEC §1) -------------------------------------------------------------------


def _is_int(value: Any) -> bool:
    return type(value) is int  # bool is a subclass of int; floats are not ints


def _check_id(value: Any, nullable: bool = False) -> None:
    if value is None and nullable:
        return
    if not isinstance(value, str) or ID_RE.fullmatch(value) is None:
        raise Invalid("id")


def parse_instant(value: Any) -> datetime:
    """An aware UTC datetime from an ISO-8601 string with a `Z` or `±hh:mm` offset."""
    if not isinstance(value, str):
        raise Invalid("time type")
    match = TIME_RE.fullmatch(value)
    if match is None:
        raise Invalid("time format")
    year, month, day, hour, minute, second = (int(match.group(i)) for i in range(1, 7))
    fraction = match.group(7) or ""
    micro = int((fraction + "000000")[:6])
    if match.group(8):
        offset = timedelta(0)
    else:
        oh, om = int(match.group(10)), int(match.group(11))
        if oh > 23 or om > 59:
            raise Invalid("offset")
        offset = timedelta(hours=oh, minutes=om) * (-1 if match.group(9) == "-" else 1)
    try:
        local = datetime(year, month, day, hour, minute, second, micro, tzinfo=timezone(offset))
        instant = local.astimezone(UTC)
    except (ValueError, OverflowError) as err:
        raise Invalid("time value") from err
    if not 1900 <= instant.year < 3000:
        raise Invalid("time range")
    return instant


def _check_list(value: Any, allowed: frozenset[str]) -> None:
    if not isinstance(value, list) or len(value) > MAX_LIST_ITEMS:
        raise Invalid("list")
    for item in value:
        if not isinstance(item, str) or item not in allowed:
            raise Invalid("list item")


def _check_field(name: str, value: Any) -> None:  # noqa: PLR0912  # one branch per field
    if name == "schema_version":
        if not (_is_int(value) and value == 1):
            raise Invalid(name)
    elif name in ("event_id", "visit_id", "nurse_id", "household_id"):
        _check_id(value)
    elif name == "facility_id":
        _check_id(value, nullable=True)
    elif name == "revision":
        if not (_is_int(value) and value >= 1):
            raise Invalid(name)
    elif name == "op":
        if value not in ("upsert", "void") or not isinstance(value, str):
            raise Invalid(name)
    elif name in ("occurred_at", "submitted_at"):
        parse_instant(value)
    elif name == "municipality":
        if not isinstance(value, str) or value not in MUNICIPALITIES:
            raise Invalid(name)
    elif name == "child_age_months":
        if value is not None and not (_is_int(value) and 0 <= value <= 71):
            raise Invalid(name)
    elif name == "pregnant":
        if type(value) is not bool:
            raise Invalid(name)
    elif name == "visit_type":
        if not isinstance(value, str) or value not in VISIT_TYPES:
            raise Invalid(name)
    elif name == "outcome":
        if not isinstance(value, str) or value not in OUTCOMES:
            raise Invalid(name)
    elif name == "topics":
        _check_list(value, TOPICS)
    elif name == "risk_flags":
        _check_list(value, RISK_FLAGS)
    elif name == "referrals":
        _check_list(value, REFERRALS)
    # any other field is unknown, allowed and ignored


def _no_constants(name: str) -> Any:
    raise Invalid(f"non-standard JSON constant {name}")


def parse_event(payload: bytes, received: datetime | None = None) -> dict[str, Any] | None:
    """The event if the payload is valid under SPEC §1, else None."""
    received = received or datetime.now(UTC)
    if len(payload) > MAX_PAYLOAD_BYTES:
        return None
    try:
        event = json.loads(payload.decode("utf-8"), parse_constant=_no_constants)
    except (UnicodeDecodeError, ValueError, Invalid, RecursionError):
        return None
    if not isinstance(event, dict):
        return None
    try:
        op = event.get("op")
        required = UPSERT_REQUIRED if op == "upsert" else VOID_REQUIRED
        for name in required:
            if name not in event:
                raise Invalid(f"missing {name}")
        for name, value in event.items():
            _check_field(name, value)
        if (
            "occurred_at" in event
            and parse_instant(event["occurred_at"])
            > parse_instant(event["submitted_at"]) + MAX_AHEAD
        ):
            raise Invalid("occurred after submitted")
        if "occurred_at" in event and local_day(event["occurred_at"]) < PROGRAMME_START:
            raise Invalid("before the programme")
        if parse_instant(event["submitted_at"]) > received + MAX_SUBMITTED_AFTER_RECEIPT:
            raise Invalid("submitted in the future")
    except Invalid:
        return None
    return event


# --- the effective visit set ----------------------------------------------------------------


@dataclass(frozen=True)
class Visit:
    """An effective (winning, not voided) visit."""

    visit_id: str
    day: date  # local day of occurred_at in Europe/Belgrade
    municipality: str
    nurse_id: str
    household_id: str
    child_age_months: int | None
    pregnant: bool
    visit_type: str
    outcome: str
    topics: frozenset[str]
    risk_flags: frozenset[str]
    referrals: frozenset[str]


def local_day(value: str) -> date:
    return parse_instant(value).astimezone(LOCAL_TZ).date()


def valid_events(payloads: Iterable[bytes]) -> list[dict[str, Any]]:
    """Valid events in arrival order, duplicates (a repeated event_id) dropped."""
    seen: set[str] = set()
    out = []
    for payload in payloads:
        event = parse_event(payload)
        if event is None or event["event_id"] in seen:
            continue
        seen.add(event["event_id"])
        out.append(event)
    return out


def winners(events: Iterable[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """visit_id -> its winning event (voids included)."""
    best: dict[str, dict[str, Any]] = {}
    for event in events:
        rank = (event["revision"], parse_instant(event["submitted_at"]), event["event_id"])
        current = best.get(event["visit_id"])
        if current is None or rank > (
            current["revision"],
            parse_instant(current["submitted_at"]),
            current["event_id"],
        ):
            best[event["visit_id"]] = event
    return best


def effective_visits(events: Iterable[dict[str, Any]]) -> list[Visit]:
    return [
        Visit(
            visit_id=e["visit_id"],
            day=local_day(e["occurred_at"]),
            municipality=e["municipality"],
            nurse_id=e["nurse_id"],
            household_id=e["household_id"],
            child_age_months=e["child_age_months"],
            pregnant=e["pregnant"],
            visit_type=e["visit_type"],
            outcome=e["outcome"],
            topics=frozenset(e["topics"]),
            risk_flags=frozenset(e["risk_flags"]),
            referrals=frozenset(e["referrals"]),
        )
        for e in winners(events).values()
        if e["op"] == "upsert"
    ]


def day_range(events: Iterable[dict[str, Any]]) -> tuple[date, date] | None:
    """(earliest, latest) local day of any valid upsert event; latest is the replay clock."""
    days = [local_day(e["occurred_at"]) for e in events if e["op"] == "upsert"]
    return (min(days), max(days)) if days else None


# --- indicators (SPEC §3) -------------------------------------------------------------------


def indicator_rows(visits: list[Visit]) -> dict[str, Row]:
    """The indicators but the follow-up over one window's effective visits of one area."""
    c = [v for v in visits if v.outcome == "completed"]

    def ratio(num: int, den: int) -> Row:
        return num, den, (num / den if den else None)

    def share(eligible: list[Visit], topic: str) -> Row:
        return ratio(sum(topic in v.topics for v in eligible), len(eligible))

    under_two = [v for v in c if v.child_age_months is not None and v.child_age_months <= 23]
    under_six_m = [v for v in c if v.child_age_months is not None and v.child_age_months <= 5]
    maternal = [v for v in c if v.pregnant or v.visit_type in ("prenatal", "newborn")]
    with_child = [v for v in c if v.child_age_months is not None]
    at_risk = [v for v in c if v.risk_flags]
    households = len({v.household_id for v in c})
    return {
        "visits_completed": (len(c), None, float(len(c))),
        "households_reached": (households, None, float(households)),
        "immunisation_counselling_coverage": share(under_two, "immunisation"),
        "breastfeeding_counselling_coverage": share(under_six_m, "breastfeeding"),
        "maternal_health_counselling_coverage": share(maternal, "maternal_health"),
        "early_stimulation_coverage": share(with_child, "early_stimulation"),
        "at_risk_referral_rate": ratio(sum(bool(v.referrals) for v in at_risk), len(at_risk)),
        "missed_visit_rate": ratio(
            sum(v.outcome in ("not_home", "refused") for v in visits), len(visits)
        ),
        "visits_per_nurse": ratio(len(c), len({v.nurse_id for v in c})),
    }


def compute(payloads: Iterable[bytes]) -> dict[Key, Row]:
    """(municipality, indicator, window_days, as_of) -> (numerator, denominator, value)."""
    events = valid_events(payloads)
    span = day_range(events)
    if span is None:
        return {}
    first, clock = span
    visits = effective_visits(events)
    by_day: dict[date, list[Visit]] = defaultdict(list)
    for visit in visits:
        by_day[visit.day].append(visit)
    follow_ups = follow_up_facts(visits)
    out: dict[Key, Row] = {}
    as_of = first
    while as_of <= clock:
        for window in WINDOWS:
            in_window = [
                v for i in range(window) for v in by_day.get(as_of - timedelta(days=i), [])
            ]
            areas: dict[str, list[Visit]] = {code: [] for code in MUNICIPALITIES}
            for v in in_window:
                areas[v.municipality].append(v)
            areas[ALL] = in_window
            for area, members in areas.items():
                for indicator, row in indicator_rows(members).items():
                    out[(area, indicator, window, as_of)] = row
            since = as_of - timedelta(days=window - 1)
            for area, row in follow_up_rows(follow_ups, since, as_of).items():
                out[(area, "at_risk_follow_up_rate", window, as_of)] = row
        as_of += timedelta(days=1)
    return out


def follow_up_facts(visits: list[Visit]) -> list[tuple[Visit, bool]]:
    """Every completed at-risk visit, and whether its household had another completed
    visit 1 to 14 days later, anywhere (SPEC §3)."""
    completed = [v for v in visits if v.outcome == "completed"]
    return [
        (v, any(u.household_id == v.household_id and 1 <= (u.day - v.day).days <= 14
                for u in completed))
        for v in completed if v.risk_flags
    ]  # fmt: skip


def follow_up_rows(facts: list[tuple[Visit, bool]], first: date, last: date) -> dict[str, Row]:
    """The follow-up rate per area over the at-risk visits whose 14-day period ends on
    a day first..last (for a window: D-W+1 <= d+14 <= D), and of them those followed up."""
    rows: dict[str, Row] = {}
    for area in (*MUNICIPALITIES, ALL):
        due = [
            followed for v, followed in facts
            if area in (ALL, v.municipality) and first <= v.day + timedelta(days=14) <= last
        ]  # fmt: skip
        num, den = sum(due), len(due)
        rows[area] = (num, den, num / den if den else None)
    return rows


def clock_day(payloads: Iterable[bytes]) -> date | None:
    """The replay clock day: the latest local day of any valid upsert event."""
    span = day_range(valid_events(payloads))
    return span[1] if span else None
