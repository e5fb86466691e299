"""Stage 2's derived state (streams.rollup): entries applied in any order and with
repeats reach the state a rebuild from the final entries gives; `changed_values` sends
each changed row once and nothing else; `ALL` takes distinct counts over the country."""

from __future__ import annotations

import json
import random
from collections.abc import Iterable, Mapping
from datetime import date, timedelta
from itertools import chain
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streams.indicators import DayBucket, Value, window_values
from streams.rollup import Rollup, supersedes
from vizita.contract.indicators import (
    CONDITIONS,
    COUNTRYWIDE_INDICATORS,
    FOLLOW_UP_DAYS,
    INDICATORS,
    WINDOWS,
)
from vizita.contract.messages import Contribution, VisitEntry, decode, encode
from vizita.contract.municipalities import ALL_KOSOVO, MUNICIPALITIES, SCOPES

BASE = date(2024, 3, 1)
SPAN = 20  # entries fall on BASE .. BASE + SPAN - 1
FIRST, CLOCK = BASE, BASE + timedelta(days=SPAN + 5)
PLACES = ("prizren", "peje", "decan")
FLAGS = (
    "completed", "missed", "imm_num", "imm_den", "bf_num", "bf_den", "mh_num", "mh_den",
    "es_num", "es_den", "ref_num", "ref_den",
)  # fmt: skip

Key = tuple[str, str, int, date]
Row = tuple[int, int | None, float | None]


def contribution_of(household: str, nurse: str, flags: frozenset[str]) -> Contribution:
    return Contribution.of(household, nurse, flags)


def country() -> Rollup:
    """A rollup that owns every scope, as one worker holding every partition."""
    rollup = Rollup()
    for scope in SCOPES:
        rollup.build(scope, [])
    rollup.dirty.clear()
    return rollup


def replace(rollup: Rollup, old: VisitEntry | None, new: VisitEntry, visit_id: str = "v-1") -> None:
    """A visit's entry changed, in every scope it was or is in (as stage 1 sends it)."""
    for scope in {ALL_KOSOVO, *(e.municipality for e in (old, new) if e and e.municipality)}:
        rollup.replace(scope, visit_id, old, new)


def rebuild(rollup: Rollup, entries: Mapping[str, VisitEntry] | Iterable[VisitEntry]) -> None:
    """Every scope built from the final entries: by visit, or a list of visits."""
    if isinstance(entries, Mapping):
        final = list(entries.items())
    else:
        final = [(f"v-{n}", entry) for n, entry in enumerate(entries)]
    for scope in SCOPES:
        rollup.build(scope, final)


def visit_entry(
    key: tuple[Any, ...] | int, municipality: str | None, day: date | None,
    item: Contribution | None,
) -> VisitEntry:  # fmt: skip
    key = key if isinstance(key, tuple) else (key,)
    return VisitEntry(key=key, municipality=municipality, day=day, contribution=item)


def done(household: str, nurse: str = "n-1", *more: str) -> Contribution:
    return contribution_of(household, nurse, frozenset({"effective", "completed", *more}))


def entry(version: int, municipality: str, day: date, item: Contribution | None) -> VisitEntry:
    # Stage 1's keys are rank tuples; a one-element tuple orders the same way here.
    return visit_entry((version,), municipality, day, item)


def drain(rollup: Rollup, first: date = FIRST, clock: date = CLOCK) -> dict[Key, Row]:
    rows: dict[Key, Row] = {}
    for scope, value in rollup.changed_values(first, clock):
        key = (scope, value.indicator, value.window_days, value.as_of)
        assert key not in rows, "a row is sent twice in one call"
        rows[key] = (value.numerator, value.denominator, value.value)
    return rows


def empty_row(indicator: str) -> Row:
    if indicator in ("visits_completed", "households_reached"):
        return (0, None, 0.0)
    return (0, 0, None)


def live_buckets(rollup: Rollup) -> dict[str, dict[date, DayBucket]]:
    """The buckets that hold something: an emptied day means the same as a missing one."""
    out = {}
    for scope, by_day in rollup.buckets.items():
        kept = {day: bucket for day, bucket in by_day.items() if not bucket.is_empty()}
        if kept:
            out[scope] = kept
    return out


