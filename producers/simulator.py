"""A deterministic simulator of home-visit submissions across Kosovo (SPEC §1).

Given a :class:`SimulationConfig`, :func:`simulate` returns the raw payloads a fleet of
nurses' phones would send, in arrival order: first submissions, late syncs from
offline phones, byte-identical resends, corrections (revision 2+), voids and a few
invalid payloads that must end in the dead-letter topic. The same config (seed
included) always gives the same bytes.

The world behind it is small and fixed by the seed: a roster of nurses and pseudonymous
households per municipality (volume roughly proportional to population), each
household with a youngest child who grows older or a pregnancy, visited on working
days between 8:00 and 16:00 local time. Each day draws from its own random stream,
so a longer run repeats a shorter one's days exactly and :func:`iter_live` yields
the same payloads as :func:`simulate`, only paced by a clock and without end.
"""

from __future__ import annotations

import base64
import heapq
import itertools
import json
import math
import random
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from vizita.contract.codes import RISK_FLAGS
from vizita.contract.days import LOCAL_TZ
from vizita.contract.events import MAX_LIST_ITEMS
from vizita.contract.municipalities import MUNICIPALITIES
from vizita.contract.validation import MAX_PAYLOAD_BYTES, Reason

Event = dict[str, Any]  # one event before encoding; times are aware UTC datetimes
Maker = Callable[[Event, bool, random.Random], bytes]

# Approximate relative weights of the municipalities (rough population, thousands,
# from census figures and estimates; not official numbers). The smallest get a small
# floor so that each still sees a few visits in a month.
POPULATION_WEIGHTS: dict[str, float] = {
    "prishtine": 220, "prizren": 180, "ferizaj": 110, "peje": 95, "gjakove": 95,
    "gjilan": 90, "podujeve": 85, "mitrovice_jugore": 70, "vushtrri": 65,
    "suhareke": 60, "gllogoc": 58, "lipjan": 58, "rahovec": 56, "malisheve": 55,
    "skenderaj": 51, "viti": 47, "fushe_kosove": 45, "decan": 40, "istog": 39,
    "kline": 38, "kamenice": 36, "dragash": 34, "kacanik": 33, "shtime": 27,
    "mitrovice_veriore": 22, "obiliq": 21, "zvecan": 17, "zubin_potok": 14,
    "leposaviq": 13, "gracanice": 11, "hani_i_elezit": 10, "shterpce": 7,
    "novoberde": 7, "junik": 6, "mamushe": 6, "ranillug": 5, "kllokot": 4, "partesh": 4,
}  # fmt: skip
if set(POPULATION_WEIGHTS) != set(MUNICIPALITIES):  # pragma: no cover - a typo guard
    raise RuntimeError("POPULATION_WEIGHTS must name exactly the 38 municipalities")

# Visit volume by weekday (Monday first), relative to `visits_per_day`; Mon-Fri average 1.
WEEKDAY_FACTOR: tuple[float, ...] = (1.0, 1.05, 1.0, 1.0, 0.95, 0.15, 0.02)
HOLIDAY_FACTOR = 0.05
# Fixed-date public holidays of Kosovo (month, day); the movable Eids and Easters are left out.
HOLIDAYS: frozenset[tuple[int, int]] = frozenset(
    {(1, 1), (1, 7), (2, 17), (4, 9), (5, 1), (5, 9), (12, 25)}
)
WORK_START_MINUTE, WORK_END_MINUTE = 8 * 60, 16 * 60
DAYS_PER_MONTH = 30.4375
PREGNANCY_DAYS = 270
# The youngest child stays under six because the next one is born 2 to 5.5 years later.
BIRTH_GAP_DAYS = (730, 2008)
# Immunisation counselling for under-2s and missed-visit rates differ by municipality:
# spread evenly over these ranges and shuffled by the seed, so some fall short of the
# default targets (coverage 0.90, missed visits 0.15) and some meet them.
IMMUNISATION_RANGE = (0.82, 0.99)
MISSED_RANGE = (0.05, 0.19)
RISK_HOUSEHOLD_SHARE = 0.05
REFERRAL_SHARE = 0.8
NO_FACILITY_SHARE = 0.05
REPEATED_TOPIC_SHARE = 0.01
UTC_PHONE_SHARE = 0.4  # phones that write times as UTC "Z" rather than local +01:00/+02:00
NOT_HOME_SHARE = 0.75  # of missed visits; the rest are refused
UNDER_TWO, PRESCHOOL, BREASTFED_MAX, CRAWLING = 24, 48, 5, 6  # ages in months
# Late syncs: the share within hours, within three days; the rest take up to 21 days.
LATE_HOURS_SHARE, LATE_DAYS_SHARE = 0.65, 0.9
QUICK_RESEND_SHARE = 0.8  # resends within half an hour; the rest after a reconnect
SECOND_CORRECTION_SHARE = 0.1
_UNSET = date.min  # `start` not given: computed from today in __post_init__


