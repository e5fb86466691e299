"""`vizita replay` end to end: the real broker, the Faust stage, the sink, chdb.

The expected result is computed here, from the file alone, by a few lines of plain
Python that share nothing with the pipeline but the validator."""

from __future__ import annotations

import asyncio
import json
import random
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from producers.publish import publish
from producers.simulator import SimulationConfig, simulate, write_jsonl
from sinks.errors import StoreUnavailable
from sinks.queries import active_alerts, indicator_rows, latest_as_of
from sinks.schema import DEAD_LETTERS, VISITS
from sinks.store import Store, open_store
from vizita.app.replay import replay
from vizita.app.runner import Pipeline
from vizita.contract.days import LOCAL_TZ, local_day
from vizita.contract.events import UpsertEvent
from vizita.contract.settings import Settings
from vizita.contract.validation import ValidEvent, validate_payload
from vizita.kafka.admin import end_offsets, ensure_pipeline_topics

MESSY = SimulationConfig(
    seed=20261123, start=date(2026, 1, 20), days=21, visits_per_day=40,
    late_share=0.3, duplicate_share=0.08, correction_share=0.12, void_share=0.04,
    invalid_share=0.03,
)  # fmt: skip


def expected_visits(lines: list[bytes]) -> tuple[dict[str, tuple[str, bool]], list[bytes]]:
    """visit_id -> (winning event_id, is_void), and the invalid lines."""
    winners: dict[str, dict[str, Any]] = {}
    invalid = []
    for line in lines:
        if not isinstance(validate_payload(line), ValidEvent):
            invalid.append(line)
            continue
        event = json.loads(line)
        rank = (event["revision"], datetime.fromisoformat(event["submitted_at"]), event["event_id"])
        best = winners.get(event["visit_id"])
        if best is None or rank > best["rank"]:
            winners[event["visit_id"]] = {"rank": rank, "event": event}
    return {
        visit_id: (w["event"]["event_id"], w["event"]["op"] == "void")
        for visit_id, w in winners.items()
    }, invalid


def stored_visits(store: Store) -> dict[str, tuple[str, bool]]:
    rows = store.query(f"SELECT visit_id, event_id, is_void FROM {store.table(VISITS)} FINAL")
    return {row["visit_id"]: (row["event_id"], row["is_void"]) for row in rows}


def stored_dead_letters(store: Store) -> Counter[str]:
    rows = store.query(f"SELECT hex(payload) AS h FROM {store.table(DEAD_LETTERS)} FINAL")
    return Counter(row["h"] for row in rows)


def test_messy_stream_leaves_one_row_per_visit(
    settings: Settings, store: Store, tmp_path: Path
) -> None:
    lines = simulate(MESSY)
    path = tmp_path / "messy.jsonl"
    write_jsonl(lines, path)
    expected, invalid = expected_visits(lines)

    summary = replay(settings, store, path)

    assert stored_visits(store) == expected
    assert stored_dead_letters(store) == Counter(line.hex().upper() for line in invalid)
    distinct = {(json.loads(line)["visit_id"], json.loads(line)["event_id"])
                for line in lines if line not in invalid}  # fmt: skip
    assert (summary.read, summary.dead_lettered) == (len(lines), len(invalid))
    assert summary.valid == len(lines) - len(invalid)
    assert summary.duplicates == summary.valid - len(distinct) > 0
    assert summary.voided_in_store == sum(void for _, void in expected.values()) > 0


def _all_rows(store: Store) -> list[dict[str, Any]]:
    return store.query(
        f"SELECT * EXCEPT (version, stored_at) FROM {store.table(VISITS)} FINAL ORDER BY visit_id"
    )


