"""The effective visit set (SPEC §1): folding the valid events of a visit with
`apply_event` reaches the same row whatever the arrival order and however many
duplicates, and that row is the one an independent reading of the rule gives."""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streams.indicators import scopes_of
from streams.revisions import (
    VisitState,
    first_state,
    state_from_bytes,
    state_to_bytes,
)
from streams.revisions import apply_event as fold_event
from vizita.contract.events import UpsertEvent, VoidEvent
from vizita.contract.municipalities import ALL_KOSOVO
from vizita.contract.validation import Reason, Rejection, validate_payload

Event = UpsertEvent | VoidEvent

BELGRADE = ZoneInfo("Europe/Belgrade")
PLUS_2 = timezone(timedelta(hours=2))
MINUS_5 = timezone(timedelta(hours=-5))
# Every field of SPEC §1 a row carries, besides the bookkeeping ones.
DESCRIPTIVE = (
    "occurred_at", "municipality", "facility_id", "nurse_id", "household_id",
    "child_age_months", "pregnant", "visit_type", "outcome", "topics", "risk_flags",
    "referrals",
)  # fmt: skip

# --- building events ---------------------------------------------------------------------


def upsert(
    event_id: str,
    revision: int = 1,
    submitted_at: datetime = datetime(2024, 5, 1, 8, 0, tzinfo=UTC),
    occurred_at: datetime = datetime(2024, 4, 15, 10, 0, tzinfo=UTC),
    visit_id: str = "visit-1",
    **fields: Any,
) -> UpsertEvent:
    values: dict[str, Any] = {
        "municipality": "prizren",
        "facility_id": "qmf-prizren",
        "nurse_id": "nurse-1",
        "household_id": "hh-1",
        "child_age_months": 4,
        "pregnant": False,
        "visit_type": "routine",
        "outcome": "completed",
        "topics": ["immunisation"],
        "risk_flags": [],
        "referrals": [],
        **fields,
    }
    return UpsertEvent(
        schema_version=1,
        event_id=event_id,
        visit_id=visit_id,
        revision=revision,
        op="upsert",
        submitted_at=submitted_at,
        occurred_at=occurred_at,
        **values,
    )


def void(
    event_id: str,
    revision: int = 2,
    submitted_at: datetime = datetime(2024, 5, 2, 8, 0, tzinfo=UTC),
    visit_id: str = "visit-1",
    **fields: Any,
) -> VoidEvent:
    return VoidEvent(
        schema_version=1,
        event_id=event_id,
        visit_id=visit_id,
        revision=revision,
        op="void",
        submitted_at=submitted_at,
        **fields,
    )


@dataclass(frozen=True)
class Applied:
    """What folding one event gives, and whether the visit's row changed by it."""

    state: VisitState
    duplicate: bool
    changed: bool


def apply_event(state: VisitState | None, event: Event) -> Applied:
    applied = fold_event(state, event)
    changed = state is None or applied.state.row != state.row
    return Applied(applied.state, applied.duplicate, changed)


def copy_of(event: Event) -> Event:
    """The same submission delivered again: equal content, another object."""
    return type(event).model_validate_json(event.model_dump_json(), strict=True)


def fold(events: list[Event]) -> tuple[dict[str, VisitState], list[tuple[Event, Applied]]]:
    states: dict[str, VisitState] = {}
    steps = []
    for event in events:
        applied = apply_event(states.get(event.visit_id), event)
        states[event.visit_id] = applied.state
        steps.append((event, applied))
    return states, steps


def apply_all(*events: Event) -> Applied:
    """Fold the events of one visit; answer the last step."""
    applied = apply_event(None, events[0])
    for event in events[1:]:
        applied = apply_event(applied.state, event)
    return applied


# --- the oracle: SPEC §1 read independently ----------------------------------------------------


def _rank(event: Event) -> tuple[int, datetime, str]:
    return (event.revision, event.submitted_at, event.event_id)


