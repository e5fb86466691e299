"""Every stored indicator row against the independent oracle (`tests/oracle.py`), and the
active alerts against the targets (SPEC §3-§5).

Messy generated streams (late, duplicate, corrected, voided and invalid submissions) go
through the real pipeline (`vizita.replay.replay`: the Kafka broker, the Faust stage,
the sink, chdb); the oracle computes the same table from the raw lines alone."""

from __future__ import annotations

import json
import math
import random
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import date
from pathlib import Path
from typing import Any

import oracle
import pytest
import yaml
from workers import replay_settings

from producers.simulator import SimulationConfig, simulate, write_jsonl
from sinks.schema import ACTIVE_ALERTS, INDICATOR_VALUES
from sinks.store import Store, open_store
from vizita.app.broker import LocalBroker
from vizita.app.replay import replay
from vizita.contract.settings import Settings

MESSY = SimulationConfig(
    seed=20261124, start=date(2026, 1, 20), days=45, visits_per_day=60,
    late_share=0.3, duplicate_share=0.08, correction_share=0.12, void_share=0.04,
    invalid_share=0.03,
)  # fmt: skip
TARGETS_FILE = Path(__file__).parents[2] / "config" / "targets.yaml"
TOLERANCE = 1e-9

Key = tuple[str, str, int, date]
Row = tuple[int, int | None, float | None]


@pytest.fixture(scope="module")
def lines() -> list[bytes]:
    return simulate(MESSY)


@pytest.fixture(scope="module")
def expected(lines: list[bytes]) -> dict[Key, Row]:
    return oracle.compute(lines)


def _replay(settings: Settings, ordered: list[bytes], path: Path) -> Store:
    write_jsonl(ordered, path)
    store = open_store(settings.store_url.get_secret_value(), settings.database)
    replay(settings, store, path)
    return store


def _drop(store: Store, database: str) -> None:
    store.execute(f"DROP DATABASE IF EXISTS {database}")
    store.close()


@pytest.fixture(scope="module")
def arrival_store(
    kafka: LocalBroker,
    chdb_url: str,
    tmp_path_factory: pytest.TempPathFactory,
    lines: list[bytes],
) -> Iterator[Store]:
    """The stream replayed once in arrival order, shared by the tests that read it."""
    tmp = tmp_path_factory.mktemp("indicators")
    with replay_settings(kafka, chdb_url, tmp, "ind") as (name, settings):
        store = _replay(settings, lines, tmp / "arrival.jsonl")
    yield store
    _drop(store, name)


def stored_indicators(store: Store) -> tuple[dict[Key, Row], Counter[Key]]:
    """(key -> row, how many rows each key has) from `indicator_values` FINAL."""
    rows = store.query(
        "SELECT municipality, indicator, window_days, as_of, numerator, denominator, value "
        f"FROM {store.table(INDICATOR_VALUES)} FINAL"
    )
    table: dict[Key, Row] = {}
    counts: Counter[Key] = Counter()
    for r in rows:
        key = (r["municipality"], r["indicator"], int(r["window_days"]), r["as_of"])
        counts[key] += 1
        table[key] = (r["numerator"], r["denominator"], r["value"])
    return table, counts


def _same(want: Row, got: Row) -> bool:
    if want[:2] != got[:2]:
        return False
    if want[2] is None or got[2] is None:
        return want[2] is None and got[2] is None
    return math.isclose(want[2], got[2], rel_tol=0.0, abs_tol=TOLERANCE)


def assert_matches_oracle(store: Store, expected: dict[Key, Row]) -> None:
    table, counts = stored_indicators(store)
    days = {key[3] for key in expected}
    assert len(days) == (max(days) - min(days)).days + 1
    assert len(expected) == 39 * 10 * 2 * len(days)
    problems = [f"{key}: {n} rows" for key, n in sorted(counts.items()) if n != 1]
    problems += [
        f"{key}: expected {want}, stored {table.get(key, 'nothing')}"
        for key, want in sorted(expected.items())
        if key not in table or not _same(want, table[key])
    ]
    problems += [f"{key}: stored {table[key]}, not expected" for key in table.keys() - expected]
    assert not problems, f"{len(problems)} differences, first ones:\n" + "\n".join(problems[:25])
    assert sum(counts.values()) == len(expected)


