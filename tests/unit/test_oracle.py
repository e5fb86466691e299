"""The test oracle (`tests/oracle.py`) checked by hand on small examples, so that the
integration tests compare the pipeline with something known to be right."""

from __future__ import annotations

import json
from datetime import date
from typing import Any

import oracle
import pytest

BASE: dict[str, Any] = {
    "schema_version": 1,
    "event_id": "e-base",
    "visit_id": "v-base",
    "revision": 1,
    "op": "upsert",
    "occurred_at": "2026-03-10T09:00:00+01:00",
    "submitted_at": "2026-03-10T10:00:00+01:00",
    "municipality": "prizren",
    "facility_id": "fmc-prizren-1",
    "nurse_id": "n-1",
    "household_id": "hh-1",
    "child_age_months": 3,
    "pregnant": False,
    "visit_type": "routine",
    "outcome": "completed",
    "topics": ["immunisation", "breastfeeding"],
    "risk_flags": [],
    "referrals": [],
}


def event(**changes: Any) -> dict[str, Any]:
    return BASE | changes


def raw(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


def without(name: str, base: dict[str, Any] | None = None) -> dict[str, Any]:
    return {k: v for k, v in (base or BASE).items() if k != name}


VOID: dict[str, Any] = {
    "schema_version": 1,
    "event_id": "e-void",
    "visit_id": "v-base",
    "revision": 2,
    "op": "void",
    "submitted_at": "2026-03-11T10:00:00+01:00",
}


# --- validity ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        BASE,
        event(facility_id=None, child_age_months=None, pregnant=True, visit_type="prenatal"),
        event(child_age_months=0),
        event(child_age_months=71),
        event(topics=["nutrition"] * 16),
        event(nurse_id="n" * 64, household_id="a.B:c_d-9"),
        event(photo="unknown fields are ignored", extra={"nested": [1, 2]}),
        event(occurred_at="2026-03-10T10:10:00+01:00"),  # exactly 10 minutes ahead
        event(occurred_at="2026-03-10T08:00:00Z", submitted_at="2026-03-10T09:00:00.123-02:30"),
        VOID,
        VOID | {"municipality": "peje", "facility_id": None, "child_age_months": 5},
        event(occurred_at="2013-12-31T23:00:00Z"),  # midnight of 1 January 2014 in Kosovo
    ],
)
def test_valid_payloads(value: dict[str, Any]) -> None:
    assert oracle.parse_event(raw(value)) == value


@pytest.mark.parametrize(
    "payload",
    [
        b"{not json",
        b"[1, 2]",
        b"null",
        b"\xff\xfe",
        raw(event(revision="1")),
        raw(event(revision=True)),
        raw(event(revision=0)),
        raw(event(revision=1.0)),
        raw(event(schema_version=2)),
        raw(event(schema_version=True)),
        raw(event(schema_version=1.0)),
        raw(event(schema_version="1")),
        raw(event(pregnant=1)),
        raw(event(pregnant="true")),
        raw(event(child_age_months=72)),
        raw(event(child_age_months=-1)),
        raw(event(child_age_months="7")),
        raw(event(child_age_months=7.0)),
        raw(event(child_age_months=False)),
        raw(event(municipality="Prizren")),
        raw(event(municipality="prishtina")),
        raw(event(op="delete")),
        raw(event(visit_type="home")),
        raw(event(outcome="done")),
        raw(event(topics=["vaccination"])),
        raw(event(topics="immunisation")),
        raw(event(topics=["nutrition"] * 17)),
        raw(event(risk_flags=["immunisation"])),
        raw(event(referrals=[None])),
        raw(event(nurse_id="n 1")),
        raw(event(nurse_id="n" * 65)),
        raw(event(nurse_id="")),
        raw(event(nurse_id="n-1\n")),
        raw(event(household_id=None)),
        raw(event(event_id=7)),
        raw(event(occurred_at="2026-03-10T09:00:00")),  # naive
        raw(event(occurred_at="2026-03-10T09:00:00+0100")),
        raw(event(occurred_at=1773129600)),
        raw(event(occurred_at="2026-03-10")),
        raw(event(occurred_at="2026-02-30T09:00:00Z")),
        raw(event(occurred_at="\uff12\uff10\uff12\uff16-03-10T09:00:00Z")),  # fullwidth digits
        raw(event(occurred_at="2026-03-10 09:00:00Z")),
        raw(event(occurred_at="2026-03-10T10:10:01+01:00")),  # 10 minutes 1 second ahead
        raw(event(occurred_at="1899-12-31T23:59:59Z")),
        raw(event(occurred_at="1900-01-01T00:30:00+01:00")),  # 1899 in UTC
        raw(event(submitted_at="3000-01-01T00:00:00Z")),
        raw(without("facility_id")),
        raw(without("child_age_months")),
        raw(without("referrals")),
        raw(without("op")),
        raw(without("submitted_at", VOID)),
        raw(VOID | {"municipality": "nowhere"}),
        raw(VOID | {"occurred_at": "2026-03-11T12:00:00+01:00"}),  # after submitted_at
        raw(event(photo="x" * 65536)),  # an unknown field, but more than 64 KiB
        b'{"schema_version": NaN}',
        raw(event(occurred_at="2013-12-31T22:59:59Z")),  # 2013 in Kosovo: before the programme
        raw(event(occurred_at="1900-01-01T00:00:00Z")),
        raw(event(submitted_at="2999-12-31T23:59:59Z")),  # far past the time of receipt
    ],
)
def test_invalid_payloads(payload: bytes) -> None:
    assert oracle.parse_event(payload) is None