def expected_rows(events: list[Event]) -> dict[str, dict[str, Any]]:
    """Per visit: the winner is the max by (revision, submitted_at, event_id); a void
    winner gives is_void and shows its best upsert's descriptive fields, if any."""
    by_visit: dict[str, dict[str, Event]] = defaultdict(dict)
    for event in events:  # a repeated event_id is the same submission: keep one
        by_visit[event.visit_id][event.event_id] = event
    rows = {}
    for visit_id, unique in by_visit.items():
        winner = max(unique.values(), key=_rank)
        best = max((e for e in unique.values() if e.op == "upsert"), key=_rank, default=None)
        shown = best if winner.op == "void" and best is not None else winner
        row = {name: getattr(shown, name) for name in DESCRIPTIVE}
        moment = row["occurred_at"] or winner.submitted_at
        row |= {
            "visit_id": visit_id,
            "event_id": winner.event_id,
            "revision": winner.revision,
            "schema_version": 1,
            "op": winner.op,
            "submitted_at": winner.submitted_at,
            "is_void": winner.op == "void",
            "local_day": moment.astimezone(BELGRADE).date(),
        }
        rows[visit_id] = row
    return rows


# --- strategies -----------------------------------------------------------------------------------

VISIT_IDS = ("visit-a", "visit-b", "visit-c", "visit-d")
# Few instants, so revisions and submission times tie often; one instant appears in two
# offsets (a tie on the instant, not on the text).
SUBMITTED = (
    datetime(2024, 5, 1, 8, 0, tzinfo=UTC),
    datetime(2024, 5, 1, 10, 0, tzinfo=PLUS_2),
    datetime(2024, 5, 1, 9, 0, tzinfo=UTC),
    datetime(2024, 5, 3, 3, 0, tzinfo=MINUS_5),
)
# Around month ends in Belgrade: 21:30Z on 31 March is still March there, 22:30Z is April.
OCCURRED = (
    datetime(2024, 3, 31, 21, 30, tzinfo=UTC),
    datetime(2024, 3, 31, 22, 30, tzinfo=UTC),
    datetime(2024, 2, 29, 23, 30, tzinfo=UTC),
    datetime(2024, 4, 15, 10, 0, tzinfo=PLUS_2),
    datetime(2024, 4, 30, 22, 30, tzinfo=UTC),
)
EVENT_IDS = st.text(alphabet="abAB09_.:-", min_size=1, max_size=3)


def _codes(*items: str) -> st.SearchStrategy[list[str]]:
    return st.lists(st.sampled_from(items), max_size=3)


@st.composite
def events_of(draw: st.DrawFn, visit_id: str, event_id: str) -> Event:
    base: dict[str, Any] = {
        "event_id": event_id,
        "visit_id": visit_id,
        "revision": draw(st.integers(min_value=1, max_value=3)),
        "submitted_at": draw(st.sampled_from(SUBMITTED)),
    }
    fields: dict[str, Any] = {
        "occurred_at": draw(st.sampled_from(OCCURRED)),
        "municipality": draw(st.sampled_from(["prizren", "peje", "zvecan"])),
        "facility_id": draw(st.none() | st.sampled_from(["qmf-1", "qmf-2"])),
        "nurse_id": draw(st.sampled_from(["nurse-1", "nurse-2"])),
        "household_id": draw(st.sampled_from(["hh-1", "hh-2"])),
        "child_age_months": draw(st.none() | st.integers(min_value=0, max_value=71)),
        "pregnant": draw(st.booleans()),
        "visit_type": draw(st.sampled_from(["prenatal", "newborn", "routine", "follow_up"])),
        "outcome": draw(st.sampled_from(["completed", "not_home", "refused"])),
        "topics": draw(_codes("immunisation", "nutrition", "maternal_health")),
        "risk_flags": draw(_codes("disability", "violence_risk")),
        "referrals": draw(_codes("social_services", "child_protection")),
    }
    if draw(st.integers(min_value=0, max_value=3)):  # three upserts for each void
        return upsert(**base, **fields)
    # A void needs only the base fields; some carry a few descriptive ones too.
    kept = draw(st.lists(st.sampled_from(["occurred_at", "municipality", "outcome"]), unique=True))
    return void(**base, **{name: fields[name] for name in kept})