def all_rows(rollup: Rollup, scopes: tuple[str, ...] = SCOPES) -> dict[Key, Row]:
    """Every row of these scopes, the follow-ups too (the rollup owns ALL)."""
    assert rollup.follow_ups is not None
    rows: dict[Key, Row] = {}
    for scope in scopes:
        for window in WINDOWS:
            values = chain(
                window_values(rollup.buckets[scope], FIRST, CLOCK, window),
                rollup.follow_ups.values(scope, FIRST, CLOCK, window),
            )
            for v in values:
                rows[scope, v.indicator, v.window_days, v.as_of] = (
                    v.numerator, v.denominator, v.value,
                )  # fmt: skip
    return rows


# --- strategies --------------------------------------------------------------------------------

contributions = st.builds(
    contribution_of,
    st.sampled_from(["hh-1", "hh-2", "hh-3", "hh-4"]),
    st.sampled_from(["n-1", "n-2", "n-3"]),
    st.frozensets(st.sampled_from(FLAGS)).map(lambda fs: fs | {"effective"}),
)
days = st.integers(0, SPAN - 1).map(lambda n: BASE + timedelta(days=n))
places = st.sampled_from(PLACES)
# One version of a visit without its number: an upsert, or a void (no contribution; the
# municipality and day may be those of the last upsert or missing).
bodies = st.one_of(
    st.tuples(places, days, contributions),
    st.tuples(st.none() | places, st.none() | days, st.none()),
)


@st.composite
def histories(draw: Any) -> tuple[dict[str, list[VisitEntry]], list[tuple[str, int]]]:
    """Visits with their versions 1..n, and an arrival order of (visit, version index):
    each final version at least once, earlier ones maybe never, maybe several times."""
    count = draw(st.integers(1, 8))
    visits: dict[str, list[VisitEntry]] = {}
    arrivals: list[tuple[str, int]] = []
    for n in range(count):
        versions = draw(st.lists(bodies, min_size=1, max_size=4))
        visit_id = f"v-{n}"
        visits[visit_id] = [visit_entry((i + 1,), *body) for i, body in enumerate(versions)]
        arrivals.append((visit_id, len(versions) - 1))
        for index in range(len(versions)):
            arrivals.extend([(visit_id, index)] * draw(st.integers(0, 2)))
    return visits, draw(st.permutations(arrivals))


entries = st.builds(
    VisitEntry,
    key=st.tuples(st.integers(1, 2**31 - 1), st.integers(0, 2**63), st.text(max_size=8)),
    municipality=st.none() | st.sampled_from(sorted(MUNICIPALITIES)),
    day=st.none() | st.dates(date(1900, 1, 1), date(2999, 12, 31)),
    contribution=st.none()
    | st.builds(
        contribution_of,
        st.text("abcXYZ019_.:-", min_size=1, max_size=64),
        st.text("abcXYZ019_.:-", min_size=1, max_size=64),
        st.frozensets(st.sampled_from(FLAGS)).map(lambda fs: fs | {"effective"}),
    ),
)


# --- supersedes and the changelog form ------------------------------------------------------------


def test_supersedes_is_last_writer_wins_by_version() -> None:
    one = entry(1, "peje", BASE, done("hh-1"))
    two = entry(2, "decan", BASE, None)
    assert supersedes(one, None)
    assert supersedes(two, one)
    assert not supersedes(one, two)
    assert not supersedes(one, one)  # the same row sent again
    assert not supersedes(entry(2, "prizren", BASE, done("hh-9")), two)


@settings(max_examples=200, deadline=None, database=None)
@given(item=entries)
def test_entry_survives_the_changelog(item: VisitEntry) -> None:
    stored = encode(item)
    assert decode(stored, VisitEntry) == item
    assert encode(decode(stored, VisitEntry)) == stored


def test_entry_json_by_example() -> None:
    item = entry(3, "peje", date(2024, 2, 29), done("hh-1", "n-2", "imm_den"))
    bits = sum(1 << CONDITIONS.index(name) for name in ("completed", "effective", "imm_den"))
    assert json.loads(encode(item)) == [[3], "peje", "2024-02-29", ["hh-1", "n-2", bits]]
    assert decode(b"[[4],null,null,null]", VisitEntry) == visit_entry((4,), None, None, None)


# --- order does not matter ---------------------------------------------------------------------