def test_size_limit_is_64_kib() -> None:
    body = raw(event(photo=""))
    fits = raw(event(photo="x" * (65536 - len(body))))
    assert len(fits) == 65536
    assert oracle.parse_event(fits) is not None
    assert oracle.parse_event(raw(event(photo="x" * (65537 - len(body))))) is None


def test_local_day_is_belgrade() -> None:
    assert oracle.local_day("2026-03-11T23:30:00Z") == date(2026, 3, 12)  # CET
    assert oracle.local_day("2026-06-11T21:59:59Z") == date(2026, 6, 11)  # CEST
    assert oracle.local_day("2026-06-11T22:00:00Z") == date(2026, 6, 12)


# --- the effective visit set ---------------------------------------------------------------


def test_ties_go_to_the_later_instant_then_the_greater_event_id() -> None:
    # As strings "10:30+01:00" sorts after "09:45Z"; as instants it is 09:30Z, earlier.
    early = event(event_id="e-9", submitted_at="2026-03-10T10:30:00+01:00")
    late = event(event_id="e-1", submitted_at="2026-03-10T09:45:00Z", municipality="peje")
    same_a = event(event_id="e-a", submitted_at="2026-03-10T09:45:00Z", outcome="refused")
    same_b = event(event_id="e-b", submitted_at="2026-03-10T10:45:00+01:00", topics=[])
    assert oracle.winners([early, late])["v-base"] is late
    assert oracle.winners([late, early])["v-base"] is late
    assert oracle.winners([same_b, same_a, early])["v-base"] is same_b
    assert oracle.winners([event(revision=3, event_id="e-0"), same_b])["v-base"]["revision"] == 3


def test_a_repeated_event_id_is_ignored() -> None:
    first = raw(event(event_id="e-1"))
    assert len(oracle.valid_events([first, first, raw(event(event_id="e-2"))])) == 2


# --- indicators ---------------------------------------------------------------------------

# Three visits, in arrival order: v1's correction (to peje) before its first submission,
# v2 then its void, an invalid payload, v3 synced late and sent twice.
V1 = event(event_id="e-1", visit_id="v-1", topics=["immunisation", "breastfeeding", "immunisation"])
V1_MOVED = V1 | {"event_id": "e-1b", "revision": 2, "municipality": "peje",
                 "submitted_at": "2026-03-11T08:00:00Z"}  # fmt: skip
V2 = event(event_id="e-2", visit_id="v-2", occurred_at="2026-03-11T23:30:00Z",
           submitted_at="2026-03-12T00:00:00Z", nurse_id="n-2", child_age_months=None,
           pregnant=True, visit_type="prenatal", topics=["maternal_health"])  # fmt: skip
V2_VOID = VOID | {
    "event_id": "e-2v",
    "visit_id": "v-2",
    "submitted_at": "2026-03-13T09:00:00+01:00",
}
V3 = event(event_id="e-3", visit_id="v-3", occurred_at="2026-03-08T10:00:00+01:00",
           submitted_at="2026-03-14T10:00:00+01:00", household_id="hh-2", child_age_months=30,
           outcome="not_home", topics=[])  # fmt: skip
STREAM = [raw(V1_MOVED), raw(V1), raw(V2), raw(V2_VOID), raw(V3 | {"revision": "2"}),
          raw(V3), raw(V3)]  # fmt: skip