def default_start(days: int, *, today: date | None = None) -> date:
    """The first day of a run of `days` days ending yesterday (local time)."""
    return (today or datetime.now(LOCAL_TZ).date()) - timedelta(days=days)


@dataclass(frozen=True)
class SimulationConfig:
    """What to simulate. Shares are probabilities per visit or per submission."""

    seed: int = 7
    start: date = _UNSET  # first local day of visits; default: `days` days before today
    days: int = 60
    visits_per_day: int = 100  # average over Kosovo on a weekday
    late_share: float = 0.15  # submissions synced late (minutes to ~21 days)
    duplicate_share: float = 0.03  # submissions resent with the same bytes
    correction_share: float = 0.05  # visits that get a later revision
    void_share: float = 0.01  # visits retracted by a later void
    invalid_share: float = 0.01  # visits whose only payload breaks a rule of SPEC §1

    def __post_init__(self) -> None:
        if self.start == _UNSET:
            object.__setattr__(self, "start", default_start(self.days))
        if self.days < 0 or self.visits_per_day < 0:
            raise ValueError("days and visits_per_day must not be negative")
        for name in (
            "late_share",
            "duplicate_share",
            "correction_share",
            "void_share",
            "invalid_share",
        ):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1")

    @property
    def end(self) -> date:
        """The last local day of visits."""
        return self.start + timedelta(days=self.days - 1)

    @classmethod
    def ending_on(cls, end: date, days: int = 60, **kwargs: Any) -> SimulationConfig:
        """A config whose `days` days of visits end on `end` (inclusive)."""
        return cls(start=end - timedelta(days=days - 1), days=days, **kwargs)


@dataclass(frozen=True, slots=True)
class Submission:
    """One payload as it reaches the pipeline. `kind` is `upsert`, `correction`, `void`,
    `duplicate` or `invalid:<name>` (see :data:`INVALID_KINDS`)."""

    arrival: datetime
    payload: bytes
    kind: str


# --- the world ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Household:
    household_id: str
    municipality: str
    nurse_id: str
    facility_id: str
    utc_clock: bool  # the nurse's phone writes times in UTC ("Z") rather than local
    first_birth: date  # before it: pregnant, no child
    birth_gap_days: int  # later children follow at this spacing
    risk_flags: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Profile:
    code: str
    immunisation_p: float
    missed_p: float
    households: tuple[Household, ...]


@dataclass(frozen=True, slots=True)
class World:
    profiles: tuple[Profile, ...]
    by_code: dict[str, Profile]
    cum_weights: tuple[float, ...]