@st.composite
def histories(draw: st.DrawFn) -> list[Event]:
    """The distinct submissions of 2 to 4 visits, 1 to 5 each (event_ids unique)."""
    visits = draw(st.lists(st.sampled_from(VISIT_IDS), min_size=2, max_size=4, unique=True))
    sizes = [draw(st.integers(min_value=1, max_value=5)) for _ in visits]
    ids = draw(st.lists(EVENT_IDS, min_size=sum(sizes), max_size=sum(sizes), unique=True))
    events = []
    for visit_id, size in zip(visits, sizes, strict=True):
        events += [draw(events_of(visit_id, ids.pop())) for _ in range(size)]
    return events


@st.composite
def deliveries(draw: st.DrawFn) -> tuple[list[Event], list[Event]]:
    """A history, and one arrival order of it with some submissions delivered again."""
    events = draw(histories())
    again = draw(st.lists(st.sampled_from(events), max_size=6))
    arrival = draw(st.permutations(events + [copy_of(event) for event in again]))
    return events, arrival


# --- properties -----------------------------------------------------------------------------------


def _winner_ids(states: dict[str, VisitState]) -> dict[str, str]:
    return {visit_id: state.winner_id for visit_id, state in states.items()}


@settings(max_examples=200, deadline=None)
@given(case=deliveries())
def test_any_order_with_duplicates_gives_the_expected_rows(
    case: tuple[list[Event], list[Event]],
) -> None:
    events, arrival = case
    in_order, _ = fold(events)
    shuffled, steps = fold(arrival)
    expected = expected_rows(events)
    assert {v: s.row for v, s in shuffled.items()} == expected
    assert {v: s.row for v, s in in_order.items()} == expected
    assert _winner_ids(shuffled) == _winner_ids(in_order)
    for visit_id, state in shuffled.items():
        assert all(state.has_seen(e.event_id) for e in events if e.visit_id == visit_id)
    # A submission seen before is reported as a duplicate and changes nothing; the key
    # grows whenever the row changes, and the final key depends on the events only.
    seen: set[str] = set()
    keys: dict[str, tuple[object, ...]] = {}
    for event, applied in steps:
        assert applied.duplicate == (event.event_id in seen)
        if applied.duplicate:
            assert not applied.changed
        seen.add(event.event_id)
        previous = keys.get(event.visit_id)
        if previous is not None:
            # A changed row always has a greater key; the key may also grow without a
            # visible change (a void's new best upsert with the same fields).
            if applied.changed:
                assert applied.state.key > previous  # type: ignore[operator]
            assert applied.state.key >= previous  # type: ignore[operator]
        keys[event.visit_id] = applied.state.key
    for visit_id, state in shuffled.items():
        assert state.key == in_order[visit_id].key


@settings(max_examples=80, deadline=None)
@given(case=deliveries(), data=st.data())
def test_two_arrival_orders_agree(case: tuple[list[Event], list[Event]], data: Any) -> None:
    _, arrival = case
    other = data.draw(st.permutations(arrival))
    first, _ = fold(arrival)
    second, _ = fold(other)
    assert {v: s.row for v, s in first.items()} == {v: s.row for v, s in second.items()}
    assert _winner_ids(first) == _winner_ids(second)


@settings(max_examples=60, deadline=None)
@given(case=deliveries())
def test_states_survive_the_changelog(case: tuple[list[Event], list[Event]]) -> None:
    _, arrival = case
    for _, applied in fold(arrival)[1]:
        state = applied.state
        again = state_from_bytes(state_to_bytes(state))
        assert again == state
        assert again.row == state.row