@settings(max_examples=25, deadline=None, database=None)
@given(case=histories(), ticks=st.sets(st.integers(0, 40), max_size=4))
def test_any_order_with_repeats_reaches_the_rebuilt_state(
    case: tuple[dict[str, list[VisitEntry]], list[tuple[str, int]]], ticks: set[int]
) -> None:
    visits, arrivals = case
    rollup = country()
    stored: dict[str, VisitEntry] = {}
    sent: dict[Key, Row] = {}
    for step, (visit_id, index) in enumerate(arrivals):
        new = visits[visit_id][index]
        old = stored.get(visit_id)
        if supersedes(new, old):
            replace(rollup, old, new, visit_id)
            stored[visit_id] = new
        if step in ticks:  # stage 2 computes between arrivals now and then
            sent.update(drain(rollup))
    sent.update(drain(rollup))

    final = {visit_id: versions[-1] for visit_id, versions in visits.items()}
    assert stored == final
    rebuilt = country()
    rebuild(rebuilt, final.values())
    assert live_buckets(rollup) == live_buckets(rebuilt)
    expected = drain(rebuilt)
    # Stage 2 marks everything on its first tick so that the empty rows go out too;
    # left out here (it is slow), so a row never sent is the empty row.
    assert {key: sent.get(key, empty_row(key[1])) for key in expected} == expected
    assert sent.keys() <= expected.keys()
    assert all_rows(rebuilt, (*PLACES, ALL_KOSOVO)).items() <= expected.items()
    # Nothing is left to send by either.
    assert drain(rollup) == {}
    assert drain(rebuilt) == {}


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_marked_all_then_applied_in_any_order_sends_what_a_rebuild_sends(seed: int) -> None:
    """As stage 2 runs it: every row marked on the first tick, entries arriving shuffled
    with repeats, ticks in between; the rows last sent are the rebuilt ones, all of them."""
    rng = random.Random(seed)
    visits = {
        f"v-{n}": [
            visit_entry((version,), rng.choice(PLACES), BASE + timedelta(days=rng.randrange(SPAN)),
                  None if rng.random() < 0.2 else done(f"hh-{rng.randrange(4)}",
                                                       f"n-{rng.randrange(3)}", "imm_den"))
            for version in range(1, rng.randint(2, 4))
        ]
        for n in range(10)
    }  # fmt: skip
    arrivals = [(v, i) for v, versions in visits.items() for i in range(len(versions))] * 2
    rng.shuffle(arrivals)
    rollup = country()
    rollup.mark_all()
    stored: dict[str, VisitEntry] = {}
    sent = drain(rollup)
    for step, (visit_id, index) in enumerate(arrivals):
        new = visits[visit_id][index]
        if supersedes(new, stored.get(visit_id)):
            replace(rollup, stored.get(visit_id), new, visit_id)
            stored[visit_id] = new
        if step % 15 == 0:
            sent.update(drain(rollup))
    sent.update(drain(rollup))
    rebuilt = country()
    rebuild(rebuilt, [versions[-1] for versions in visits.values()])
    assert sent == drain(rebuilt)


# --- a scope taken on from its entries ----------------------------------------------------------


def _earliest(since: date | None, *entries: VisitEntry | None) -> date | None:
    days = [e.day for e in entries if e is not None and e.day is not None]
    days += [since] if since is not None else []
    return min(days) if days else None


@settings(max_examples=20, deadline=None, database=None)
@given(case=histories(), cut=st.integers(0, 40))
def test_a_scope_taken_on_from_the_day_its_entries_changed_completes_the_store(
    case: tuple[dict[str, list[VisitEntry]], list[tuple[str, int]]], cut: int
) -> None:
    """One owner computes after the arrivals before `cut`; the next builds every scope
    from the final entries and computes only from the earliest day an entry changed on
    after that (as stage 2 does on taking a partition on). The rows last sent for each
    key are then what a full rebuild sends, and the next owner sent none before that day."""
    visits, arrivals = case
    cut = min(cut, len(arrivals))
    stored: dict[str, VisitEntry] = {}
    since: date | None = None
    for step, (visit_id, index) in enumerate(arrivals):
        if step == cut:
            last_owner = country()
            rebuild(last_owner, stored)
            store = drain(last_owner)
        new, old = visits[visit_id][index], stored.get(visit_id)
        if supersedes(new, old):
            stored[visit_id] = new
            if step >= cut:
                since = _earliest(since, old, new)
    if cut == len(arrivals):
        last_owner = country()
        rebuild(last_owner, stored)
        store = drain(last_owner)

    taken = Rollup()
    for scope in SCOPES:
        taken.build(scope, list(stored.items()), since)
    sent = drain(taken)
    assert all(as_of >= since for *_, as_of in sent) if since else sent == {}
    store.update(sent)
    rebuilt = country()
    rebuild(rebuilt, stored)
    assert store == drain(rebuilt)


# --- changed_values sends what changed, once ----------------------------------------------------


