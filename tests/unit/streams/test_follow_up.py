"""`at_risk_follow_up_rate` (streams.follow_up) against its definition in SPEC §3,
written out by brute force: entries in any order, with repeats and corrections (moved
households, days, municipalities, voids), give every row the final visits give."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from streams.follow_up import FollowUps
from streams.rollup import supersedes
from vizita.contract.indicators import WINDOWS
from vizita.contract.messages import Contribution, VisitEntry
from vizita.contract.municipalities import ALL_KOSOVO

BASE = date(2025, 1, 1)
SPAN = 24  # short enough for at-risk visits to share end days
PLACES = ("prizren", "peje", "decan")
HOUSEHOLDS = ("hh-1", "hh-2", "hh-3")
FIRST, LAST = BASE, BASE + timedelta(days=SPAN + 20)

Row = tuple[int, int | None, float | None]


def visit(
    version: int, place: str | None, day: date | None, household: str, *conditions: str
) -> VisitEntry:
    item = Contribution.of(household, "n-1", {"effective", *conditions}) if conditions else None
    return VisitEntry((version,), place, day, item)


def brute_force(final: dict[str, VisitEntry], scope: str, window: int, as_of: date) -> Row:
    """SPEC §3 as written: R is the completed at-risk visits of the scope whose 14-day
    period ends in the window; of them, those whose household had another completed
    visit 1 to 14 days later, anywhere."""
    done = [
        (visit_id, e.municipality, e.day, e.contribution.household_id,
         "ref_den" in e.contribution.conditions)
        for visit_id, e in final.items()
        if e.contribution and e.day and e.municipality
        and "completed" in e.contribution.conditions
    ]  # fmt: skip
    due = [
        (visit_id, day, household) for visit_id, place, day, household, at_risk in done
        if at_risk and scope in (ALL_KOSOVO, place)
        and as_of - timedelta(days=window - 1) <= day + timedelta(days=14) <= as_of
    ]  # fmt: skip
    followed = sum(
        any(other != visit_id and their == household and 1 <= (later - day).days <= 14
            for other, _, later, their, _ in done)
        for visit_id, day, household in due
    )  # fmt: skip
    return followed, len(due), (followed / len(due) if due else None)


def rows_of(follow_ups: FollowUps, scopes: tuple[str, ...]) -> dict[Any, Row]:
    return {
        (scope, v.window_days, v.as_of): (v.numerator, v.denominator, v.value)
        for scope in scopes
        for window in WINDOWS
        for v in follow_ups.values(scope, FIRST, LAST, window)
    }


# --- strategies --------------------------------------------------------------------------------

days = st.integers(0, SPAN - 1).map(lambda n: BASE + timedelta(days=n))
conditions = st.sampled_from(
    [("completed",), ("completed", "ref_den"), ("completed", "ref_den"), ("missed",)]
)
# the last: a void (no contribution, maybe the place and day of the last upsert)
bodies = st.one_of(
    st.tuples(st.sampled_from(PLACES), days, st.sampled_from(HOUSEHOLDS), conditions),
    st.tuples(st.none() | st.sampled_from(PLACES), st.none() | days, st.just("hh-1"), st.just(())),
)


@st.composite
def histories(draw: Any) -> tuple[dict[str, list[VisitEntry]], list[tuple[str, int]]]:
    """Visits with versions 1..n, and an arrival order with repeats in which each final
    version arrives at least once."""
    visits: dict[str, list[VisitEntry]] = {}
    arrivals: list[tuple[str, int]] = []
    for n in range(draw(st.integers(1, 16))):
        versions = draw(st.lists(bodies, min_size=1, max_size=3))
        visit_id = f"v-{n}"
        visits[visit_id] = [visit(i + 1, p, d, h, *c) for i, (p, d, h, c) in enumerate(versions)]
        arrivals.append((visit_id, len(versions) - 1))
        for index in range(len(versions)):
            arrivals.extend([(visit_id, index)] * draw(st.integers(0, 2)))
    return visits, draw(st.permutations(arrivals))


@settings(max_examples=150, deadline=None, database=None)
@given(case=histories())
def test_any_order_with_repeats_gives_the_definition(
    case: tuple[dict[str, list[VisitEntry]], list[tuple[str, int]]],
) -> None:
    visits, arrivals = case
    follow_ups = FollowUps()
    stored: dict[str, VisitEntry] = {}
    for visit_id, index in arrivals:
        new = visits[visit_id][index]
        if supersedes(new, stored.get(visit_id)):
            follow_ups.replace(visit_id, new)
            stored[visit_id] = new
    final = {visit_id: versions[-1] for visit_id, versions in visits.items()}
    assert stored == final
    scopes = (*PLACES, ALL_KOSOVO)
    got = rows_of(follow_ups, scopes)
    assert got == {key: brute_force(final, *key) for key in got}
    # The state is the one a build from the final visits gives.
    rebuilt = FollowUps()
    for visit_id, entry in final.items():
        rebuilt.replace(visit_id, entry)
    assert (follow_ups.visits, follow_ups.followed) == (rebuilt.visits, rebuilt.followed)
    assert follow_ups.ends == {s: e for s, e in rebuilt.ends.items() if e} | {
        s: e for s, e in follow_ups.ends.items() if not e
    }


def test_the_fourteenth_day_follows_up_and_the_fifteenth_does_not() -> None:
    follow_ups = FollowUps()
    follow_ups.replace("a", visit(1, "prizren", BASE, "hh-1", "completed", "ref_den"))
    follow_ups.replace("b", visit(1, "peje", BASE + timedelta(days=15), "hh-1", "completed"))
    ends = BASE + timedelta(days=14)
    assert next(follow_ups.values("prizren", ends, ends, 7)).numerator == 0
    follow_ups.replace("b", visit(2, "peje", BASE + timedelta(days=14), "hh-1", "completed"))
    row = next(follow_ups.values("prizren", ends, ends, 7))
    assert (row.numerator, row.denominator, row.value) == (1, 1, 1.0)
    assert next(follow_ups.values("peje", ends, ends, 7)).denominator == 0
    # The same day is no follow-up; nor is another household's visit.
    follow_ups.replace("b", visit(3, "peje", BASE, "hh-1", "completed"))
    follow_ups.replace("c", visit(1, "peje", BASE + timedelta(days=3), "hh-2", "completed"))
    assert next(follow_ups.values(ALL_KOSOVO, ends, ends, 30)).numerator == 0


def test_a_change_marks_the_rows_where_periods_end() -> None:
    follow_ups = FollowUps()
    follow_ups.replace("a", visit(1, "prizren", BASE, "hh-1", "completed", "ref_den"))
    follow_ups.dirty.clear()
    # A follow-up on day 5 decides the visit of day 0, whose period ends on day 14.
    follow_ups.replace("b", visit(1, "decan", BASE + timedelta(days=5), "hh-1", "completed"))
    ends = BASE + timedelta(days=14)
    assert follow_ups.dirty == {"prizren": ends, ALL_KOSOVO: ends}
    follow_ups.dirty.clear()
    follow_ups.replace("b", visit(2, None, None, "hh-1"))  # voided
    assert follow_ups.dirty == {"prizren": ends, ALL_KOSOVO: ends}
    assert next(follow_ups.values("prizren", ends, ends, 7)).value == 0.0


def test_a_followed_visit_leaves_its_day_with_its_follow_up() -> None:
    """Two at-risk visits end on one day, one followed up; the followed one moves to
    another day, then the other is followed up and voided."""
    follow_ups = FollowUps()
    at_risk = ("completed", "ref_den")
    follow_ups.replace("a", visit(1, "prizren", BASE, "hh-1", *at_risk))
    follow_ups.replace("b", visit(1, "prizren", BASE, "hh-2", *at_risk))
    follow_ups.replace("c", visit(1, "peje", BASE + timedelta(days=2), "hh-1", "completed"))
    ends = BASE + timedelta(days=14)

    def row() -> Row:
        value = next(follow_ups.values("prizren", ends, ends, 7))
        return value.numerator, value.denominator, value.value

    assert row() == (1, 2, 0.5)
    follow_ups.replace("a", visit(2, "prizren", BASE + timedelta(days=1), "hh-1", *at_risk))
    assert row() == (0, 1, 0.0)
    follow_ups.replace("d", visit(1, "decan", BASE + timedelta(days=9), "hh-2", "completed"))
    assert row() == (1, 1, 1.0)
    follow_ups.replace("b", visit(2, None, None, "hh-2"))
    assert row() == (0, 0, None)