def build_world(config: SimulationConfig) -> World:
    """The fixed roster of nurses and households, and each municipality's habits."""
    rng = random.Random(f"vizita-world:{config.seed}:{config.start}")  # noqa: S311  # a simulation
    codes = sorted(MUNICIPALITIES)
    immunisation = _spread(IMMUNISATION_RANGE, len(codes), rng)
    missed = _spread(MISSED_RANGE, len(codes), rng)
    total = sum(POPULATION_WEIGHTS.values())
    profiles = tuple(
        _profile(code, config.visits_per_day * POPULATION_WEIGHTS[code] / total, config.start, rng)
        for code in codes
    )
    profiles = tuple(
        replace(p, immunisation_p=imm, missed_p=miss)
        for p, imm, miss in zip(profiles, immunisation, missed, strict=True)
    )
    weights = itertools.accumulate(POPULATION_WEIGHTS[code] for code in codes)
    return World(profiles, {p.code: p for p in profiles}, tuple(weights))


def _spread(bounds: tuple[float, float], n: int, rng: random.Random) -> list[float]:
    low, high = bounds
    values = [low + (high - low) * i / max(1, n - 1) for i in range(n)]
    rng.shuffle(values)
    return values


def _nurses(code: str, rate: float, rng: random.Random) -> list[tuple[str, str, bool]]:
    """(nurse_id, facility_id, writes UTC times) for each nurse, about 5 visits a day each."""
    n_nurses = max(1, math.ceil(rate / 5))
    n_facilities = 1 + min(3, n_nurses // 3)
    return [
        (
            f"n-{code}-{i:02d}",
            f"fmc-{code}-{1 + (i - 1) % n_facilities}",
            rng.random() < UTC_PHONE_SHARE,
        )
        for i in range(1, n_nurses + 1)
    ]


def _profile(code: str, rate: float, start: date, rng: random.Random) -> Profile:
    """A municipality's roster; its habits (coverage, missed visits) are set by the caller."""
    nurses = _nurses(code, rate, rng)
    n_households = max(12, round(rate * 22))  # each visited about once a month
    households = tuple(
        _household(code, rng.choice(nurses), start, rng) for _ in range(n_households)
    )
    return Profile(code, 0.0, 0.0, households)


def _household(
    code: str, nurse: tuple[str, str, bool], start: date, rng: random.Random
) -> Household:
    gap = rng.randint(*BIRTH_GAP_DAYS)
    first_birth = start + timedelta(days=rng.randint(-BIRTH_GAP_DAYS[1], PREGNANCY_DAYS))
    flags: tuple[str, ...] = ()
    if rng.random() < RISK_HOUSEHOLD_SHARE:
        flags = tuple(sorted(rng.sample(RISK_FLAGS, rng.choice((1, 1, 1, 2)))))
    nurse_id, facility_id, utc_clock = nurse
    household_id = f"hh-{rng.getrandbits(48):012x}"
    return Household(household_id, code, nurse_id, facility_id, utc_clock, first_birth, gap, flags)


def family_state(household: Household, day: date) -> tuple[int | None, bool]:
    """(age in months of the youngest child or None, pregnant) on `day`."""
    offset = (day - household.first_birth).days
    if offset < 0:
        return None, True
    since = offset % household.birth_gap_days
    age = int(since / DAYS_PER_MONTH)
    return age, household.birth_gap_days - since <= PREGNANCY_DAYS


# --- one visit --------------------------------------------------------------------------

_REFERRALS_FOR = {
    "developmental_delay": ("specialist_care", "early_childhood_education"),
    "disability": ("specialist_care", "social_services"),
    "violence_risk": ("child_protection", "social_services"),
}


def _visit_weight(age: int | None) -> float:
    # Programmes visit pregnancies and infants more often than older children.
    if age is None or age <= 1:
        return 1.0
    return 0.8 if age < UNDER_TWO else 0.45 if age < PRESCHOOL else 0.3


def _pick_household(
    profile: Profile, day: date, rng: random.Random
) -> tuple[Household, int | None, bool]:
    for _ in range(4):
        household = rng.choice(profile.households)
        age, pregnant = family_state(household, day)
        if rng.random() < _visit_weight(age):
            break
    return household, age, pregnant


def _visit_type(age: int | None, at_risk: bool, rng: random.Random) -> str:
    if age is None:
        return "prenatal"
    if age <= 1:
        return "newborn"
    return "follow_up" if rng.random() < (0.6 if at_risk else 0.2) else "routine"


def _topics(
    age: int | None,
    pregnant: bool,
    visit_type: str,
    immunisation_p: float,
    rng: random.Random,
) -> list[str]:
    chances: list[tuple[str, float]] = []
    if age is not None:
        chances += [
            ("immunisation", immunisation_p if age < UNDER_TWO else 0.1),
            ("breastfeeding", 0.9 if age <= BREASTFED_MAX else 0.0),
            ("nutrition", 0.55),
            ("early_stimulation", 0.78),
            ("injury_prevention", 0.35 if age >= CRAWLING else 0.05),
            ("responsive_parenting", 0.4),
        ]
    else:
        chances.append(("nutrition", 0.5))
    if pregnant or visit_type in ("prenatal", "newborn"):
        chances.append(("maternal_health", 0.88))
    topics = [topic for topic, p in chances if rng.random() < p]
    if topics and rng.random() < REPEATED_TOPIC_SHARE:
        topics.append(rng.choice(topics))  # valid: a repeated item counts once
    return topics


def _referrals(flags: Sequence[str], rng: random.Random) -> list[str]:
    if not flags or rng.random() >= REFERRAL_SHARE:
        return []
    return sorted({rng.choice(_REFERRALS_FOR[flag]) for flag in flags})


def _outcome(missed_p: float, rng: random.Random) -> str:
    if rng.random() >= missed_p:
        return "completed"
    return "not_home" if rng.random() < NOT_HOME_SHARE else "refused"


def _content(
    event: Event, flags: Sequence[str], immunisation_p: float, rng: random.Random
) -> Event:
    """Set topics, risk flags and referrals to fit the visit's family and outcome."""
    if event["outcome"] != "completed":
        return event | {"topics": [], "risk_flags": [], "referrals": []}
    topics = _topics(
        event["child_age_months"], event["pregnant"], event["visit_type"], immunisation_p, rng
    )
    return event | {
        "topics": topics,
        "risk_flags": list(flags),
        "referrals": _referrals(flags, rng),
    }


def _occurred_at(day: date, rng: random.Random) -> datetime:
    minute = rng.randrange(WORK_START_MINUTE, WORK_END_MINUTE)
    local = datetime(
        day.year, day.month, day.day, minute // 60, minute % 60, rng.randrange(60), tzinfo=LOCAL_TZ
    )
    return local.astimezone(UTC)


def _span(rng: random.Random, low_hours: float, high_hours: float) -> timedelta:
    """A uniformly random span in whole seconds (payloads carry whole seconds)."""
    return timedelta(seconds=round(3600 * rng.uniform(low_hours, high_hours)))


def _sync_delay(rng: random.Random, late_share: float) -> timedelta:
    """Visit length plus the time until the phone sends: minutes, or late from offline."""
    visit = _span(rng, 20 / 60, 70 / 60)
    if rng.random() >= late_share:
        return visit + _span(rng, 0.1 / 60, 15 / 60)
    u = rng.random()
    if u < LATE_HOURS_SHARE:
        return visit + _span(rng, 0.5, 8)
    if u < LATE_DAYS_SHARE:
        return visit + _span(rng, 8, 72)
    return visit + _span(rng, 3 * 24, 21 * 24)


def _event_id(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def _new_visit(
    profile: Profile, day: date, config: SimulationConfig, rng: random.Random
) -> tuple[Event, bool]:
    """A first submission (revision 1) and whether its phone writes UTC times."""
    household, age, pregnant = _pick_household(profile, day, rng)
    occurred = _occurred_at(day, rng)
    event: Event = {
        "schema_version": 1,
        "event_id": _event_id(rng),
        "visit_id": f"v-{rng.getrandbits(80):020x}",
        "revision": 1,
        "op": "upsert",
        "occurred_at": occurred,
        "submitted_at": occurred + _sync_delay(rng, config.late_share),
        "municipality": profile.code,
        "facility_id": None if rng.random() < NO_FACILITY_SHARE else household.facility_id,
        "nurse_id": household.nurse_id,
        "household_id": household.household_id,
        "child_age_months": age,
        "pregnant": pregnant,
        "visit_type": _visit_type(age, bool(household.risk_flags), rng),
        "outcome": _outcome(profile.missed_p, rng),
    }
    return _content(event, household.risk_flags, profile.immunisation_p, rng), household.utc_clock


# --- corrections and voids ------------------------------------------------------------------


def _later(rng: random.Random) -> timedelta:
    """Time from one revision to the next: half an hour to ten days, log-uniform."""
    return timedelta(seconds=round(3600 * math.exp(rng.uniform(math.log(0.5), math.log(240)))))


def _fix_age(world: World, event: Event, rng: random.Random) -> Event:
    age = event["child_age_months"]
    if age is None:
        return _add_topics(world, event, rng)
    new_age = min(71, max(0, age + rng.choice((-2, -1, 1, 2))))
    visit_type = event["visit_type"]
    if new_age <= 1:
        visit_type = "newborn"
    elif visit_type == "newborn":
        visit_type = "routine"
    return event | {"child_age_months": new_age, "visit_type": visit_type}


def _add_topics(world: World, event: Event, rng: random.Random) -> Event:
    if event["outcome"] != "completed":
        return _change_outcome(world, event, rng)
    age = event["child_age_months"]
    wanted = ["immunisation"] if age is not None and age < UNDER_TWO else []
    wanted += ["nutrition", "responsive_parenting"] if age is not None else ["maternal_health"]
    missing = [topic for topic in wanted if topic not in event["topics"]]
    extra = (
        missing[:1] if missing and missing[0] == "immunisation" else missing[: rng.randint(0, 2)]
    )
    return event | {"topics": event["topics"] + (extra or ["nutrition"])}


def _change_outcome(world: World, event: Event, rng: random.Random) -> Event:
    profile = world.by_code[event["municipality"]]
    outcome = (
        "completed" if event["outcome"] != "completed" else rng.choice(("not_home", "refused"))
    )
    return _content(event | {"outcome": outcome}, event["risk_flags"], profile.immunisation_p, rng)


def _move_day(_world: World, event: Event, rng: random.Random) -> Event:
    # Same local time of day on another day (local arithmetic keeps it across DST changes).
    local = event["occurred_at"].astimezone(LOCAL_TZ)
    moved = local + timedelta(days=rng.choice((-3, -2, -1, -1, 1)))
    if moved > event["submitted_at"]:
        moved -= timedelta(days=2)
    return event | {"occurred_at": moved.astimezone(UTC)}


def _move_municipality(world: World, event: Event, rng: random.Random) -> Event:
    others = [p.code for p in world.profiles if p.code != event["municipality"]]
    return event | {"municipality": rng.choice(others)}


_EDITS: tuple[Callable[[World, Event, random.Random], Event], ...] = (
    _fix_age,
    _fix_age,
    _add_topics,
    _add_topics,
    _add_topics,
    _change_outcome,
    _change_outcome,
    _move_day,
    _move_day,
    _move_municipality,
)


def _correction(world: World, event: Event, rng: random.Random) -> Event:
    new = event | {
        "event_id": _event_id(rng),
        "revision": event["revision"] + 1,
        "submitted_at": event["submitted_at"] + _later(rng),
    }
    return rng.choice(_EDITS)(world, new, rng)


def _void(event: Event, rng: random.Random) -> Event:
    return {
        "schema_version": 1,
        "event_id": _event_id(rng),
        "visit_id": event["visit_id"],
        "revision": event["revision"] + 1,
        "op": "void",
        "submitted_at": event["submitted_at"] + _later(rng),
    }


def _revisions(
    world: World, config: SimulationConfig, first: Event, rng: random.Random
) -> list[tuple[str, Event]]:
    chain = [("upsert", first)]
    if rng.random() < config.correction_share:
        chain.append(("correction", _correction(world, first, rng)))
        if rng.random() < SECOND_CORRECTION_SHARE:
            chain.append(("correction", _correction(world, chain[-1][1], rng)))
    if rng.random() < config.void_share:
        chain.append(("void", _void(chain[-1][1], rng)))
    return chain


# --- encoding ----------------------------------------------------------------------------


def format_time(moment: datetime, utc: bool) -> str:
    """ISO-8601 with an offset: `...Z` in UTC, or local time with `+01:00`/`+02:00`."""
    if utc:
        return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return moment.astimezone(LOCAL_TZ).isoformat(timespec="seconds")


def _wire(event: Event, utc: bool) -> Event:
    return {k: format_time(v, utc) if isinstance(v, datetime) else v for k, v in event.items()}


def _dumps(value: Any) -> bytes:
    # Compact and ASCII-only: never a raw newline, whatever the values.
    return json.dumps(value, separators=(",", ":")).encode("ascii")


def encode(event: Event, utc: bool) -> bytes:
    return _dumps(_wire(event, utc))


# --- invalid payloads (one per rule of SPEC §1) ----------------------------------------------

_REQUIRED = (
    "visit_id",
    "occurred_at",
    "municipality",
    "nurse_id",
    "household_id",
    "outcome",
    "topics",
    "pregnant",
    "child_age_months",
)
_BAD_MUNICIPALITIES = ("prishtina", "Prizren", "peja", "mitrovica", "ferizaj ", "kosovo")
_BAD_TOPICS = ("vaccination", "hygiene", "family_planning", "Immunisation")


def _truncated(event: Event, utc: bool, rng: random.Random) -> bytes:
    payload = encode(event, utc)  # an upload cut short
    return payload[: rng.randint(len(payload) // 4, 3 * len(payload) // 4)]


def _not_object(event: Event, utc: bool, _rng: random.Random) -> bytes:
    return _dumps([_wire(event, utc)])  # a batch sent to the single-event endpoint


def _missing_field(event: Event, utc: bool, rng: random.Random) -> bytes:
    wire = _wire(event, utc)
    del wire[rng.choice(_REQUIRED)]
    return _dumps(wire)


def _wrong_type(event: Event, utc: bool, rng: random.Random) -> bytes:
    wire = _wire(event, utc)
    field = rng.choice(("revision", "pregnant", "child_age_months", "topics"))
    if field == "revision" or (field == "child_age_months" and wire[field] is None):
        wire["revision"] = str(wire["revision"])  # "1" is not a number
    elif field == "pregnant":
        wire["pregnant"] = int(wire["pregnant"])  # 1 is not true
    elif field == "child_age_months":
        wire[field] = str(wire[field])
    else:
        wire["topics"] = ",".join(wire["topics"])  # a string, not a list
    return _dumps(wire)


def _changed(field: str, choices: Callable[[Event, random.Random], Any]) -> Maker:
    def make(event: Event, utc: bool, rng: random.Random) -> bytes:
        return _dumps(_wire(event, utc) | {field: choices(event, rng)})

    return make


def _bad_id(event: Event, rng: random.Random) -> str:
    nurse_id: str = event["nurse_id"]
    if rng.getrandbits(1):
        return nurse_id.replace("-", " ")  # spaces
    return nurse_id + "-" + "0" * (65 - len(nurse_id))  # 66 characters


def _too_large(event: Event, utc: bool, rng: random.Random) -> bytes:
    photo = base64.b64encode(rng.randbytes(MAX_PAYLOAD_BYTES * 3 // 4 + 1024)).decode()
    return _dumps(_wire(event, utc) | {"photo": photo})  # an unknown field, but too big


def _naive_time(event: Event, utc: bool, rng: random.Random) -> bytes:
    field = rng.choice(("occurred_at", "submitted_at"))
    naive = event[field].astimezone(LOCAL_TZ).replace(tzinfo=None).isoformat(timespec="seconds")
    return _dumps(_wire(event, utc) | {field: naive})


def _occurred_after(event: Event, utc: bool, rng: random.Random) -> bytes:
    ahead = event["submitted_at"] + _span(rng, 11 / 60, 3)
    return _dumps(_wire(event, utc) | {"occurred_at": format_time(ahead, utc)})


def _topic_list(event: Event, rng: random.Random) -> list[str]:
    return [*event["topics"], rng.choice(_BAD_TOPICS)]


def _long_list(_event: Event, rng: random.Random) -> list[str]:
    cycle = itertools.cycle(["immunisation", "nutrition", "early_stimulation"])
    return list(itertools.islice(cycle, MAX_LIST_ITEMS + rng.randint(1, 8)))


# name -> (reason validate_payload must give, relative frequency, maker)
_INVALID: dict[str, tuple[Reason, float, Maker]] = {
    "truncated": (Reason.NOT_JSON, 3, _truncated),
    "not_object": (Reason.NOT_OBJECT, 2, _not_object),
    "missing_field": (Reason.MISSING_FIELD, 3, _missing_field),
    "wrong_type": (Reason.WRONG_TYPE, 3, _wrong_type),
    "unknown_municipality": (Reason.UNKNOWN_CODE, 2, _changed(
        "municipality", lambda _e, r: r.choice(_BAD_MUNICIPALITIES))),
    "unknown_topic": (Reason.UNKNOWN_LIST_ITEM, 2, _changed("topics", _topic_list)),
    "age_out_of_range": (Reason.OUT_OF_RANGE, 2, _changed(
        "child_age_months", lambda _e, r: r.choice((72, 72, 84, -1)))),
    "occurred_after_submitted": (Reason.OCCURRED_AFTER_SUBMITTED, 2, _occurred_after),
    "bad_id": (Reason.INVALID_ID, 2, _changed("nurse_id", _bad_id)),
    "too_many_items": (Reason.TOO_MANY_ITEMS, 1, _changed("topics", _long_list)),
    "too_large": (Reason.TOO_LARGE, 0.5, _too_large),
    "naive_datetime": (Reason.MISSING_UTC_OFFSET, 2, _naive_time),
    "schema_version": (Reason.UNSUPPORTED_SCHEMA_VERSION, 1, _changed(
        "schema_version", lambda _e, _r: 2)),
}  # fmt: skip
#: invalid kind (without the "invalid:" prefix) -> the reason it must be rejected with
INVALID_KINDS: dict[str, Reason] = {name: spec[0] for name, spec in _INVALID.items()}
_INVALID_NAMES = list(_INVALID)
_INVALID_WEIGHTS = list(itertools.accumulate(spec[1] for spec in _INVALID.values()))


def _invalid(event: Event, utc: bool, rng: random.Random) -> Submission:
    name = rng.choices(_INVALID_NAMES, cum_weights=_INVALID_WEIGHTS)[0]
    payload = _INVALID[name][2](event, utc, rng)
    return Submission(event["submitted_at"], payload, f"invalid:{name}")


# --- days and runs --------------------------------------------------------------------------


POISSON_EXACT_MAX = 30  # above: a normal approximation


def _poisson(rng: random.Random, mean: float) -> int:
    if mean <= 0:
        return 0
    if mean > POISSON_EXACT_MAX:
        return max(0, round(rng.gauss(mean, math.sqrt(mean))))
    limit, count, product = math.exp(-mean), 0, rng.random()
    while product > limit:
        product *= rng.random()
        count += 1
    return count


def day_factor(day: date) -> float:
    """Relative visit volume of a day: weekday rhythm and public holidays."""
    if (day.month, day.day) in HOLIDAYS:
        return HOLIDAY_FACTOR
    return WEEKDAY_FACTOR[day.weekday()]


def _resend_delay(rng: random.Random) -> timedelta:
    if rng.random() < QUICK_RESEND_SHARE:
        return _span(rng, 1 / 3600, 0.5)  # retry after a lost response
    return _span(rng, 0.5, 48)  # outbox resent after reconnecting


def _visit_submissions(
    world: World, config: SimulationConfig, first: Event, utc: bool, rng: random.Random
) -> list[Submission]:
    if rng.random() < config.invalid_share:
        return [_invalid(first, utc, rng)]
    out = []
    for kind, event in _revisions(world, config, first, rng):
        payload = encode(event, utc)
        out.append(Submission(event["submitted_at"], payload, kind))
        if rng.random() < config.duplicate_share:
            resent = event["submitted_at"] + _resend_delay(rng)
            out.append(Submission(resent, payload, "duplicate"))
    return out


def day_submissions(world: World, config: SimulationConfig, day: date) -> list[Submission]:
    """Everything the visits of one local day cause to be sent, in generation order."""
    rng = random.Random(f"vizita-day:{config.seed}:{day}")  # noqa: S311  # a simulation
    count = _poisson(rng, config.visits_per_day * day_factor(day))
    picks = rng.choices(world.profiles, cum_weights=world.cum_weights, k=count)
    out: list[Submission] = []
    for profile in picks:
        first, utc = _new_visit(profile, day, config, rng)
        out.extend(_visit_submissions(world, config, first, utc, rng))
    return out


def simulate_submissions(config: SimulationConfig) -> list[Submission]:
    """All submissions of the run, in arrival order, with what each one is."""
    world = build_world(config)
    days = (config.start + timedelta(days=i) for i in range(config.days))
    out = [sub for day in days for sub in day_submissions(world, config, day)]
    out.sort(key=lambda sub: sub.arrival)  # stable: ties keep generation order
    return out


def simulate(config: SimulationConfig) -> list[bytes]:
    """Raw payloads in arrival order (by submitted_at, duplicates interleaved)."""
    return [sub.payload for sub in simulate_submissions(config)]


def write_jsonl(payloads: Iterable[bytes], path: Path) -> int:
    """Write one payload a line; returns how many. A payload with a line break is refused."""
    count = 0
    with Path(path).open("wb") as out:
        for payload in payloads:
            if b"\n" in payload or b"\r" in payload:
                raise ValueError(f"payload {count} contains a line break")
            out.write(payload + b"\n")
            count += 1
    return count


# --- live -------------------------------------------------------------------------------------


def _wait_until(
    moment: datetime, now: Callable[[], datetime], sleep: Callable[[float], None], max_sleep: float
) -> None:
    while (remaining := (moment - now()).total_seconds()) > 0:
        sleep(min(remaining, max_sleep))


def iter_live(
    config: SimulationConfig,
    *,
    now: Callable[[], datetime],
    sleep: Callable[[float], None] = time.sleep,
    max_sleep: float = 1.0,
) -> Iterator[bytes]:
    """An endless stream from `config.start` on (`config.days` is ignored).

    Each payload is yielded once `now()` reaches its arrival time, so a start in the past
    first replays the backlog at full speed. It yields exactly :func:`simulate`'s
    payloads for the days they share. `now` must return aware datetimes; `now` runs
    faster than the wall clock for an accelerated demo (each wait is at most
    `max_sleep` seconds of `sleep`, then `now()` is asked again).
    """
    world = build_world(config)
    heap: list[tuple[datetime, int, bytes]] = []
    order = itertools.count()
    day = config.start
    while True:
        day_begins = datetime(day.year, day.month, day.day, tzinfo=LOCAL_TZ)
        if heap and heap[0][0] < day_begins:
            arrival, _, payload = heapq.heappop(heap)
            _wait_until(arrival, now, sleep, max_sleep)
            yield payload
            continue
        if not heap:
            _wait_until(day_begins, now, sleep, max_sleep)  # nothing pending: no busy loop
        for sub in day_submissions(world, config, day):
            heapq.heappush(heap, (sub.arrival, next(order), sub.payload))
        day += timedelta(days=1)


__all__ = [
    "INVALID_KINDS",
    "POPULATION_WEIGHTS",
    "SimulationConfig",
    "Submission",
    "build_world",
    "day_submissions",
    "iter_live",
    "simulate",
    "simulate_submissions",
    "write_jsonl",
]