def _seeded() -> Rollup:
    rollup = country()
    rebuild(rollup, [
        entry(1, "prizren", BASE + timedelta(days=2), done("hh-1")),
        entry(1, "peje", BASE + timedelta(days=5), done("hh-2", "n-2", "imm_den", "imm_num")),
        entry(2, "peje", BASE + timedelta(days=9), None),
    ])  # fmt: skip
    return rollup


def test_a_rebuild_sends_every_row_once_then_nothing() -> None:
    rollup = _seeded()
    rows = drain(rollup)
    n_days = (CLOCK - FIRST).days + 1
    assert len(rows) == len(SCOPES) * len(WINDOWS) * len(INDICATORS) * n_days
    assert drain(rollup) == {}
    rollup.mark_all()  # recomputed, but equal to what was sent
    assert drain(rollup) == {}
    # A rebuild forgets what was sent: everything goes out again.
    rebuild(rollup, [])
    assert len(drain(rollup)) == len(rows)


def test_one_new_visit_changes_only_its_scopes_and_windows() -> None:
    rollup = _seeded()
    drain(rollup)
    day = BASE + timedelta(days=10)
    replace(rollup, None, entry(1, "decan", day, done("hh-7")))
    rows = drain(rollup)
    assert {key[0] for key in rows} == {"decan", ALL_KOSOVO}
    for scope, _, window, as_of in rows:
        assert 0 <= (as_of - day).days < window, (scope, window, as_of)
    for scope in ("decan", ALL_KOSOVO):
        for window in WINDOWS:
            completed = sorted(
                as_of for s, name, w, as_of in rows
                if (s, name, w) == (scope, "visits_completed", window)
            )  # fmt: skip
            reach = min(window, (CLOCK - day).days + 1)  # rows stop at the clock day
            assert completed == [day + timedelta(days=n) for n in range(reach)]
    assert drain(rollup) == {}


def test_a_row_sent_again_changes_nothing() -> None:
    rollup = _seeded()
    drain(rollup)
    same = entry(1, "prizren", BASE + timedelta(days=2), done("hh-1"))
    replace(rollup, same, same)
    assert drain(rollup) == {}


def test_moving_a_visit_between_municipalities_on_its_day_leaves_all_alone() -> None:
    rollup = _seeded()
    drain(rollup)
    day = BASE + timedelta(days=2)
    replace(rollup, entry(1, "prizren", day, done("hh-1")), entry(2, "junik", day, done("hh-1")))
    rows = drain(rollup)
    assert {key[0] for key in rows} == {"prizren", "junik"}
    assert rows["prizren", "visits_completed", 7, day] == (0, None, 0.0)
    assert rows["junik", "visits_completed", 7, day] == (1, None, 1.0)


def test_a_change_before_the_first_day_reaches_the_rows_whose_window_covers_it() -> None:
    rollup = _seeded()
    drain(rollup)
    early = FIRST - timedelta(days=3)
    replace(rollup, None, entry(1, "peje", early, done("hh-5")))
    rows = drain(rollup)
    assert (CLOCK - early).days < 30  # so every 30-day row from FIRST to CLOCK changes
    assert {key[0] for key in rows} == {"peje", ALL_KOSOVO}
    assert {(w, as_of) for _, name, w, as_of in rows if name == "visits_completed"} == {
        *((7, FIRST + timedelta(days=n)) for n in range(4)),
        *((30, FIRST + timedelta(days=n)) for n in range((CLOCK - FIRST).days + 1)),
    }


@settings(max_examples=20, deadline=None, database=None)
@given(case=histories(), change=st.tuples(st.sampled_from(PLACES), days, contributions),
       target=st.integers(0, 7))  # fmt: skip
def test_changed_values_sends_exactly_the_rows_that_changed(
    case: tuple[dict[str, list[VisitEntry]], list[tuple[str, int]]],
    change: tuple[str, date, Contribution],
    target: int,
) -> None:
    visits, _ = case
    final = {visit_id: versions[-1] for visit_id, versions in visits.items()}
    rollup = country()
    rebuild(rollup, final)
    drain(rollup)
    assert drain(rollup) == {}

    visit_id = sorted(final)[target % len(final)]
    old = final[visit_id]
    new = visit_entry((old.key[0] + 1,), *change)
    scopes = tuple(sorted({s for s in (old.municipality, new.municipality) if s} | {ALL_KOSOVO}))
    before = all_rows(rollup)
    replace(rollup, old, new, visit_id)
    after = all_rows(rollup)

    rows = drain(rollup)
    assert rows == {key: row for key, row in after.items() if before[key] != row}
    days_touched = [e.day for e in (old, new) if e.contribution is not None and e.day]
    for scope, indicator, window, as_of in rows:
        # a follow-up counts where its at-risk visit's period ends, up to 14 days on
        reach = window + (FOLLOW_UP_DAYS if indicator in COUNTRYWIDE_INDICATORS else 0)
        assert any(0 <= (as_of - d).days < reach for d in days_touched)
        assert indicator in COUNTRYWIDE_INDICATORS or scope in scopes
    assert drain(rollup) == {}


