"""Worker processes for the tests that need real ones (resilience, faults): each
scenario's own topics, groups and store, a worker started and finished as a
supervisor would, the tables a store holds, and SPEC §4's rule at the clock day."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from producers.publish import publish
from producers.simulator import SimulationConfig, simulate
from vizita.app.broker import LocalBroker
from vizita.contract.days import local_day
from vizita.contract.events import UpsertEvent
from vizita.contract.indicators import ALERT_WINDOW, COUNT_INDICATORS
from vizita.contract.municipalities import MUNICIPALITIES
from vizita.contract.settings import Settings
from vizita.contract.targets import load_targets
from vizita.contract.topics import TOPIC_VISITS
from vizita.contract.validation import ValidEvent, validate_payload
from vizita.kafka.admin import committed_offsets, ensure_pipeline_topics, group_members

DUMP = Path(__file__).parent / "dump_store.py"
WORKER_TIMEOUT = 240
# Batches small enough that a few thousand events make many batches and commits: a
# signal or a kill lands mid-stream, between any two of a batch's steps.
SMALL_BATCH_EVENTS = 100


def scenario_settings(kafka: LocalBroker, name: str, work: Path) -> Settings:
    """A scenario's own topics, consumer groups and database."""
    return Settings(kafka_bootstrap=kafka.bootstrap, topic_prefix=f"{name}.", app_id=name,
                    database=name, data_dir=work / "data")  # fmt: skip


@contextlib.contextmanager
def replay_settings(
    kafka: LocalBroker, store_url: str, work: Path, stem: str
) -> Iterator[tuple[str, Settings]]:
    """(a unique name, Settings of its own topics, groups and database) for a replay in
    this process, with no ambient VIZITA_* variable (as tests/conftest.py does for each
    test, for module-wide fixtures)."""
    name = f"{stem}_{uuid.uuid4().hex[:10]}"
    with pytest.MonkeyPatch.context() as env:
        for variable in list(os.environ):
            if variable.startswith("VIZITA_"):
                env.delenv(variable)
        yield name, Settings(
            kafka_bootstrap=kafka.bootstrap, topic_prefix=f"{name}.", app_id=name,
            database=name, store_url=store_url, data_dir=work / "data",
            sink_batch_seconds=0.2, partitions=4, log_format="console",
        )  # fmt: skip


def worker_env(settings: Settings) -> dict[str, str]:
    return {
        **os.environ, "VIZITA_TOPIC_PREFIX": settings.topic_prefix,
        "VIZITA_APP_ID": settings.app_id, "VIZITA_DATABASE": settings.database,
        "VIZITA_DATA_DIR": str(settings.data_dir), "VIZITA_LOG_FORMAT": "json",
        "VIZITA_KAFKA_BOOTSTRAP": settings.kafka_bootstrap or "", "VIZITA_CLOCK": "event",
        "VIZITA_BATCH_EVENTS": str(settings.batch_events),
        "VIZITA_KAFKA_SESSION_TIMEOUT_SECONDS": str(settings.kafka_session_timeout_seconds),
    }  # fmt: skip


_STARTED: list[subprocess.Popen[bytes]] = []  # every worker a test started


def start_worker(settings: Settings, store: Path, *flags: str) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "vizita", "worker", "--store", f"chdb://{store}", *flags]
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    log = (settings.data_dir / f"worker-{time.monotonic_ns()}.log").open("wb")
    worker = subprocess.Popen(  # noqa: S603  # our own command
        command, env=worker_env(settings), stdout=log, stderr=subprocess.STDOUT
    )
    _STARTED.append(worker)
    return worker


def kill_leftover_workers() -> int:
    """After a test: kill the workers it left running (a test that failed half-way
    leaves them, and they would spin against a stopped broker through every later
    test); how many there were."""
    leftovers = [worker for worker in _STARTED if worker.poll() is None]
    for worker in leftovers:
        worker.kill()
        worker.wait(30)
    _STARTED.clear()
    return len(leftovers)


def finish(process: subprocess.Popen[bytes]) -> None:
    assert process.wait(WORKER_TIMEOUT) == 0


def dump(store: Path, database: str) -> dict[str, Any]:
    """A store's tables, read in a process of its own (a worker held the store)."""
    done = subprocess.run(  # noqa: S603  # our own script
        [sys.executable, str(DUMP), f"chdb://{store}", database],
        capture_output=True, text=True, check=True, timeout=120,
    )  # fmt: skip
    return dict(json.loads(done.stdout))


def publish_all(settings: Settings, payloads: list[bytes]) -> None:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    ensure_pipeline_topics(settings)
    publish(payloads, settings.kafka_bootstrap or "", settings.topic(TOPIC_VISITS))


def processed(settings: Settings) -> int:
    """How many `visits` messages stage 1 has committed, over all partitions."""
    offsets = committed_offsets(
        settings.kafka_bootstrap or "", settings.app_id, settings.topic(TOPIC_VISITS)
    )
    return sum(offsets.values())


