"""Five SIGKILLs of the worker at random points of one backfill, and the broker itself
killed and started again in the middle of it: every table ends as one uninterrupted
worker leaves it, and every indicator row as the oracle computes it."""

from __future__ import annotations

import random
import signal
import subprocess
import time
from datetime import date
from pathlib import Path
from typing import Any

import oracle
import pytest
from workers import (
    SMALL_BATCH_EVENTS,
    WORKER_TIMEOUT,
    assert_same,
    assert_same_rows,
    check_alerts,
    dump,
    processed,
    publish_all,
    scenario_settings,
    start_worker,
    wait_for_progress,
)

from vizita.app.broker import LocalBroker
from vizita.contract.settings import Settings

pytestmark = pytest.mark.timeout(900)
KILLS = 5
LAST_KILL_BEFORE = 0.4  # of the events committed: progress is polled every 0.5 s
RESTARTS = 5  # how often a supervisor would start a worker that exited with an error


def _kill(worker: subprocess.Popen[bytes]) -> None:
    worker.send_signal(signal.SIGKILL)
    worker.wait(30)


def _bounce(broker: LocalBroker) -> None:
    """The broker dies (SIGKILL) and comes back on the same address and data."""
    broker.kill()
    time.sleep(1.0)
    broker.start()


def _progress_supervised(
    settings: Settings, store: Path, worker: subprocess.Popen[bytes], least: int
) -> subprocess.Popen[bytes]:
    """Until stage 1 has committed `least` events, starting the worker again whenever it
    exits (one that starts while the broker is down stops loudly, and its supervisor
    starts it again); the worker running then."""
    deadline = time.monotonic() + WORKER_TIMEOUT
    while processed(settings) < least:
        assert time.monotonic() < deadline, "the worker made no progress"
        if worker.poll() is not None:
            worker = start_worker(settings, store)
        time.sleep(0.5)
    return worker


def _finish_supervised(settings: Settings, store: Path) -> list[int]:
    """Run a worker to the end, starting it again when it exits with an error (as
    systemd or Kubernetes would); the exit codes it had."""
    codes = []
    for _ in range(RESTARTS):
        worker = start_worker(settings, store, "--exit-when-done")
        codes.append(worker.wait(WORKER_TIMEOUT))
        if codes[-1] == 0:
            return codes
    raise AssertionError(f"the worker never finished: exit codes {codes}")


def _as_oracle_rows(tables: dict[str, Any]) -> dict[oracle.Key, oracle.Row]:
    rows = {}
    for r in tables["indicator_values"]:
        key = (r["municipality"], r["indicator"], r["window_days"], date.fromisoformat(r["as_of"]))
        rows[key] = (r["numerator"], r["denominator"], r["value"])
    return rows


def test_five_kills_and_a_broker_restart_in_one_backfill(
    own_kafka: LocalBroker, payloads: list[bytes], reference: dict[str, Any], tmp_path: Path
) -> None:
    # The shortest session Kafka allows: each restart waits that long for the killed
    # worker to be let go.
    settings = scenario_settings(own_kafka, "chaos", tmp_path).model_copy(
        update={"batch_events": SMALL_BATCH_EVENTS, "kafka_session_timeout_seconds": 6.0}
    )
    store = tmp_path / "store"
    # The stream three times over (every repeat a duplicate to fold, which changes no
    # table): long enough that the kills land mid-stream however fast the machine is.
    backfill = payloads * 3
    publish_all(settings, backfill)
    rng = random.Random(5)
    points = sorted(rng.uniform(0.05, 0.3) for _ in range(KILLS))
    worker = start_worker(settings, store)
    for kill, point in enumerate(points, start=1):
        # Each worker commits a batch of its own at least before it dies (a kill during
        # start-up alone would leave the work to the last worker), and the last dies
        # before the end.
        least = max(int(len(backfill) * point), processed(settings) + SMALL_BATCH_EVENTS)
        wait_for_progress(settings, min(least, int(len(backfill) * LAST_KILL_BEFORE)))
        time.sleep(rng.uniform(0.0, 0.1))
        if kill == KILLS // 2 + 1:
            _bounce(own_kafka)  # under a running worker, or one still starting
            worker = _progress_supervised(settings, store, worker, processed(settings) + 1)
        _kill(worker)
        worker = start_worker(settings, store)
    _kill(worker)
    assert processed(settings) < len(backfill)  # the last kill was mid-stream too
    _finish_supervised(settings, store)

    tables = dump(store, "chaos")
    for table in ("visits", "dead_letters", "indicator_values"):
        assert_same(table, tables[table], reference[table])
    assert tables["store_rejects"] == []
    check_alerts(tables)
    assert_same_rows("indicator_values", _as_oracle_rows(tables), oracle.compute(payloads))
