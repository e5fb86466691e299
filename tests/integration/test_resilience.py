"""Effectively-once under failure, with real worker processes: a worker killed with
SIGKILL in the middle and restarted, and two workers sharing the work, must leave the
tables an uninterrupted single worker leaves.

`visits`, `indicator_values` and `dead_letters` must be identical. Alerts have
hysteresis, so their history depends on the path the values took (which a crash or a
second worker changes); what must hold at the clock day is the SPEC §4 rule: every
municipality strictly behind is alerted, none clearly past its target is."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from producers.publish import publish
from producers.simulator import SimulationConfig, simulate
from vizita.app.broker import LocalBroker
from vizita.contract.indicators import ALERT_WINDOW, COUNT_INDICATORS
from vizita.contract.municipalities import MUNICIPALITIES
from vizita.contract.settings import Settings
from vizita.contract.targets import load_targets
from vizita.contract.topics import TOPIC_VISITS
from vizita.contract.validation import ValidEvent, validate_payload
from vizita.kafka.admin import committed_offsets, ensure_pipeline_topics

STREAM = SimulationConfig(
    seed=404, start=date(2026, 4, 1), days=40, visits_per_day=150, late_share=0.3,
    duplicate_share=0.05, correction_share=0.1, void_share=0.03, invalid_share=0.02,
)  # fmt: skip
DUMP = Path(__file__).parent / "dump_store.py"
WORKER_TIMEOUT = 240
# The first test of each scenario waits for its module fixtures (three full runs).
pytestmark = pytest.mark.timeout(900)


@pytest.fixture(scope="module")
def payloads() -> list[bytes]:
    return simulate(STREAM)


def _settings(kafka: LocalBroker, name: str, work: Path) -> Settings:
    """Each scenario's own topics, consumer groups and database."""
    return Settings(kafka_bootstrap=kafka.bootstrap, topic_prefix=f"{name}.", app_id=name,
                    database=name, data_dir=work / "data")  # fmt: skip


def _env(settings: Settings) -> dict[str, str]:
    return {
        **os.environ, "VIZITA_TOPIC_PREFIX": settings.topic_prefix,
        "VIZITA_APP_ID": settings.app_id, "VIZITA_DATABASE": settings.database,
        "VIZITA_DATA_DIR": str(settings.data_dir), "VIZITA_LOG_FORMAT": "json",
        "VIZITA_KAFKA_BOOTSTRAP": settings.kafka_bootstrap or "", "VIZITA_CLOCK": "event",
    }  # fmt: skip


def _worker(settings: Settings, store: Path, *flags: str) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "vizita", "worker", "--store", f"chdb://{store}", *flags]
    log = (settings.data_dir / f"worker-{time.monotonic_ns()}.log").open("wb")
    return subprocess.Popen(command, env=_env(settings), stdout=log, stderr=subprocess.STDOUT)  # noqa: S603  # our own command


def _finish(process: subprocess.Popen[bytes]) -> None:
    assert process.wait(WORKER_TIMEOUT) == 0


def _dump(store: Path, database: str) -> dict[str, Any]:
    done = subprocess.run(  # noqa: S603  # our own script
        [sys.executable, str(DUMP), f"chdb://{store}", database],
        capture_output=True, text=True, check=True, timeout=120,
    )  # fmt: skip
    return dict(json.loads(done.stdout))


def _publish(settings: Settings, payloads: list[bytes]) -> None:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    ensure_pipeline_topics(settings)
    publish(payloads, settings.kafka_bootstrap or "", settings.topic(TOPIC_VISITS))


@pytest.fixture(scope="module")
def reference(
    kafka: LocalBroker, payloads: list[bytes], tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Any]:
    """The tables one uninterrupted worker leaves."""
    work = tmp_path_factory.mktemp("reference")
    settings = _settings(kafka, "ref", work)
    _publish(settings, payloads)
    _finish(_worker(settings, work / "store", "--exit-when-done"))
    dump = _dump(work / "store", "ref")
    assert len(dump["visits"]) > 3000
    assert len(dump["indicator_values"]) == 39 * 9 * 2 * _days(payloads)
    _check_alerts(dump)
    return dump


