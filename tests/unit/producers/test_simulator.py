"""The simulator: deterministic, realistic enough, and honest about what it sends."""

from __future__ import annotations

import itertools
import json
import re
import time
from collections import Counter, defaultdict
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from producers.simulator import (
    INVALID_KINDS,
    SimulationConfig,
    Submission,
    iter_live,
    simulate,
    simulate_submissions,
    write_jsonl,
)
from vizita.contract.days import LOCAL_TZ, local_day
from vizita.contract.events import UpsertEvent, VoidEvent
from vizita.contract.municipalities import MUNICIPALITIES
from vizita.contract.validation import validate_payload

# A fixed start (spanning the switch to summer time on 31 March) keeps runs reproducible.
START = date(2024, 3, 1)
ID = re.compile(r"^[A-Za-z0-9_.:\-]{1,64}$")


@pytest.fixture(scope="module")
def run() -> list[Submission]:
    return simulate_submissions(SimulationConfig(start=START))


@pytest.fixture(scope="module")
def valid(run: list[Submission]) -> list[UpsertEvent | VoidEvent]:
    events = []
    for sub in run:
        result = validate_payload(sub.payload)
        if not sub.kind.startswith("invalid:"):
            assert result.is_valid, (sub.kind, result)
            events.append(result.event)
    return events


def _upserts(run: list[Submission], kinds: tuple[str, ...] = ("upsert",)) -> list[UpsertEvent]:
    events = [validate_payload(sub.payload) for sub in run if sub.kind in kinds]
    return [r.event for r in events if r.is_valid and isinstance(r.event, UpsertEvent)]


def _items(event: UpsertEvent, field: str) -> tuple[str, ...]:
    # The list fields' types are opaque to mypy (built by a helper in contracts).
    return tuple(vars(event)[field])


# --- determinism and shape ------------------------------------------------------------------


def test_same_seed_same_bytes_and_another_seed_differs() -> None:
    config = SimulationConfig(start=START, days=10)
    assert simulate(config) == simulate(SimulationConfig(start=START, days=10))
    assert simulate(config) != simulate(SimulationConfig(seed=8, start=START, days=10))


def test_a_longer_run_repeats_the_shorter_runs_days() -> None:
    short = simulate(SimulationConfig(start=START, days=5))
    longer = set(simulate(SimulationConfig(start=START, days=8)))
    assert set(short) <= longer


def test_default_start_ends_yesterday() -> None:
    before = datetime.now(LOCAL_TZ).date()
    config = SimulationConfig(days=30)
    after = datetime.now(LOCAL_TZ).date()
    assert config.start in (before - timedelta(days=30), after - timedelta(days=30))
    assert config.end == config.start + timedelta(days=29)
    assert SimulationConfig.ending_on(date(2024, 4, 30), days=30).start == date(2024, 4, 1)


def test_config_rejects_nonsense() -> None:
    with pytest.raises(ValueError, match="late_share"):
        SimulationConfig(start=START, late_share=1.5)


def test_arrival_order(run: list[Submission]) -> None:
    arrivals = [sub.arrival for sub in run]
    assert arrivals == sorted(arrivals)
    for sub in run:
        if sub.kind in ("upsert", "correction", "void"):
            submitted = json.loads(sub.payload)["submitted_at"]
            assert datetime.fromisoformat(submitted) == sub.arrival


def test_default_run_is_fast() -> None:
    began = time.perf_counter()
    simulate(SimulationConfig(start=START))
    assert time.perf_counter() - began < 2.0


# --- validity ---------------------------------------------------------------------------------


def test_valid_payloads_validate_and_invalid_ones_are_rejected_for_their_rule(
    run: list[Submission],
) -> None:
    for sub in run:
        result = validate_payload(sub.payload)
        if sub.kind.startswith("invalid:"):
            assert not result.is_valid, sub.payload[:200]
            assert result.reason == INVALID_KINDS[sub.kind.removeprefix("invalid:")]
        else:
            assert result.is_valid, (sub.kind, result, sub.payload[:300])


def test_invalid_share_is_roughly_the_configured_one(run: list[Submission]) -> None:
    kinds = Counter(sub.kind.split(":")[0] for sub in run)
    share = kinds["invalid"] / (kinds["invalid"] + kinds["upsert"])
    assert 0.005 < share < 0.02


def test_every_invalid_kind_occurs_and_is_rejected_as_intended() -> None:
    run = simulate_submissions(SimulationConfig(start=START, days=14, invalid_share=0.6))
    seen = Counter(sub.kind for sub in run if sub.kind.startswith("invalid:"))
    assert {kind.removeprefix("invalid:") for kind in seen} == set(INVALID_KINDS)
    for sub in run:
        result = validate_payload(sub.payload)
        if sub.kind.startswith("invalid:"):
            assert not result.is_valid
            assert result.reason == INVALID_KINDS[sub.kind.removeprefix("invalid:")]
        else:
            assert result.is_valid


