"""The indicators of SPEC §3: what one visit contributes (`contribution`), how a day
sums contributions and takes them back (`DayBucket`), and the rolling windows
(`window_values`, `scope_values`) checked against a naive recomputation."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streams import indicators
from streams.indicators import DayBucket, Value, contribution, scope_values, window_values
from vizita.contract.codes import OUTCOMES, REFERRALS, RISK_FLAGS, TOPICS, VISIT_TYPES
from vizita.contract.events import UpsertEvent
from vizita.contract.indicators import SCOPE_INDICATORS, WINDOWS
from vizita.contract.messages import CONDITION_BIT, Contribution, decode, encode

BASE = date(2024, 3, 1)
SPAN = 40  # contributions fall on BASE .. BASE + SPAN - 1

# Each ratio of SPEC §3 as (numerator flag, denominator flag), written out again here
# rather than imported, so that a wrong pairing in the module shows up.
RATIO_FLAGS = {
    "immunisation_counselling_coverage": ("imm_num", "imm_den"),
    "breastfeeding_counselling_coverage": ("bf_num", "bf_den"),
    "maternal_health_counselling_coverage": ("mh_num", "mh_den"),
    "early_stimulation_coverage": ("es_num", "es_den"),
    "at_risk_referral_rate": ("ref_num", "ref_den"),
    "missed_visit_rate": ("missed", "effective"),
}
COMPLETED_ONLY = {
    "completed", "imm_num", "imm_den", "bf_num", "bf_den", "mh_num", "mh_den",
    "es_num", "es_den", "ref_num", "ref_den",
}  # fmt: skip


def visit(**fields: Any) -> UpsertEvent:
    values: dict[str, Any] = {
        "schema_version": 1,
        "event_id": "e-1",
        "visit_id": "v-1",
        "revision": 1,
        "op": "upsert",
        "submitted_at": datetime(2024, 3, 2, 9, 0, tzinfo=UTC),
        "occurred_at": datetime(2024, 3, 2, 8, 0, tzinfo=UTC),
        "municipality": "prizren",
        "facility_id": None,
        "nurse_id": "nurse-1",
        "household_id": "hh-1",
        "child_age_months": None,
        "pregnant": False,
        "visit_type": "routine",
        "outcome": "completed",
        "topics": [],
        "risk_flags": [],
        "referrals": [],
    }
    values.update(fields)
    return UpsertEvent(**values)


def flags(**fields: Any) -> frozenset[str]:
    return contribution(visit(**fields)).conditions


# --- contribution(): one rule of SPEC §3 at a time ------------------------------------------


def test_a_completed_visit_carries_its_household_and_nurse() -> None:
    item = contribution(visit(household_id="hh-9", nurse_id="n-3"))
    assert item.household_id == "hh-9"
    assert item.nurse_id == "n-3"
    assert item.conditions == {"effective", "completed"}


@pytest.mark.parametrize(("age", "eligible"), [(0, True), (1, True), (23, True), (24, False),
                                               (71, False), (None, False)])  # fmt: skip
def test_immunisation_counts_children_0_to_23_months(age: int | None, eligible: bool) -> None:
    with_topic = flags(child_age_months=age, topics=["immunisation"])
    without = flags(child_age_months=age, topics=["nutrition"])
    assert ("imm_den" in with_topic) is eligible
    assert ("imm_num" in with_topic) is eligible
    assert ("imm_den" in without) is eligible
    assert "imm_num" not in without


@pytest.mark.parametrize(("age", "eligible"), [(0, True), (5, True), (6, False), (23, False),
                                               (None, False)])  # fmt: skip
def test_breastfeeding_counts_children_0_to_5_months(age: int | None, eligible: bool) -> None:
    with_topic = flags(child_age_months=age, topics=["breastfeeding"])
    without = flags(child_age_months=age, topics=["immunisation"])
    assert ("bf_den" in with_topic) is eligible
    assert ("bf_num" in with_topic) is eligible
    assert ("bf_den" in without) is eligible
    assert "bf_num" not in without


@pytest.mark.parametrize("age", [0, 5, 6, 23, 24, 71])
def test_early_stimulation_counts_any_child(age: int) -> None:
    assert {"es_den", "es_num"} <= flags(child_age_months=age, topics=["early_stimulation"])
    assert "es_num" not in flags(child_age_months=age, topics=["nutrition"])
    assert "es_den" in flags(child_age_months=age, topics=["nutrition"])


def test_no_child_is_in_no_child_denominator() -> None:
    got = flags(
        child_age_months=None,
        topics=["immunisation", "breastfeeding", "early_stimulation"],
    )
    assert got.isdisjoint({"imm_den", "imm_num", "bf_den", "bf_num", "es_den", "es_num"})


@pytest.mark.parametrize(
    ("pregnant", "visit_type", "eligible"),
    [
        (True, "routine", True),
        (True, "follow_up", True),
        (True, "prenatal", True),
        (False, "prenatal", True),
        (False, "newborn", True),
        (False, "routine", False),
        (False, "follow_up", False),
    ],
)
def test_maternal_health_counts_pregnant_or_prenatal_or_newborn(
    pregnant: bool, visit_type: str, eligible: bool
) -> None:
    with_topic = flags(pregnant=pregnant, visit_type=visit_type, topics=["maternal_health"])
    without = flags(pregnant=pregnant, visit_type=visit_type, topics=["nutrition"])
    assert ("mh_den" in with_topic) is eligible
    assert ("mh_num" in with_topic) is eligible
    assert ("mh_den" in without) is eligible
    assert "mh_num" not in without


@pytest.mark.parametrize(
    ("risk_flags", "referrals", "expected"),
    [
        ([], [], set()),
        ([], ["social_services"], set()),
        (["violence_risk"], [], {"ref_den"}),
        (["disability"], ["specialist_care"], {"ref_den", "ref_num"}),
        (list(RISK_FLAGS), list(REFERRALS), {"ref_den", "ref_num"}),
    ],
)
def test_at_risk_referral_needs_a_risk_flag_and_a_referral(
    risk_flags: list[str], referrals: list[str], expected: set[str]
) -> None:
    got = flags(risk_flags=risk_flags, referrals=referrals)
    assert got & {"ref_den", "ref_num"} == expected


@pytest.mark.parametrize("outcome", ["not_home", "refused"])
def test_a_missed_visit_counts_only_as_missed(outcome: str) -> None:
    # Everything that would qualify a completed visit for every ratio.
    qualifying = {
        "child_age_months": 3,
        "pregnant": True,
        "visit_type": "newborn",
        "topics": list(TOPICS),
        "risk_flags": ["developmental_delay"],
        "referrals": ["social_services"],
    }
    assert flags(outcome=outcome, **qualifying) == {"effective", "missed"}
    assert flags(outcome="completed", **qualifying) == {"effective", *COMPLETED_ONLY}


def test_a_missed_visit_adds_no_household_or_nurse() -> None:
    bucket = DayBucket()
    bucket.add(contribution(visit(outcome="refused", household_id="hh-2", nurse_id="n-2")))
    assert bucket.counts == Counter({"effective": 1, "missed": 1})
    assert not bucket.households
    assert not bucket.nurses


events = st.builds(
    visit,
    household_id=st.sampled_from(["hh-1", "hh-2", "hh-3"]),
    nurse_id=st.sampled_from(["n-1", "n-2"]),
    child_age_months=st.none() | st.integers(0, 71),
    pregnant=st.booleans(),
    visit_type=st.sampled_from(VISIT_TYPES),
    outcome=st.sampled_from(OUTCOMES),
    topics=st.lists(st.sampled_from(TOPICS), max_size=7),
    risk_flags=st.lists(st.sampled_from(RISK_FLAGS), max_size=3),
    referrals=st.lists(st.sampled_from(REFERRALS), max_size=4),
)


def expected_flags(event: UpsertEvent) -> set[str]:
    """SPEC §3's table, read row by row."""
    if event.outcome != "completed":
        return {"effective", "missed"}
    out = {"effective", "completed"}
    age, topics = event.child_age_months, set(event.topics)
    rows = {
        "imm": (age is not None and 0 <= age <= 23, "immunisation" in topics),
        "bf": (age is not None and 0 <= age <= 5, "breastfeeding" in topics),
        "mh": (
            event.pregnant or event.visit_type in {"prenatal", "newborn"},
            "maternal_health" in topics,
        ),
        "es": (age is not None, "early_stimulation" in topics),
        "ref": (len(event.risk_flags) > 0, len(event.referrals) > 0),
    }
    for prefix, (in_denominator, extra) in rows.items():
        if in_denominator:
            out.add(f"{prefix}_den")
            if extra:
                out.add(f"{prefix}_num")
    return out


