"""sinks/periods.py against the real pipeline: a messy stream replayed through
`vizita.app.replay.replay` (Kafka broker, both stages, sink, chdb), then the SQL over
`visits FINAL` compared with every stored `indicator_values` row, with the oracle, and
for calendar periods with plain Python over the oracle's effective visits."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from datetime import date
from typing import Any

import oracle
import pytest
from workers import replay_settings

from producers.simulator import SimulationConfig, simulate, write_jsonl
from sinks.periods import Period, month, period_values, quarter, rolling_window_values
from sinks.schema import INDICATOR_VALUES, VISITS
from sinks.store import Store, open_store
from vizita.app.broker import LocalBroker
from vizita.app.replay import replay

# Four months across a year's end, a quarter's end and the change to summer time.
MESSY = SimulationConfig(
    seed=20261201, start=date(2025, 12, 10), days=120, visits_per_day=40,
    late_share=0.3, duplicate_share=0.08, correction_share=0.12, void_share=0.04,
    invalid_share=0.03,
)  # fmt: skip
TOLERANCE = 1e-9

Row = tuple[int, int | None, float | None]


def _event(event_id: str, visit_id: str, occurred: str, municipality: str, **more: Any) -> bytes:
    event = {
        "schema_version": 1, "event_id": event_id, "visit_id": visit_id, "revision": 1,
        "op": "upsert", "occurred_at": occurred, "submitted_at": occurred,
        "municipality": municipality, "facility_id": None, "nurse_id": "n-edge",
        "household_id": "hh-edge", "child_age_months": 4, "pregnant": False,
        "visit_type": "routine", "outcome": "completed",
        "topics": ["immunisation", "breastfeeding"], "risk_flags": [], "referrals": [],
    } | more  # fmt: skip
    return json.dumps(event, separators=(",", ":")).encode()


def _void(event_id: str, visit_id: str, submitted: str) -> bytes:
    void = {"schema_version": 1, "event_id": event_id, "visit_id": visit_id, "revision": 2,
            "op": "void", "submitted_at": submitted}  # fmt: skip
    return json.dumps(void, separators=(",", ":")).encode()


# Visits moved over a month's and a quarter's end (their old rows stay in the old
# month's partition, which only FINAL replaces), one household in two municipalities,
# and a voided visit.
EDGES = [
    _event("m1", "moved-month", "2026-01-31T15:00:00+01:00", "junik"),
    _event("m2", "moved-month", "2026-02-01T09:00:00+01:00", "junik", revision=2,
           submitted_at="2026-02-02T09:00:00+01:00"),
    _event("c1", "cross", "2026-02-03T10:00:00+01:00", "mamushe"),
    _event("q1", "moved-quarter", "2026-03-31T12:00:00+02:00", "partesh"),
    _event("q2", "moved-quarter", "2026-04-01T12:00:00+02:00", "partesh", revision=2,
           submitted_at="2026-04-02T12:00:00+02:00"),
    _event("v1", "voided", "2026-02-10T10:00:00+01:00", "partesh", household_id="hh-void"),
    _void("v2", "voided", "2026-02-11T10:00:00+01:00"),
]  # fmt: skip
MOVES = (EDGES[1], EDGES[4])


@pytest.fixture(scope="module")
def lines() -> list[bytes]:
    return simulate(MESSY) + EDGES


@pytest.fixture(scope="module")
def expected(lines: list[bytes]) -> dict[tuple[str, str, int, date], Row]:
    return oracle.compute(lines)


@pytest.fixture(scope="module")
def stored(
    kafka: LocalBroker, chdb_url: str, tmp_path_factory: pytest.TempPathFactory,
    lines: list[bytes],
) -> Iterator[Store]:  # fmt: skip
    """The stream replayed once through the pipeline, shared by the tests here."""
    tmp = tmp_path_factory.mktemp("periods")
    with replay_settings(kafka, chdb_url, tmp, "per") as (name, settings):
        store = open_store(chdb_url, name)
        # The corrections that move a visit to another month come in a replay of their
        # own: a batch holding both revisions would store the last one only.
        moves = [line for line in lines if line in MOVES]
        write_jsonl([line for line in lines if line not in MOVES], tmp / "stream.jsonl")
        write_jsonl(moves, tmp / "moves.jsonl")
        replay(settings, store, tmp / "stream.jsonl")
        replay(settings, store, tmp / "moves.jsonl")
    yield store
    store.execute(f"DROP DATABASE IF EXISTS {name}")
    store.close()


def _same(want: Row, got: Row) -> bool:
    if want[:2] != got[:2]:
        return False
    if want[2] is None or got[2] is None:
        return want[2] is None and got[2] is None
    return math.isclose(want[2], got[2], rel_tol=0.0, abs_tol=TOLERANCE)


def _differences(want: dict[Any, Row], got: dict[Any, Row]) -> list[str]:
    problems = [f"{key}: missing" for key in sorted(want.keys() - got.keys())]
    problems += [f"{key}: unexpected" for key in sorted(got.keys() - want.keys())]
    problems += [
        f"{key}: expected {want[key]}, got {got[key]}"
        for key in sorted(want.keys() & got.keys())
        if not _same(want[key], got[key])
    ]
    return problems


def _by_key(rows: list[dict[str, Any]], *keys: str) -> dict[Any, Row]:
    table: dict[Any, Row] = {}
    for r in rows:
        key = (r["municipality"], r["indicator"], *(r[k] for k in keys))
        assert key not in table, f"two rows for {key}"
        table[key] = (r["numerator"], r["denominator"], r["value"])
    return table


def test_old_rows_of_moved_visits_stay_in_their_month(stored: Store) -> None:
    # The trap the SQL must avoid: without FINAL a moved visit would count twice.
    rows = stored.query(
        f"SELECT local_day FROM {stored.table(VISITS)} "
        "WHERE visit_id IN ('moved-month', 'moved-quarter') ORDER BY local_day"
    )
    assert [r["local_day"] for r in rows] == [
        date(2026, 1, 31), date(2026, 2, 1), date(2026, 3, 31), date(2026, 4, 1),
    ]  # fmt: skip


def test_rolling_windows_equal_the_stream_and_the_oracle(
    stored: Store, expected: dict[tuple[str, str, int, date], Row]
) -> None:
    days = sorted({key[3] for key in expected})
    assert len(expected) == 39 * 10 * 2 * ((days[-1] - days[0]).days + 1)
    sql = rolling_window_values(stored.database, days[0], days[-1])
    computed = _by_key(stored.query(sql), "window_days", "as_of")
    stream = _by_key(
        stored.query(
            "SELECT municipality, indicator, window_days, as_of, numerator, denominator, "
            f"value FROM {stored.table(INDICATOR_VALUES)} FINAL"
        ),
        "window_days", "as_of",
    )  # fmt: skip
    for want, got in ((expected, computed), (stream, computed)):
        problems = _differences(want, got)
        assert not problems, f"{len(problems)} differences:\n" + "\n".join(problems[:25])


def _python_period(visits: list[oracle.Visit], period: Period) -> dict[Any, Row]:
    """SPEC §3 over one period's days, in plain Python (the oracle's own arithmetic)."""
    areas: dict[str, list[oracle.Visit]] = {code: [] for code in oracle.MUNICIPALITIES}
    areas[oracle.ALL] = []
    for visit in visits:
        if period.first <= visit.day <= period.last:
            areas[visit.municipality].append(visit)
            areas[oracle.ALL].append(visit)
    rows = {
        (area, indicator, period.name, period.first, period.last): row
        for area, in_area in areas.items()
        for indicator, row in oracle.indicator_rows(in_area).items()
    }
    follow_ups = oracle.follow_up_rows(oracle.follow_up_facts(visits), period.first, period.last)
    for area, row in follow_ups.items():
        rows[(area, "at_risk_follow_up_rate", period.name, period.first, period.last)] = row
    return rows


def test_calendar_periods_equal_python_over_the_same_days(
    stored: Store, lines: list[bytes]
) -> None:
    events = oracle.valid_events(lines)
    clock = oracle.clock_day(lines)
    assert clock == date(2026, 4, 8)
    periods = [month(2025, 12), month(2026, 2), quarter(2026, 1), quarter(2026, 2, clock)]
    assert periods[-1] == Period("2026Q2", date(2026, 4, 1), clock)  # quarter to date
    visits = oracle.effective_visits(events)
    want: dict[Any, Row] = {}
    for period in periods:
        want |= _python_period(visits, period)
    rows = stored.query(period_values(stored.database, periods))
    got = _by_key(rows, "period", "first_day", "last_day")
    problems = _differences(want, got)
    assert not problems, f"{len(problems)} differences:\n" + "\n".join(problems[:25])
    february = {key[0]: row[0] for key, row in got.items()
                if key[1] == "households_reached" and key[2] == "2026-02"}  # fmt: skip
    # A household seen in two municipalities counts once for the country.
    assert february["ALL"] < sum(n for code, n in february.items() if code != "ALL")