@settings(max_examples=100, deadline=None)
@given(case=deliveries())
def test_a_state_keeps_every_municipality_any_earlier_state_was_in(
    case: tuple[list[Event], list[Event]],
) -> None:
    """A batch's entries go out before its states are written: after a crash its events
    run again, batched otherwise, from the last state written. Whatever a state in
    between sent its entry to, the state at the end sends the visit's last entry to as
    well, so that no earlier entry outlives it anywhere."""
    _, arrival = case
    final, steps = fold(arrival)
    for event, applied in steps:
        sent_then = set(scopes_of(applied.state))
        assert sent_then <= set(scopes_of(final[event.visit_id]))
        where = applied.state.visit.municipality
        assert where is None or where in applied.state.scopes


def test_a_visit_moved_within_one_batch_still_reaches_where_it_was() -> None:
    moved = apply_all(upsert("e1", municipality="gllogoc"),
                      upsert("e2", revision=2, municipality="fushe_kosove"))  # fmt: skip
    assert moved.state.scopes == ("fushe_kosove", "gllogoc")
    assert scopes_of(moved.state) == ("fushe_kosove", "gllogoc", ALL_KOSOVO)


# --- examples: duplicates and revisions -----------------------------------------------------------


def test_a_duplicate_is_reported_and_changes_nothing() -> None:
    first = apply_event(None, upsert("e1"))
    assert (first.duplicate, first.changed) == (False, True)
    again = apply_event(first.state, copy_of(upsert("e1")))
    assert again.duplicate is True
    assert again.changed is False
    assert again.state == first.state


def test_a_duplicate_void_changes_nothing() -> None:
    state = apply_all(upsert("e1"), void("e2")).state
    again = apply_event(state, void("e2"))
    assert (again.duplicate, again.changed) == (True, False)
    assert again.state == state


def test_a_higher_revision_changes_the_row_and_bumps_the_version() -> None:
    first = apply_event(None, upsert("e1", revision=1, outcome="not_home"))
    second = apply_event(first.state, upsert("e2", revision=2, outcome="completed"))
    assert (second.duplicate, second.changed) == (False, True)
    assert second.state.version > first.state.version
    assert second.state.key > first.state.key
    assert second.state.row["revision"] == 2
    assert second.state.row["event_id"] == "e2"
    assert second.state.row["outcome"] == "completed"


def test_a_lower_revision_arriving_late_changes_nothing() -> None:
    first = apply_event(None, upsert("e2", revision=2, outcome="completed"))
    late = apply_event(first.state, upsert("e1", revision=1, outcome="refused"))
    assert (late.duplicate, late.changed) == (False, False)
    assert late.state.row == first.state.row
    assert late.state.version == first.state.version
    assert late.state.has_seen("e1")
    assert late.state.has_seen("e2")


@pytest.mark.parametrize("order", [(0, 1), (1, 0)])
def test_on_equal_revisions_the_later_submission_wins(order: tuple[int, int]) -> None:
    earlier = upsert("e9", revision=2, submitted_at=datetime(2024, 5, 1, 8, 0, tzinfo=UTC))
    later = upsert("e1", revision=2, submitted_at=datetime(2024, 5, 1, 9, 0, tzinfo=UTC))
    events = (earlier, later)
    state = apply_all(*(events[i] for i in order)).state
    assert state.row["event_id"] == "e1"  # the later one, though its event_id is smaller


@pytest.mark.parametrize("order", [(0, 1), (1, 0)])
def test_on_equal_revision_and_instant_the_greater_event_id_wins(order: tuple[int, int]) -> None:
    # The same instant written in two offsets is a tie on submitted_at.
    a = upsert("event-a", revision=2, submitted_at=datetime(2024, 5, 1, 8, 0, tzinfo=UTC))
    b = upsert("event-b", revision=2, submitted_at=datetime(2024, 5, 1, 10, 0, tzinfo=PLUS_2))
    events = (a, b)
    state = apply_all(*(events[i] for i in order)).state
    assert state.row["event_id"] == "event-b"