@settings(max_examples=300, deadline=None, database=None)
@given(event=events)
def test_contribution_follows_the_table(event: UpsertEvent) -> None:
    item = contribution(event)
    assert set(item.conditions) == expected_flags(event)
    assert (item.household_id, item.nurse_id) == (event.household_id, event.nurse_id)
    assert decode(encode(item), Contribution) == item


# --- DayBucket -------------------------------------------------------------------------------


def _distinct(items: list[Contribution]) -> tuple[set[str], set[str]]:
    done = [i for i in items if "completed" in i.conditions]
    return {i.household_id for i in done}, {i.nurse_id for i in done}


@settings(max_examples=200, deadline=None, database=None)
@given(items=st.lists(events.map(contribution), max_size=12), data=st.data())
def test_day_bucket_takes_back_what_it_added(items: list[Contribution], data: Any) -> None:
    bucket = DayBucket()
    for item in items:
        bucket.add(item)
    households, nurses = _distinct(items)
    assert set(bucket.households) == households
    assert set(bucket.nurses) == nurses
    assert bucket.counts == Counter(flag for item in items for flag in item.conditions)

    # Take back some, in any order: the bucket is the one built from what is left.
    order = data.draw(st.permutations(range(len(items))))
    cut = data.draw(st.integers(0, len(items)))
    removed, kept = order[:cut], order[cut:]
    for index in removed:
        bucket.add(items[index], -1)
    rest = [items[index] for index in kept]
    fresh = DayBucket()
    for item in rest:
        fresh.add(item)
    assert bucket == fresh
    households, nurses = _distinct(rest)
    assert set(bucket.households) == households
    assert set(bucket.nurses) == nurses
    assert all(n > 0 for n in (*bucket.counts.values(), *bucket.households.values()))
    assert all(n > 0 for n in bucket.nurses.values())

    for index in kept:
        bucket.add(items[index], -1)
    assert bucket.is_empty()
    assert bucket == DayBucket()