@settings(max_examples=15, deadline=None)
@given(
    seed=st.integers(0, 2**32),
    start=st.dates(date(2020, 1, 1), date(2030, 12, 31)),
    shares=st.tuples(*[st.floats(0, 0.5)] * 5),
)
def test_any_config_labels_its_payloads_truthfully(
    seed: int, start: date, shares: tuple[float, float, float, float, float]
) -> None:
    late, duplicate, correction, void, invalid = shares
    config = SimulationConfig(seed, start, 3, 40, late, duplicate, correction, void, invalid)
    for sub in simulate_submissions(config):
        assert validate_payload(sub.payload).is_valid != sub.kind.startswith("invalid:")
        assert b"\n" not in sub.payload


# --- duplicates, corrections, voids ---------------------------------------------------------


def test_duplicates_are_byte_identical_resends(run: list[Submission]) -> None:
    seen: set[bytes] = set()
    event_ids: Counter[str] = Counter()
    duplicates = 0
    for sub in run:
        if sub.kind == "duplicate":
            assert sub.payload in seen
            duplicates += 1
        elif not sub.kind.startswith("invalid:"):
            event_ids[json.loads(sub.payload)["event_id"]] += 1
        seen.add(sub.payload)
    assert duplicates > 0
    assert max(event_ids.values()) == 1  # otherwise every submission has its own event_id


def test_corrections_are_later_revisions_of_an_earlier_visit(run: list[Submission]) -> None:
    revisions: dict[str, int] = {}
    corrections = 0
    for sub in run:
        if sub.kind.startswith("invalid:") or sub.kind == "duplicate":
            continue
        event = json.loads(sub.payload)
        if sub.kind in ("correction", "void"):
            assert event["revision"] >= 2
            assert revisions[event["visit_id"]] < event["revision"]
            corrections += sub.kind == "correction"
        else:
            assert event["revision"] == 1
        revisions[event["visit_id"]] = event["revision"]
    assert corrections > 0


def test_some_corrections_move_the_day_or_the_municipality(run: list[Submission]) -> None:
    firsts = {e.visit_id: e for e in _upserts(run)}
    moved_day = moved_place = 0
    for event in _upserts(run, ("correction",)):
        first = firsts[event.visit_id]
        moved_day += local_day(event.occurred_at) != local_day(first.occurred_at)
        moved_place += event.municipality != first.municipality
    assert moved_day > 0
    assert moved_place > 0


def test_voids_exist_and_carry_only_the_required_fields(run: list[Submission]) -> None:
    voids = [sub for sub in run if sub.kind == "void"]
    assert voids
    for sub in voids:
        result = validate_payload(sub.payload)
        assert result.is_valid
        assert isinstance(result.event, VoidEvent)
        assert set(json.loads(sub.payload)) == {
            "schema_version", "event_id", "visit_id", "revision", "op", "submitted_at"
        }  # fmt: skip


# --- realism -------------------------------------------------------------------------------


def test_every_municipality_appears_big_ones_more(run: list[Submission]) -> None:
    volume = Counter(event.municipality for event in _upserts(run))
    assert set(volume) == set(MUNICIPALITIES)
    assert volume["prishtine"] > 10 * volume["partesh"]
    assert volume["prizren"] > 5 * volume["junik"]


def test_weekday_rhythm(run: list[Submission]) -> None:
    by_weekday = Counter(local_day(e.occurred_at).weekday() for e in _upserts(run))
    assert by_weekday[6] * 10 < by_weekday[1]  # Sunday vs Tuesday
    assert by_weekday[5] * 3 < by_weekday[1]  # Saturday vs Tuesday


def test_working_hours(run: list[Submission]) -> None:
    for event in _upserts(run, ("upsert", "correction")):
        local = event.occurred_at.astimezone(LOCAL_TZ)
        assert 8 <= local.hour < 16


def test_visit_types_fit_the_family(valid: list[UpsertEvent | VoidEvent]) -> None:
    for event in valid:
        if not isinstance(event, UpsertEvent):
            continue
        age = event.child_age_months
        assert (age is None) == (event.visit_type == "prenatal")
        assert age is not None or event.pregnant
        assert (age is not None and age <= 1) == (event.visit_type == "newborn")
        if event.outcome != "completed":
            assert _items(event, "topics") == _items(event, "risk_flags") == ()
            assert _items(event, "referrals") == ()