def _check_alerts(dump: dict[str, Any]) -> None:
    targets = load_targets(Settings().targets_file)
    clock = max(row["as_of"] for row in dump["indicator_values"])
    now = {(r["municipality"], r["indicator"]): r for r in dump["indicator_values"]
           if r["as_of"] == clock and r["window_days"] == ALERT_WINDOW}  # fmt: skip
    active = {(a["municipality"], a["indicator"]) for a in dump["active_alerts"]}
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


def _days(payloads: list[bytes]) -> int:
    from vizita.contract.days import local_day
    from vizita.contract.events import UpsertEvent

    events = [r.event for r in map(validate_payload, payloads) if isinstance(r, ValidEvent)]
    days = {local_day(e.occurred_at) for e in events if isinstance(e, UpsertEvent)}
    return (max(days) - min(days)).days + 1


def _wait_for_progress(settings: Settings, least: int) -> int:
    """Until stage 1 has committed `least` of the published events; how many it has."""
    deadline = time.monotonic() + WORKER_TIMEOUT
    while time.monotonic() < deadline:
        done = sum(
            committed_offsets(
                settings.kafka_bootstrap or "", settings.app_id, settings.topic(TOPIC_VISITS)
            ).values()
        )
        if done >= least:
            return done
        time.sleep(0.05)
    raise AssertionError("the worker made no progress")


@pytest.fixture(scope="module")
def crashed(
    kafka: LocalBroker, payloads: list[bytes], tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Any]:
    """The tables after a worker is killed with SIGKILL mid-stream and restarted."""
    work = tmp_path_factory.mktemp("crashed")
    settings = _settings(kafka, "crash", work)
    _publish(settings, payloads)
    first = _worker(settings, work / "store")
    progressed = _wait_for_progress(settings, len(payloads) // 3)
    first.send_signal(signal.SIGKILL)
    first.wait(30)
    assert progressed < len(payloads)  # it really died in the middle
    _finish(_worker(settings, work / "store", "--exit-when-done"))
    return _dump(work / "store", "crash")


@pytest.fixture(scope="module")
def shared(
    kafka: LocalBroker, payloads: list[bytes], tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Any]:
    """The tables when two worker processes share the partitions."""
    work = tmp_path_factory.mktemp("shared")
    settings = _settings(kafka, "two", work)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    ensure_pipeline_topics(settings)
    helper = _worker(settings, work / "unused", "--no-sink")
    time.sleep(3)  # let it join the group first, so the work is shared
    _publish(settings, payloads)
    main = _worker(settings, work / "store", "--exit-when-done")
    try:
        assert main.wait(WORKER_TIMEOUT) == 0
    finally:
        main.kill()
        helper.send_signal(signal.SIGTERM)
        helper.wait(60)
    return _dump(work / "store", "two")


@pytest.mark.parametrize("table", ["visits", "dead_letters"])
def test_sigkill_and_restart_keep_visits_and_dead_letters(
    crashed: dict[str, Any], reference: dict[str, Any], table: str
) -> None:
    assert crashed[table] == reference[table]


def test_sigkill_and_restart_keep_the_indicators(
    crashed: dict[str, Any], reference: dict[str, Any]
) -> None:
    assert crashed["indicator_values"] == reference["indicator_values"]
    _check_alerts(crashed)


@pytest.mark.parametrize("table", ["visits", "dead_letters"])
def test_two_workers_keep_visits_and_dead_letters(
    shared: dict[str, Any], reference: dict[str, Any], table: str
) -> None:
    assert shared[table] == reference[table]


def test_two_workers_keep_the_indicators(shared: dict[str, Any], reference: dict[str, Any]) -> None:
    assert shared["indicator_values"] == reference["indicator_values"]
    _check_alerts(shared)