def test_day_bucket_counts_a_household_once_until_its_last_visit_leaves() -> None:
    first = Contribution.of("hh-1", "n-1", frozenset({"effective", "completed"}))
    second = Contribution.of("hh-1", "n-2", frozenset({"effective", "completed"}))
    bucket = DayBucket()
    bucket.add(first)
    bucket.add(second)
    assert (len(bucket.households), len(bucket.nurses)) == (1, 2)
    bucket.add(first, -1)
    assert (len(bucket.households), len(bucket.nurses)) == (1, 1)
    assert bucket.nurses == Counter({"n-2": 1})
    bucket.add(second, -1)
    assert bucket.is_empty()
    assert (len(bucket.households), len(bucket.nurses)) == (0, 0)


# --- window_values against a naive recomputation ---------------------------------------------


def naive(
    by_day: dict[date, list[Contribution]], first: date, last: date, window: int
) -> list[Value]:
    """Every row for every as_of, summing the days D-W+1 .. D of the raw contributions."""
    rows = []
    day = first
    while day <= last:
        items = [
            item
            for offset in range(window)
            for item in by_day.get(day - timedelta(days=offset), [])
        ]
        counted = Counter(flag for item in items for flag in item.conditions)
        done = [item for item in items if "completed" in item.conditions]
        households = len({item.household_id for item in done})
        nurses = len({item.nurse_id for item in done})
        rows.append(Value("visits_completed", window, day, len(done), None, float(len(done))))
        rows.append(Value("households_reached", window, day, households, None, float(households)))
        for name, (num, den) in RATIO_FLAGS.items():
            n, d = counted[num], counted[den]
            rows.append(Value(name, window, day, n, d, None if d == 0 else n / d))
        rows.append(
            Value("visits_per_nurse", window, day, len(done), nurses,
                  None if nurses == 0 else len(done) / nurses)
        )  # fmt: skip
        day += timedelta(days=1)
    return rows