@pytest.mark.parametrize("order", [(0, 1), (1, 0)])
def test_one_event_id_with_two_contents_is_settled_the_same_way_in_any_order(
    order: tuple[int, int],
) -> None:
    # Not a duplicate in content: a device reused an event_id. Arrival order must not decide.
    a = upsert("e1", outcome="completed")
    b = upsert("e1", outcome="refused")
    events = (a, b)
    last = apply_all(*(events[i] for i in order))
    assert last.duplicate is True
    reference = apply_all(a, b).state.row
    assert last.state.row == reference


# --- examples: voids ------------------------------------------------------------------------------


def test_a_winning_void_keeps_the_best_upserts_place_and_day() -> None:
    visit = upsert(
        "e1", revision=1, municipality="peje", occurred_at=datetime(2024, 4, 15, 10, 0, tzinfo=UTC)
    )
    applied = apply_all(visit, void("e2", revision=2))
    row = applied.state.row
    assert applied.changed is True
    assert row["is_void"] is True
    assert row["op"] == "void"
    assert (row["event_id"], row["revision"]) == ("e2", 2)
    assert row["municipality"] == "peje"
    assert row["local_day"] == date(2024, 4, 15)
    assert row["occurred_at"] == visit.occurred_at


def test_a_void_with_a_lower_revision_loses() -> None:
    applied = apply_all(upsert("e2", revision=2), void("e1", revision=1))
    assert applied.changed is False
    assert applied.state.row["is_void"] is False
    assert applied.state.row["event_id"] == "e2"


def test_a_void_first_then_its_upsert_stays_void_and_gains_the_fields() -> None:
    first = apply_event(
        None, void("e2", revision=2, submitted_at=datetime(2024, 5, 2, 8, 0, tzinfo=UTC))
    )
    assert first.state.row["is_void"] is True
    assert first.state.row["municipality"] is None
    assert first.state.row["local_day"] == date(2024, 5, 2)  # from submitted_at, for want of better
    upserted = apply_event(
        first.state,
        upsert(
            "e1",
            revision=1,
            municipality="zvecan",
            occurred_at=datetime(2024, 4, 20, 9, 0, tzinfo=UTC),
        ),
    )
    row = upserted.state.row
    assert (upserted.duplicate, upserted.changed) == (False, True)
    assert row["is_void"] is True
    assert (row["event_id"], row["revision"], row["op"]) == ("e2", 2, "void")
    assert row["municipality"] == "zvecan"
    assert row["outcome"] == "completed"
    assert row["local_day"] == date(2024, 4, 20)
    assert upserted.state.key > first.state.key  # it grew: the best upsert counts under a void


def test_a_void_first_then_an_upsert_that_outranks_it_revives_the_visit() -> None:
    applied = apply_all(void("e1", revision=1), upsert("e2", revision=2))
    assert applied.changed is True
    assert applied.state.row["is_void"] is False
    assert applied.state.row["event_id"] == "e2"


# --- examples: days and months --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("before", "after", "days"),
    [
        # 21:30Z on 31 March is 23:30 in Belgrade (summer time): March. 22:30Z is 1 April.
        (
            datetime(2024, 3, 31, 21, 30, tzinfo=UTC),
            datetime(2024, 3, 31, 22, 30, tzinfo=UTC),
            (date(2024, 3, 31), date(2024, 4, 1)),
        ),
        (
            datetime(2024, 4, 2, 9, 0, tzinfo=UTC),
            datetime(2024, 4, 28, 9, 0, tzinfo=PLUS_2),
            (date(2024, 4, 2), date(2024, 4, 28)),
        ),
    ],
    ids=["into-another-month", "within-the-month"],
)
def test_a_correction_moves_the_local_day(
    before: datetime, after: datetime, days: tuple[date, date]
) -> None:
    first = apply_event(None, upsert("e1", revision=1, occurred_at=before))
    assert first.state.row["local_day"] == days[0]
    moved = apply_event(first.state, upsert("e2", revision=2, occurred_at=after))
    assert moved.changed is True
    assert moved.state.key > first.state.key
    assert moved.state.row["local_day"] == days[1]
    assert moved.state.row["occurred_at"] == after