def test_three_visits_with_a_correction_a_void_a_duplicate_and_a_late_event() -> None:
    rows = oracle.compute(STREAM)
    # Days run from the late v3 (8 March) to v2's local day (12 March, though voided).
    days = sorted({key[3] for key in rows})
    assert days == [date(2026, 3, d) for d in range(8, 13)]
    assert len(rows) == 39 * 10 * 2 * 5
    assert oracle.clock_day(STREAM) == date(2026, 3, 12)
    d8, d9, d10, d12 = (date(2026, 3, d) for d in (8, 9, 10, 12))
    expected = {
        # v1 moved from prizren to peje; v2 was voided; v3 (not at home) stays in prizren.
        ("prizren", "visits_completed", 7, d12): (0, None, 0.0),
        ("prizren", "households_reached", 30, d12): (0, None, 0.0),
        ("prizren", "missed_visit_rate", 7, d8): (1, 1, 1.0),
        ("prizren", "missed_visit_rate", 7, d12): (1, 1, 1.0),
        ("prizren", "maternal_health_counselling_coverage", 7, d12): (0, 0, None),
        ("prizren", "visits_per_nurse", 30, d12): (0, 0, None),
        ("peje", "visits_completed", 7, d9): (0, None, 0.0),
        ("peje", "visits_completed", 7, d10): (1, None, 1.0),
        ("peje", "households_reached", 7, d10): (1, None, 1.0),
        ("peje", "immunisation_counselling_coverage", 7, d10): (1, 1, 1.0),
        ("peje", "breastfeeding_counselling_coverage", 30, d12): (1, 1, 1.0),
        ("peje", "early_stimulation_coverage", 7, d10): (0, 1, 0.0),
        ("peje", "maternal_health_counselling_coverage", 7, d10): (0, 0, None),
        ("peje", "at_risk_referral_rate", 7, d10): (0, 0, None),
        ("peje", "missed_visit_rate", 7, d10): (0, 1, 0.0),
        ("peje", "visits_per_nurse", 7, d10): (1, 1, 1.0),
        ("ALL", "visits_completed", 7, d12): (1, None, 1.0),
        ("ALL", "households_reached", 7, d12): (1, None, 1.0),
        ("ALL", "missed_visit_rate", 7, d12): (1, 2, 0.5),
        ("ALL", "missed_visit_rate", 30, d9): (1, 1, 1.0),
        ("ALL", "maternal_health_counselling_coverage", 30, d12): (0, 0, None),
        ("gjilan", "visits_completed", 30, d12): (0, None, 0.0),
        ("gjilan", "missed_visit_rate", 30, d12): (0, 0, None),
    }
    assert {key: rows[key] for key in expected} == expected
    # Without the void, v2 would count for prizren on its local day, 12 March.
    unvoided = oracle.compute(STREAM[:3] + STREAM[4:])
    assert unvoided[("prizren", "maternal_health_counselling_coverage", 7, d12)] == (1, 1, 1.0)
    assert unvoided[("prizren", "visits_completed", 7, date(2026, 3, 11))] == (0, None, 0.0)
    # Arrival order does not matter.
    assert oracle.compute(list(reversed(STREAM))) == rows


def test_all_counts_distinct_households_and_nurses_over_the_country() -> None:
    a = event(event_id="e-a", visit_id="v-a", municipality="prizren")
    b = event(event_id="e-b", visit_id="v-b", municipality="peje")
    c = event(event_id="e-c", visit_id="v-c", municipality="peje", risk_flags=["disability"],
              referrals=["specialist_care", "specialist_care"])  # fmt: skip
    rows = oracle.compute([raw(a), raw(b), raw(c)])
    d = date(2026, 3, 10)
    assert rows[("prizren", "households_reached", 7, d)] == (1, None, 1.0)
    assert rows[("peje", "households_reached", 7, d)] == (1, None, 1.0)
    assert rows[("ALL", "households_reached", 7, d)] == (1, None, 1.0)  # not 1 + 1
    assert rows[("ALL", "visits_completed", 7, d)] == (3, None, 3.0)
    assert rows[("peje", "visits_per_nurse", 7, d)] == (2, 1, 2.0)
    assert rows[("ALL", "visits_per_nurse", 7, d)] == (3, 1, 3.0)  # one nurse, not 2
    assert rows[("ALL", "at_risk_referral_rate", 30, d)] == (1, 1, 1.0)