def buckets_of(by_day: dict[date, list[Contribution]]) -> dict[date, DayBucket]:
    buckets: dict[date, DayBucket] = {}
    for day, items in by_day.items():
        bucket = buckets.setdefault(day, DayBucket())
        for item in items:
            bucket.add(item)
    return buckets


contributions = st.builds(
    Contribution.of,
    st.sampled_from(["hh-1", "hh-2", "hh-3", "hh-4"]),
    st.sampled_from(["n-1", "n-2", "n-3"]),
    st.frozensets(
        st.sampled_from(sorted({f for pair in RATIO_FLAGS.values() for f in pair} | {"completed"}))
    ).map(lambda fs: fs | {"effective"}),
) | events.map(contribution)
days = st.integers(0, SPAN - 1).map(lambda n: BASE + timedelta(days=n))
placed = st.lists(st.tuples(days, contributions), max_size=40)


def _by_day(pairs: list[tuple[date, Contribution]]) -> dict[date, list[Contribution]]:
    out: dict[date, list[Contribution]] = {}
    for day, item in pairs:
        out.setdefault(day, []).append(item)
    return out


@settings(max_examples=150, deadline=None, database=None)
@given(
    pairs=placed,
    window=st.sampled_from(WINDOWS),
    start=st.integers(-10, SPAN + 35),
    length=st.integers(0, 50),
)
def test_window_values_match_a_naive_recomputation(
    pairs: list[tuple[date, Contribution]], window: int, start: int, length: int
) -> None:
    by_day = _by_day(pairs)
    first = BASE + timedelta(days=start)
    last = first + timedelta(days=length)
    got = list(window_values(buckets_of(by_day), first, last, window))
    assert got == naive(by_day, first, last, window)


@settings(max_examples=100, deadline=None, database=None)
@given(
    pairs=placed,
    window=st.sampled_from(WINDOWS),
    start=st.integers(-10, SPAN + 35),
    length=st.integers(0, 12),
)
def test_a_union_a_day_and_a_sliding_window_agree(
    pairs: list[tuple[date, Contribution]], window: int, start: int, length: int
) -> None:
    """window_values picks one of the two by the range's length; each is exact alone."""
    buckets = buckets_of(_by_day(pairs))
    first = BASE + timedelta(days=start)
    last = first + timedelta(days=length)
    unioned = list(indicators._unioned_values(buckets, first, last, window))
    assert unioned == list(indicators._slid_values(buckets, first, last, window))
    assert len(unioned) == len(SCOPE_INDICATORS) * (length + 1)


@settings(max_examples=60, deadline=None, database=None)
@given(pairs=placed, start=st.integers(-5, SPAN), length=st.integers(0, 20))
def test_scope_values_is_each_window_in_turn(
    pairs: list[tuple[date, Contribution]], start: int, length: int
) -> None:
    by_day = _by_day(pairs)
    buckets = buckets_of(by_day)
    first = BASE + timedelta(days=start)
    last = first + timedelta(days=length)
    got = list(scope_values(buckets, first, last, WINDOWS))
    assert got == [row for w in WINDOWS for row in naive(by_day, first, last, w)]
    for w in WINDOWS:
        rows = [row for row in got if row.window_days == w]
        assert len(rows) == len(SCOPE_INDICATORS) * (length + 1)
        for day_rows in (
            rows[i : i + len(SCOPE_INDICATORS)] for i in range(0, len(rows), len(SCOPE_INDICATORS))
        ):
            assert sorted(r.indicator for r in day_rows) == sorted(SCOPE_INDICATORS)
            assert len({r.as_of for r in day_rows}) == 1