# --- ALL and value_at ----------------------------------------------------------------------------


def test_all_counts_a_household_and_a_nurse_once_across_municipalities() -> None:
    rollup = country()
    rebuild(rollup, [
        entry(1, "prizren", BASE, done("hh-1", "n-1")),
        entry(1, "peje", BASE + timedelta(days=1), done("hh-1", "n-1")),
        entry(1, "peje", BASE + timedelta(days=1), done("hh-2", "n-1")),
    ])  # fmt: skip
    as_of = BASE + timedelta(days=1)

    def row(scope: str, indicator: str) -> tuple[int, int | None, float | None]:
        value = rollup.value_at(scope, indicator, 7, as_of)
        assert value is not None
        return value.numerator, value.denominator, value.value

    assert row("prizren", "households_reached") == (1, None, 1.0)
    assert row("peje", "households_reached") == (2, None, 2.0)
    assert row(ALL_KOSOVO, "households_reached") == (2, None, 2.0)  # not 1 + 2
    assert row(ALL_KOSOVO, "visits_completed") == (3, None, 3.0)
    assert row(ALL_KOSOVO, "visits_per_nurse") == (3, 1, 3.0)  # not 3 / 2

    # The household leaves peje: it is still reached in ALL through prizren.
    replace(
        rollup,
        entry(1, "peje", BASE + timedelta(days=1), done("hh-1", "n-1")),
        entry(2, "peje", BASE + timedelta(days=1), None),
    )
    assert row("peje", "households_reached") == (1, None, 1.0)
    assert row(ALL_KOSOVO, "households_reached") == (2, None, 2.0)
    assert row(ALL_KOSOVO, "visits_completed") == (2, None, 2.0)


@settings(max_examples=60, deadline=None, database=None)
@given(
    case=histories(),
    scope=st.sampled_from((*PLACES, ALL_KOSOVO, "junik")),
    indicator=st.sampled_from(INDICATORS),
    window=st.sampled_from(WINDOWS),
    offset=st.integers(-5, SPAN + 35),
)
def test_value_at_is_the_window_row(
    case: tuple[dict[str, list[VisitEntry]], list[tuple[str, int]]],
    scope: str,
    indicator: str,
    window: int,
    offset: int,
) -> None:
    visits, _ = case
    rollup = country()
    rebuild(rollup, [versions[-1] for versions in visits.values()])
    as_of = BASE + timedelta(days=offset)
    first = as_of - timedelta(days=40)
    assert rollup.follow_ups is not None
    values = chain(
        window_values(rollup.buckets[scope], first, as_of, window),
        rollup.follow_ups.values(scope, first, as_of, window),
    )
    (expected,) = (v for v in values if v.indicator == indicator and v.as_of == as_of)
    assert rollup.value_at(scope, indicator, window, as_of) == expected


def test_value_at_an_unknown_indicator_is_none() -> None:
    assert _seeded().value_at("peje", "no_such_indicator", 30, BASE) is None


def test_a_void_or_an_entry_without_a_day_adds_nothing() -> None:
    rollup = country()
    replace(rollup, None, visit_entry(1, "peje", BASE, None))
    replace(rollup, None, visit_entry(1, None, None, None))
    replace(rollup, None, visit_entry(1, "peje", None, done("hh-1")))
    assert live_buckets(rollup) == {}


@pytest.mark.parametrize("scope", ["peje", ALL_KOSOVO])
def test_a_voided_visit_leaves_no_trace(scope: str) -> None:
    rollup = country()
    rollup.mark_all()
    drain(rollup)
    first = entry(1, "peje", BASE, done("hh-1"))
    replace(rollup, None, first)
    assert drain(rollup)
    replace(rollup, first, entry(2, "peje", BASE, None))
    rows = drain(rollup)
    assert rows[scope, "visits_completed", 30, BASE] == (0, None, 0.0)
    assert live_buckets(rollup) == {}
    value = rollup.value_at(scope, "households_reached", 30, BASE + timedelta(days=3))
    assert value == Value("households_reached", 30, BASE + timedelta(days=3), 0, None, 0.0)