def test_window_edges() -> None:
    # as_of 20 March: the 7-day window is 14..20 March, the 30-day one 19 Feb..20 March.
    visits = [
        event(event_id=f"e-{day}", visit_id=f"v-{day}", occurred_at=f"{day}T12:00:00+01:00",
              submitted_at=f"{day}T12:30:00+01:00")
        for day in ("2026-02-18", "2026-02-19", "2026-03-13", "2026-03-14", "2026-03-20")
    ]  # fmt: skip
    rows = oracle.compute([raw(v) for v in visits])
    d20 = date(2026, 3, 20)
    assert rows[("prizren", "visits_completed", 7, d20)] == (2, None, 2.0)
    assert rows[("prizren", "visits_completed", 30, d20)] == (4, None, 4.0)
    assert rows[("prizren", "visits_completed", 7, date(2026, 3, 13))] == (1, None, 1.0)
    assert rows[("prizren", "visits_completed", 7, date(2026, 2, 24))] == (2, None, 2.0)
    assert rows[("prizren", "visits_completed", 7, date(2026, 2, 25))] == (1, None, 1.0)
    assert min(key[3] for key in rows) == date(2026, 2, 18)
    assert max(key[3] for key in rows) == d20


def test_zero_denominator_gives_none() -> None:
    rows = oracle.compute([raw(event(outcome="refused", topics=[]))])
    d = date(2026, 3, 10)
    assert rows[("prizren", "missed_visit_rate", 7, d)] == (1, 1, 1.0)
    for indicator in (
        "immunisation_counselling_coverage",
        "breastfeeding_counselling_coverage",
        "maternal_health_counselling_coverage",
        "early_stimulation_coverage",
        "at_risk_referral_rate",
        "visits_per_nurse",
    ):
        assert rows[("prizren", indicator, 7, d)] == (0, 0, None)
    assert rows[("prizren", "visits_completed", 7, d)] == (0, None, 0.0)


def test_no_valid_upsert_gives_no_rows() -> None:
    assert oracle.compute([raw(VOID), b"garbage"]) == {}
    assert oracle.clock_day([raw(VOID)]) is None


def test_follow_up_counts_where_the_fourteen_days_end() -> None:
    """hh-1: at risk in prizren on 1 March, seen again in peje on 15 March (14 days: a
    follow-up, from another municipality). hh-2: at risk on 1 March, seen again the same
    day and then on 16 March (15 days): not followed up. Both periods end on 15 March."""

    def visit(n: int, day: str, **changes: Any) -> bytes:
        return raw(event(event_id=f"e-{n}", visit_id=f"v-{n}", occurred_at=f"{day}T09:00:00Z",
                         submitted_at=f"{day}T10:00:00Z", **changes))  # fmt: skip

    at_risk = {"risk_flags": ["developmental_delay"]}
    stream = [
        visit(1, "2026-03-01", **at_risk),
        visit(2, "2026-03-15", municipality="peje"),
        visit(3, "2026-03-01", household_id="hh-2", **at_risk),
        visit(4, "2026-03-01", household_id="hh-2"),
        visit(5, "2026-03-16", household_id="hh-2"),
        visit(6, "2026-03-10", household_id="hh-3", outcome="not_home", **at_risk),
        visit(7, "2026-03-22", household_id="hh-4"),  # the clock day
    ]
    rows = oracle.compute(stream)
    key = "at_risk_follow_up_rate"
    d14, d15, d21, d22 = (date(2026, 3, d) for d in (14, 15, 21, 22))
    assert rows[("prizren", key, 7, d14)] == (0, 0, None)  # no period has ended yet
    assert rows[("prizren", key, 7, d15)] == (1, 2, 0.5)
    assert rows[("peje", key, 7, d15)] == (0, 0, None)  # the follow-up counts nowhere
    assert rows[("ALL", key, 30, d15)] == (1, 2, 0.5)
    assert rows[("prizren", key, 7, d21)] == (1, 2, 0.5)  # 15..21 March
    assert rows[("prizren", key, 7, d22)] == (0, 0, None)  # 16..22 March
    # Voiding the follow-up takes it back, however late.
    void = raw(VOID | {"event_id": "e-2v", "visit_id": "v-2",
                       "submitted_at": "2026-04-01T09:00:00Z"})  # fmt: skip
    assert oracle.compute([*stream, void])[("prizren", key, 7, d15)] == (0, 2, 0.0)