def wait_for_progress(settings: Settings, least: int) -> int:
    """Until stage 1 has committed `least` of the published events; how many it has."""
    deadline = time.monotonic() + WORKER_TIMEOUT
    while time.monotonic() < deadline:
        done = processed(settings)
        if done >= least:
            return done
        # Not faster: an admin client a few times a second slows the group's first join.
        time.sleep(0.5)
    raise AssertionError("the worker made no progress")


def wait_for_members(settings: Settings, count: int) -> None:
    """Until the stages' consumer group is stable with `count` members (a worker that
    has joined holds partitions)."""
    deadline = time.monotonic() + WORKER_TIMEOUT
    state = None
    while time.monotonic() < deadline:
        state, members = group_members(settings.kafka_bootstrap or "", settings.app_id)
        if state == "Stable" and members == count:
            return
        time.sleep(0.5)
    raise AssertionError(f"the group never had {count} members: {state}")


def assert_same(table: str, actual: list[Any], expected: list[Any]) -> None:
    """Two dumps of a table equal, or an error naming how many rows differ and the
    first few of them (a whole table in the message would hide the difference)."""
    if actual == expected:
        return
    have, want = map(_counted, (actual, expected))
    extra = [row for row in have if have[row] > want.get(row, 0)]
    missing = [row for row in want if want[row] > have.get(row, 0)]
    lines = [f"{table}: {len(actual)} rows, expected {len(expected)}; "
             f"{len(extra)} not expected, {len(missing)} missing"]  # fmt: skip
    lines += [f"  not expected: {row}" for row in extra[:6]]
    lines += [f"  missing:      {row}" for row in missing[:6]]
    raise AssertionError("\n".join(lines))


def assert_same_rows(what: str, actual: dict[Any, Any], expected: dict[Any, Any]) -> None:
    """Two mappings of rows by key equal, or an error naming the first few keys where
    they differ."""
    if actual == expected:
        return
    differ = (k for k in actual.keys() | expected.keys() if actual.get(k) != expected.get(k))
    keys = sorted(differ, key=repr)
    lines = [f"{what}: {len(keys)} of {len(expected)} rows differ"]
    lines += [f"  {k}: {actual.get(k, 'absent')}, expected {expected.get(k, 'absent')}"
              for k in keys[:8]]  # fmt: skip
    raise AssertionError("\n".join(lines))


def _counted(rows: list[Any]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for row in rows:
        text = json.dumps(row, sort_keys=True)
        counts[text] = counts.get(text, 0) + 1
    return counts


def upsert_days(payloads: list[bytes]) -> int:
    events = [r.event for r in map(validate_payload, payloads) if isinstance(r, ValidEvent)]
    days = {local_day(e.occurred_at) for e in events if isinstance(e, UpsertEvent)}
    return (max(days) - min(days)).days + 1


def check_alerts(tables: dict[str, Any]) -> None:
    """SPEC §4 at the clock day: every municipality strictly behind is alerted, none
    clearly past its target is (alert history depends on the path values took)."""
    targets = load_targets(Settings().targets_file)
    clock = max(row["as_of"] for row in tables["indicator_values"])
    now = {(r["municipality"], r["indicator"]): r for r in tables["indicator_values"]
           if r["as_of"] == clock and r["window_days"] == ALERT_WINDOW}  # fmt: skip
    active = {(a["municipality"], a["indicator"]) for a in tables["active_alerts"]}
    behind, past = set(), set()
    for municipality in MUNICIPALITIES:
        for indicator, target in targets.for_municipality(municipality).items():
            row = now[(municipality, indicator)]
            value, ratio = row["value"], indicator not in COUNT_INDICATORS
            if value is None or (ratio and row["denominator"] < targets.min_denominator):
                continue
            sign = 1 if target.min is not None else -1
            margin = targets.hysteresis if ratio else 0.0
            if sign * (value - target.bound) < 0:
                behind.add((municipality, indicator))
            elif sign * (value - target.bound) >= margin:
                past.add((municipality, indicator))
    assert behind, "the stream should leave some municipality behind"
    assert behind <= active
    assert not active & past


# --- one stream, and what one uninterrupted worker makes of it --------------------------------

STREAM = SimulationConfig(
    seed=404, start=date(2026, 4, 1), days=40, visits_per_day=150, late_share=0.3,
    duplicate_share=0.05, correction_share=0.1, void_share=0.03, invalid_share=0.02,
)  # fmt: skip


@pytest.fixture(scope="session")
def payloads() -> list[bytes]:
    return simulate(STREAM)


@pytest.fixture(scope="session")
def reference(
    kafka: LocalBroker, payloads: list[bytes], tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Any]:
    """The tables one uninterrupted worker leaves."""
    work = tmp_path_factory.mktemp("reference")
    settings = scenario_settings(kafka, "ref", work)
    publish_all(settings, payloads)
    finish(start_worker(settings, work / "store", "--exit-when-done"))
    tables = dump(work / "store", "ref")
    assert len(tables["visits"]) > 3000
    assert len(tables["indicator_values"]) == 39 * 10 * 2 * upsert_days(payloads)
    check_alerts(tables)
    return tables