def test_shuffled_stream_gives_the_same_tables(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    lines = simulate(MESSY)
    shuffled = random.Random(5).sample(lines, len(lines))
    results = []
    for name, ordered in (("arrival", lines), ("shuffled", shuffled)):
        settings = make_settings(
            topic_prefix=f"{tmp_path.name}.{name}.",
            app_id=f"{tmp_path.name}-{name}",
            database=f"{name}_{tmp_path.name[-8:]}",
        )
        path = tmp_path / f"{name}.jsonl"
        write_jsonl(ordered, path)
        store = open_store(settings.store_url.get_secret_value(), settings.database)
        replay(settings, store, path)
        results.append((_all_rows(store), stored_dead_letters(store)))
        store.close()
    assert results[0] == results[1]
    assert len(results[0][0]) > 500


def test_bad_bytes_never_stop_the_pipeline(
    settings: Settings, store: Store, tmp_path: Path
) -> None:
    good = simulate(SimulationConfig(seed=3, start=date(2026, 2, 2), days=2, visits_per_day=10,
                                     invalid_share=0.0, duplicate_share=0.0))  # fmt: skip
    bad = [b"\xff\xfe\x00garbage", b"{" * 70_000, b'{"visit_id": "v-x", "revision": "7"}',
           b"[1, 2, 3]", b"null"]  # fmt: skip
    path = tmp_path / "bad.jsonl"
    write_jsonl([bad[0], *good[:5], bad[1], bad[2], *good[5:], bad[3], bad[4]], path)

    summary = replay(settings, store, path)

    assert summary.dead_lettered == len(bad)
    assert stored_dead_letters(store) == Counter(line.hex().upper() for line in bad)
    reasons = store.query(
        f"SELECT reason, count() AS n FROM {store.table(DEAD_LETTERS)} FINAL GROUP BY reason"
    )
    assert {r["reason"]: r["n"] for r in reasons} == {
        "not_json": 1, "too_large": 1, "missing_field": 1, "not_object": 2}  # fmt: skip
    assert len(stored_visits(store)) == len(expected_visits(good)[0])


def test_cli_replay_prints_the_summary(settings: Settings, tmp_path: Path) -> None:
    lines = simulate(SimulationConfig(seed=9, start=date(2026, 2, 2), days=3, visits_per_day=20))
    path = tmp_path / "cli.jsonl"
    write_jsonl(lines, path)
    env = {"VIZITA_TOPIC_PREFIX": settings.topic_prefix, "VIZITA_APP_ID": settings.app_id,
           "VIZITA_DATA_DIR": str(tmp_path / "cli-data"), "PATH": "/usr/bin:/bin"}  # fmt: skip
    command = [sys.executable, "-m", "vizita", "replay", str(path), "--json",
               "--store", f"chdb://{tmp_path / 'cli-store'}",
               "--bootstrap", settings.kafka_bootstrap or ""]  # fmt: skip
    done = subprocess.run(  # noqa: S603  # our own command line, built above
        command, capture_output=True, text=True, env=env, timeout=240, check=False
    )
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    expected, invalid = expected_visits(lines)
    assert summary["read"] == len(lines)
    assert summary["dead_lettered"] == len(invalid)
    assert summary["visits_in_store"] + summary["voided_in_store"] == len(expected)


class _OutageBackend:
    """The real embedded engine behind a switch: the sink's first insert takes the store
    down for `seconds`, during which every insert fails as a ClickHouse server that
    cannot be reached does (StoreUnavailable)."""

    def __init__(self, real: Any, seconds: float) -> None:
        self.real, self.seconds, self.refused = real, seconds, 0
        self.up_at: float | None = None

    def execute(self, sql: str) -> None:
        if sql.startswith("INSERT") and "schema_migrations" not in sql:
            now = time.monotonic()
            self.up_at = self.up_at or now + self.seconds
            if now < self.up_at:
                self.refused += 1
                raise StoreUnavailable("connection refused (test outage)")
        self.real.execute(sql)

    def fetch(self, sql: str) -> list[dict[str, Any]]:
        return list(self.real.fetch(sql))

    def close(self) -> None:
        self.real.close()


def test_a_store_outage_loses_nothing(settings: Settings, store: Store, tmp_path: Path) -> None:
    lines = simulate(MESSY)
    path = tmp_path / "outage.jsonl"
    write_jsonl(lines, path)
    expected, invalid = expected_visits(lines)
    backend = _OutageBackend(store.backend, seconds=6.0)
    flaky = Store(backend, store.database)

    summary = replay(settings, flaky, path)

    assert backend.refused > 0  # the sink really met the outage, and waited it out
    assert stored_visits(store) == expected
    assert stored_dead_letters(store) == Counter(line.hex().upper() for line in invalid)
    upsert_days = {local_day(r.event.occurred_at) for r in map(validate_payload, lines)
                   if isinstance(r, ValidEvent) and isinstance(r.event, UpsertEvent)}  # fmt: skip
    days = (max(upsert_days) - min(upsert_days)).days + 1
    assert summary.indicator_rows_in_store == 39 * 10 * 2 * days


def test_the_live_clock_runs_to_today_without_events(
    settings: Settings, store: Store, tmp_path: Path
) -> None:
    # Visits stop a week ago; in live mode the clock day is still today, so rows exist
    # up to today and the volume targets of the 30-day window fall behind.
    today = datetime.now(LOCAL_TZ).date()
    lines = simulate(SimulationConfig(seed=8, start=today - timedelta(days=20), days=13,
                                      visits_per_day=30, invalid_share=0.0))  # fmt: skip
    live = settings.model_copy(update={"clock": "live"})
    ensure_pipeline_topics(live)
    before = end_offsets(live.kafka_bootstrap or "", live.topic("visits"))
    publish(lines, live.kafka_bootstrap or "", live.topic("visits"))

    async def run() -> None:
        pipeline = Pipeline(live, store)
        await pipeline.start()
        try:
            await pipeline.wait_until_stored(before)
        finally:
            await pipeline.stop()

    asyncio.run(run())
    assert latest_as_of(store) == today
    month = {r["indicator"]: r for r in indicator_rows(store, today, "prishtine")
             if r["window_days"] == 30}  # fmt: skip
    assert month["visits_completed"]["numerator"] < 400  # its target, config/targets.yaml
    alerted = {(a["municipality"], a["indicator"]) for a in active_alerts(store)}
    assert ("prishtine", "visits_completed") in alerted