def test_a_late_lower_revision_in_another_month_moves_nothing() -> None:
    first = apply_event(
        None, upsert("e2", revision=2, occurred_at=datetime(2024, 4, 2, 9, 0, tzinfo=UTC))
    )
    late = apply_event(
        first.state, upsert("e1", revision=1, occurred_at=datetime(2024, 3, 2, 9, 0, tzinfo=UTC))
    )
    assert late.changed is False
    assert late.state.row["local_day"] == date(2024, 4, 2)


@pytest.mark.parametrize(
    ("occurred_at", "day"),
    [
        (datetime(2024, 3, 31, 23, 30, tzinfo=UTC), date(2024, 4, 1)),  # summer time, +02:00
        (datetime(2024, 3, 31, 21, 59, tzinfo=UTC), date(2024, 3, 31)),
        (datetime(2024, 1, 31, 23, 30, tzinfo=UTC), date(2024, 2, 1)),  # winter time, +01:00
        (datetime(2024, 1, 31, 22, 59, tzinfo=UTC), date(2024, 1, 31)),
        (datetime(2024, 10, 27, 22, 30, tzinfo=UTC), date(2024, 10, 27)),  # back to +01:00
        (datetime(2024, 10, 26, 22, 30, tzinfo=UTC), date(2024, 10, 27)),
        (datetime(2024, 4, 1, 0, 30, tzinfo=PLUS_2), date(2024, 4, 1)),
        (datetime(2024, 3, 31, 18, 30, tzinfo=MINUS_5), date(2024, 4, 1)),
    ],
)
def test_local_day_is_the_date_in_belgrade(occurred_at: datetime, day: date) -> None:
    event = upsert("e1", occurred_at=occurred_at)
    assert first_state(event).row["local_day"] == day
    assert apply_event(None, event).state.row["local_day"] == day


def test_a_void_alone_belongs_to_its_own_occurred_at_day_if_it_has_one() -> None:
    event = void("e1", occurred_at=datetime(2024, 3, 31, 23, 30, tzinfo=UTC))
    assert apply_event(None, event).state.row["local_day"] == date(2024, 4, 1)


@pytest.mark.parametrize(
    "payload",
    [
        {
            "op": "upsert",
            "occurred_at": "0001-01-01T00:30:00+01:00",
            "submitted_at": "0001-01-01T00:40:00+01:00",
        },
        {
            "op": "upsert",
            "occurred_at": "9999-12-31T23:50:00Z",
            "submitted_at": "9999-12-31T23:55:00Z",
        },
        {"op": "void", "submitted_at": "9999-12-31T23:00:00-12:00"},
    ],
    ids=["year-1-upsert", "year-9999-upsert", "year-9999-void"],
)
def test_instants_at_the_ends_of_time_are_refused_at_the_boundary(
    payload: dict[str, Any],
) -> None:
    # Such instants once crashed local_day() downstream; the validator now refuses them.
    full = upsert("e1").model_dump(mode="json") | payload
    if payload["op"] == "void":
        full = {k: full[k] for k in ("schema_version", "event_id", "visit_id", "revision")}
        full |= payload
    result = validate_payload(json.dumps(full).encode())
    assert isinstance(result, Rejection)
    assert result.reason is Reason.OUT_OF_RANGE


def test_a_visit_with_thousands_of_events_keeps_a_state_of_one_size() -> None:
    # One visit_id sent 15,000 distinct event ids (a broken or hostile device): the state,
    # and so the changelog message and the work per event, must not grow with them.
    state = apply_event(None, upsert("e-0")).state
    sizes = []
    for n in range(1, 15_000):
        state = apply_event(state, upsert(f"e-{n}", revision=1 + n % 3)).state
        if n % 5_000 == 0:
            sizes.append(len(state_to_bytes(state)))
    assert max(sizes) - min(sizes) <= 4  # the same fields; numbers may gain a digit
    assert max(sizes) < 1_000
    assert state.has_seen("e-14999")