def test_messy_stream_indicators_match_the_oracle(
    arrival_store: Store, expected: dict[Key, Row]
) -> None:
    assert_matches_oracle(arrival_store, expected)


def test_shuffled_stream_indicators_match_the_oracle(
    make_settings: Callable[..., Settings],
    tmp_path: Path,
    lines: list[bytes],
    expected: dict[Key, Row],
) -> None:
    shuffled = random.Random(11).sample(lines, len(lines))
    assert shuffled != lines
    assert oracle.compute(shuffled) == expected  # the oracle itself ignores the order
    name = f"shuf_{uuid.uuid4().hex[:10]}"
    settings = make_settings(topic_prefix=f"{name}.", app_id=name, database=name)
    store = _replay(settings, shuffled, tmp_path / "shuffled.jsonl")
    try:
        assert_matches_oracle(store, expected)
    finally:
        _drop(store, name)


# --- hand-made edge cases ----------------------------------------------------------------

BASE: dict[str, Any] = {
    "schema_version": 1, "event_id": "e", "visit_id": "v", "revision": 1, "op": "upsert",
    "occurred_at": "2026-03-10T09:00:00+01:00", "submitted_at": "2026-03-10T10:00:00+01:00",
    "municipality": "prizren", "facility_id": "f-1", "nurse_id": "n-1", "household_id": "hh-1",
    "child_age_months": 3, "pregnant": False, "visit_type": "routine", "outcome": "completed",
    "topics": ["immunisation", "breastfeeding"], "risk_flags": [], "referrals": [],
}  # fmt: skip


def _up(event_id: str, visit_id: str, **changes: Any) -> dict[str, Any]:
    return BASE | {"event_id": event_id, "visit_id": visit_id} | changes


def _void(event_id: str, visit_id: str, revision: int, submitted_at: str) -> dict[str, Any]:
    return {"schema_version": 1, "event_id": event_id, "visit_id": visit_id,
            "revision": revision, "op": "void", "submitted_at": submitted_at}  # fmt: skip


def _at(day: str, municipality: str, **changes: Any) -> dict[str, Any]:
    return {"occurred_at": f"{day}T12:00:00+01:00", "submitted_at": f"{day}T12:30:00+01:00",
            "municipality": municipality} | changes  # fmt: skip