def test_outcomes_risks_and_referrals(run: list[Submission]) -> None:
    events = _upserts(run)
    completed = sum(e.outcome == "completed" for e in events) / len(events)
    assert 0.82 < completed < 0.93
    flagged = [e for e in events if e.risk_flags]
    assert 0.02 < len(flagged) / len(events) < 0.08
    referred = sum(bool(e.referrals) for e in flagged) / len(flagged)
    assert 0.6 < referred < 0.95


def test_immunisation_coverage_varies_around_the_target(run: list[Submission]) -> None:
    counts: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for e in _upserts(run):
        if e.outcome == "completed" and e.child_age_months is not None and e.child_age_months < 24:
            counts[e.municipality][0] += "immunisation" in _items(e, "topics")
            counts[e.municipality][1] += 1
    coverage = [hit / total for hit, total in counts.values() if total >= 20]
    assert min(coverage) < 0.85
    assert max(coverage) > 0.93


def test_lateness_and_clock_order(run: list[Submission]) -> None:
    delays = [e.submitted_at - e.occurred_at for e in _upserts(run)]
    assert min(delays) > timedelta(0)
    assert max(delays) < timedelta(days=22)
    assert sum(d > timedelta(days=3) for d in delays) > 5
    assert sorted(delays)[len(delays) // 2] < timedelta(hours=2)


def test_times_carry_offsets_local_and_utc(run: list[Submission]) -> None:
    stamps: Counter[str] = Counter()
    for sub in run:
        if sub.kind in ("upsert", "correction"):
            stamp = json.loads(sub.payload)["occurred_at"]
            stamps[stamp[-1] if stamp.endswith("Z") else stamp[-6:]] += 1
    assert set(stamps) == {"Z", "+01:00", "+02:00"}


def test_nothing_looks_like_a_personal_name(valid: list[UpsertEvent | VoidEvent]) -> None:
    patterns = {
        "event_id": r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}",
        "visit_id": r"v-[0-9a-f]{20}",
        "household_id": r"hh-[0-9a-f]{12}",
        "nurse_id": r"n-[a-z_]+-\d{2}",
        "facility_id": r"fmc-[a-z_]+-\d",
    }
    for event in valid:
        for field, pattern in patterns.items():
            value = getattr(event, field)
            if value is not None:
                assert ID.match(value)
                assert re.fullmatch(pattern, value), (field, value)
        if isinstance(event, UpsertEvent):
            assert event.nurse_id.split("-")[1] in MUNICIPALITIES


def test_some_lists_repeat_an_item(run: list[Submission]) -> None:
    repeated = 0
    for sub in run:
        if sub.kind == "upsert":
            topics = json.loads(sub.payload)["topics"]
            repeated += len(topics) != len(set(topics))
    assert repeated > 0


# --- files and the live stream ----------------------------------------------------------------


def test_no_payload_has_a_line_break_and_jsonl_round_trips(
    run: list[Submission], tmp_path: Path
) -> None:
    payloads = [sub.payload for sub in run]
    assert not any(b"\n" in p or b"\r" in p for p in payloads)
    path = tmp_path / "visits.jsonl"
    assert write_jsonl(payloads, path) == len(payloads)
    assert path.read_bytes().split(b"\n")[:-1] == payloads


def test_write_jsonl_refuses_a_line_break(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="line break"):
        write_jsonl([b"{}", b'{\n"a":1}'], tmp_path / "x.jsonl")


def test_live_stream_replays_the_backlog_like_simulate() -> None:
    days = 6
    batch = simulate_submissions(SimulationConfig(start=START, days=days))
    cutoff = datetime(2024, 3, 1 + days, tzinfo=LOCAL_TZ)
    settled = [sub.payload for sub in batch if sub.arrival < cutoff]
    far_future = datetime(2030, 1, 1, tzinfo=UTC)
    live = iter_live(SimulationConfig(start=START, days=days), now=lambda: far_future)
    assert list(itertools.islice(live, len(settled))) == settled


def test_live_stream_waits_for_the_clock() -> None:
    clock = [datetime(2024, 3, 4, 0, 0, tzinfo=LOCAL_TZ)]  # a Monday, before work starts

    def sleep(seconds: float) -> None:
        clock[0] += timedelta(seconds=seconds)

    live = iter_live(SimulationConfig(start=date(2024, 3, 4)), now=lambda: clock[0], sleep=sleep)
    for payload in itertools.islice(live, 50):
        submitted = json.loads(payload).get("submitted_at") if payload.startswith(b"{") else None
        if submitted is not None:
            assert datetime.fromisoformat(submitted) <= clock[0]
    assert clock[0] > datetime(2024, 3, 4, 8, 0, tzinfo=LOCAL_TZ)