def test_window_values_does_not_change_the_buckets() -> None:
    item = contribution(visit())
    buckets = {BASE: DayBucket()}
    buckets[BASE].add(item)
    before = {day: DayBucket(Counter(b.counts), Counter(b.households), Counter(b.nurses))
              for day, b in buckets.items()}  # fmt: skip
    list(window_values(buckets, BASE - timedelta(days=3), BASE + timedelta(days=40), 30))
    assert buckets == before


def test_a_ratio_with_no_denominator_has_no_value_and_counts_have_no_denominator() -> None:
    rows = {r.indicator: r for r in window_values({}, BASE, BASE, 7)}
    assert set(rows) == set(SCOPE_INDICATORS)
    for name in RATIO_FLAGS:
        assert (rows[name].numerator, rows[name].denominator, rows[name].value) == (0, 0, None)
    assert (rows["visits_per_nurse"].denominator, rows["visits_per_nurse"].value) == (0, None)
    for name in ("visits_completed", "households_reached"):
        assert (rows[name].numerator, rows[name].denominator, rows[name].value) == (0, None, 0.0)


def test_window_edges_by_example() -> None:
    """Two visits 7 days apart: the 7-day window holds one of them at a time, the 30-day
    window both; a visit leaves the window on day D + W."""
    one = contribution(visit(household_id="hh-1", nurse_id="n-1"))
    two = contribution(visit(household_id="hh-1", nurse_id="n-2", outcome="not_home"))
    three = contribution(visit(household_id="hh-2", nurse_id="n-1"))
    by_day = {BASE: [one], BASE + timedelta(days=7): [two, three]}
    buckets = buckets_of(by_day)

    def row(window: int, day: int, indicator: str) -> Value:
        as_of = BASE + timedelta(days=day)
        (found,) = (r for r in window_values(buckets, as_of, as_of, window)
                    if r.indicator == indicator)  # fmt: skip
        return found

    assert row(7, 6, "visits_completed").numerator == 1
    assert row(7, 7, "visits_completed").numerator == 1  # one has left, three has come
    assert row(7, 7, "households_reached").numerator == 1
    assert row(30, 7, "households_reached").numerator == 2
    assert row(30, 7, "visits_completed").numerator == 2
    missed = row(30, 7, "missed_visit_rate")
    assert (missed.numerator, missed.denominator, missed.value) == (1, 3, 1 / 3)
    per_nurse = row(30, 7, "visits_per_nurse")
    assert (per_nurse.numerator, per_nurse.denominator, per_nurse.value) == (2, 1, 2.0)
    assert row(30, 29, "visits_completed").numerator == 2
    assert row(30, 30, "visits_completed").numerator == 1
    assert row(30, 37, "visits_completed").numerator == 0
    assert row(7, -1, "visits_completed").numerator == 0


def test_a_day_bucket_keeps_one_object_per_id() -> None:
    # Decoded messages bring a new string per id each time; the rollup holds ids per
    # visit, scope and day, so the buckets keep the one object of each.
    ids = ["hh-" + "0a1b2c3d4e5f", "n-" + "istog-13"]
    first = Contribution(ids[0], ids[1], 1 << CONDITION_BIT["completed"])
    again = Contribution("".join(["hh-0a1b", "2c3d4e5f"]), "".join(["n-ist", "og-13"]), first.flags)
    assert again.household_id is not first.household_id  # as decoding makes them
    one, other = DayBucket(), DayBucket()
    one.add(first)
    other.add(again)
    [household], [same] = one.households, other.households
    assert household is same
    [nurse], [also] = one.nurses, other.nurses
    assert nurse is also