def edge_events() -> list[dict[str, Any]]:
    """Days across midnight and the DST change, ties across offsets, void/upsert ties,
    eligibility edges, shared households and nurses, and the ends of the day range."""
    ages = [(0, False, "newborn", ["breastfeeding"]),
            (5, False, "newborn", ["immunisation", "breastfeeding"]),
            (6, False, "routine", ["breastfeeding", "immunisation"]),
            (23, True, "routine", ["immunisation", "maternal_health"]),
            (24, False, "routine", ["immunisation", "early_stimulation"]),
            (None, True, "prenatal", ["maternal_health"]), (None, False, "prenatal", []),
            (71, False, "follow_up", ["early_stimulation"] * 16)]  # fmt: skip
    z, plus1 = "2026-03-13T09:00:00Z", "2026-03-13T10:00:00+01:00"  # the same instant
    return [
        # midnight in Belgrade, before (CET) and after (CEST) the change on 29 March
        _up("d1", "dst1", occurred_at="2026-03-28T23:30:00Z", submitted_at="2026-03-29T00:00:00Z"),
        _up("d2", "dst2", occurred_at="2026-03-29T22:30:00Z", submitted_at="2026-03-29T23:00:00Z",
            municipality="peje"),
        _up("d3", "dst3", occurred_at="2026-03-29T21:59:59Z", submitted_at="2026-03-29T21:59:59Z",
            municipality="peje", household_id="hh-2"),
        _up("d4", "offset", occurred_at="2026-03-27T23:30:00-01:00",
            submitted_at="2026-03-28T00:50:00Z", municipality="junik"),
        _up("d5", "ahead", occurred_at="2026-03-20T10:10:00+01:00",  # exactly 10 min ahead
            submitted_at="2026-03-20T09:00:00Z", municipality="junik"),
        # same revision: the later instant wins, then the greater event_id
        _up("t-b", "tie1", revision=2, submitted_at="2026-03-12T10:00:00+01:00",
            municipality="gjilan"),
        _up("t-a", "tie1", revision=2, submitted_at="2026-03-12T09:00:00Z", municipality="viti"),
        _up("t-0", "tie1", submitted_at="2026-03-11T09:00:00Z", municipality="kline"),
        _up("s-9", "tie2", submitted_at="2026-03-12T10:30:00+01:00", municipality="gjilan"),
        _up("s-1", "tie2", submitted_at="2026-03-12T09:45:00Z", municipality="viti"),
        _up("x-a", "tie3", revision=3, submitted_at=z, municipality="istog"),
        _void("x-b", "tie3", 3, plus1),  # the void wins: x-b > x-a
        _up("y-b", "tie4", revision=3, submitted_at=z, municipality="istog", household_id="hh-y"),
        _void("y-a", "tie4", 3, plus1),  # the upsert wins: y-b > y-a
        _void("z-v", "low", 1, "2026-03-14T09:00:00Z"),  # a lower revision than the upsert
        _up("z-u", "low", revision=2, occurred_at="2026-03-14T08:00:00Z",
            submitted_at="2026-03-14T08:30:00Z", municipality="istog", household_id="hh-z"),
        *(
            _up(f"a{i}", f"age{i}", child_age_months=age, pregnant=pregnant, visit_type=kind,
                topics=topics, household_id=f"hh-a{i % 3}", nurse_id=f"n-a{i % 2}",
                **_at("2026-03-16", "kamenice"))
            for i, (age, pregnant, kind, topics) in enumerate(ages)
        ),
        _up("r1", "risk1", risk_flags=["disability", "disability"],
            **_at("2026-03-17", "kamenice")),
        _up("r2", "risk2", risk_flags=["violence_risk"],
            referrals=["child_protection", "social_services"], **_at("2026-03-17", "kamenice")),
        _up("r3", "risk3", referrals=["social_services"], **_at("2026-03-17", "kamenice")),
        _up("r4", "risk4", risk_flags=["disability"], referrals=["specialist_care"],
            outcome="refused", topics=[], **_at("2026-03-17", "kamenice")),
        # one household and one nurse in two municipalities
        _up("h1", "hh1", household_id="hh-shared", nurse_id="n-shared",
            **_at("2026-03-18", "mamushe")),
        _up("h2", "hh2", household_id="hh-shared", nurse_id="n-shared",
            **_at("2026-03-19", "partesh")),
        # the earliest upsert, superseded by a move to a later day, still opens the range
        _up("m2", "move", revision=2, occurred_at="2026-03-05T12:00:00+01:00",
            submitted_at="2026-03-21T12:30:00+01:00", municipality="zvecan"),
        _up("m1", "move", **_at("2026-02-10", "zvecan")),
        # the latest upsert, voided, is still the clock day; a lone later void is not
        _up("l1", "last", occurred_at="2026-04-02T12:00:00+02:00",
            submitted_at="2026-04-02T12:30:00+02:00", municipality="obiliq"),
        _void("l2", "last", 2, "2026-04-03T09:00:00Z"),
        _void("orphan", "orphan", 1, "2026-04-20T09:00:00Z"),
        # a correction moving the visit a month back, then a late resend of revision 1
        _up("b1", "back", **_at("2026-03-25", "lipjan")),
        _up("b2", "back", revision=2, outcome="not_home", topics=[],
            occurred_at="2026-02-20T10:00:00+01:00", submitted_at="2026-03-26T11:00:00+01:00",
            municipality="lipjan"),
        _up("b1", "back", **_at("2026-03-25", "lipjan")),
        # invalid: they count nowhere, not even for the day range
        _up("bad1", "bad", occurred_at="2026-01-01T00:00:00"),
        _up("bad2", "bad", occurred_at="2026-03-20T10:10:01+01:00",
            submitted_at="2026-03-20T09:00:00Z"),
        _up("bad3", "bad", occurred_at="2025-01-01T00:00:00Z", revision=True),
        {"op": "upsert"},
    ]  # fmt: skip


def test_edge_cases_match_the_oracle(settings: Settings, store: Store, tmp_path: Path) -> None:
    lines = [json.dumps(event, separators=(",", ":")).encode() for event in edge_events()]
    expected = oracle.compute(lines)
    days = sorted({key[3] for key in expected})
    assert (days[0], days[-1]) == (date(2026, 2, 10), date(2026, 4, 2))
    path = tmp_path / "edges.jsonl"
    write_jsonl(lines, path)
    summary = replay(settings, store, path)
    assert (summary.dead_lettered, summary.duplicates) == (4, 1)
    assert_matches_oracle(store, expected)


# --- alerts (SPEC §4) -----------------------------------------------------------------------


def targets_by_key(config: dict[str, Any]) -> dict[tuple[str, str], tuple[str, float]]:
    """(municipality, indicator) -> ("min" | "max", target) for the 38 municipalities."""
    out: dict[tuple[str, str], tuple[str, float]] = {}
    for code in oracle.MUNICIPALITIES:
        merged = dict(config.get("defaults") or {})
        merged |= (config.get("municipalities") or {}).get(code) or {}
        for indicator, rule in merged.items():
            ((side, target),) = rule.items()
            out[(code, indicator)] = (side, float(target))
    return out


def test_active_alerts_follow_the_targets(
    arrival_store: Store, lines: list[bytes], expected: dict[Key, Row]
) -> None:
    config = yaml.safe_load(TARGETS_FILE.read_text(encoding="utf-8"))
    min_denominator, hysteresis = config["min_denominator"], config["hysteresis"]
    targets = targets_by_key(config)
    clock = oracle.clock_day(lines)

    behind, clearly_fine = set(), set()
    for (code, indicator), (side, target) in targets.items():
        _numerator, denominator, value = expected[(code, indicator, 30, clock)]
        is_count = indicator in oracle.COUNT_INDICATORS
        if value is None or (not is_count and denominator < min_denominator):
            continue  # too small a denominator changes no alert state: anything goes
        margin = 0.0 if is_count else hysteresis  # counts resolve back at the target
        if side == "min":
            wrong, past = value < target, value >= target + margin
        else:
            wrong, past = value > target, value <= target - margin
        if wrong:
            behind.add((code, indicator))
        if past:
            clearly_fine.add((code, indicator))
    assert behind, "the stream should leave some municipality behind"

    active = arrival_store.query(f"SELECT * FROM {arrival_store.table(ACTIVE_ALERTS)}")
    raised = {(row["municipality"], row["indicator"]) for row in active}
    assert len(raised) == len(active)
    for row in active:
        key = (row["municipality"], row["indicator"])
        assert row["window_days"] == 30, row
        assert row["state"] == "raised", row
        assert key in targets, row
        assert math.isclose(row["target"], targets[key][1], abs_tol=TOLERANCE), row
    missing = sorted(behind - raised)
    assert not missing, f"behind at {clock} but not in active_alerts: " + ", ".join(
        f"{key} {expected[(*key, 30, clock)]}" for key in missing
    )
    wrongly = sorted(raised & clearly_fine)
    assert not wrongly, f"active alerts clearly past their target at {clock}: " + ", ".join(
        f"{key} {expected[(*key, 30, clock)]}" for key in wrongly
    )
