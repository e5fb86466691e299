"""Nothing stops silently: a part that fails stops the worker with a non-zero exit and
one clear line (so that a supervisor restarts it), and SIGTERM stops it within 30 s,
even with the broker gone."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from workers import (
    SMALL_BATCH_EVENTS,
    processed,
    publish_all,
    scenario_settings,
    start_worker,
    wait_for_progress,
)

from vizita.app.broker import LocalBroker

pytestmark = pytest.mark.timeout(600)
STOP_WITHIN = 30.0


def _last_line(settings_dir: Path) -> str:
    logs = sorted(settings_dir.glob("worker-*.log"))
    lines = [line for line in logs[-1].read_text().splitlines() if line.strip()]
    return lines[-1]


def _store_without_visits(store: Path, database: str) -> None:
    """A store whose `visits` table is gone while its migrations say it is there: the
    sink can insert nothing until an operator acts."""
    script = (
        "import sys; from sinks.migrations import migrate; from sinks.store import open_store;"
        "s = open_store(sys.argv[1], sys.argv[2]); migrate(s);"
        "s.execute(f'DROP TABLE {s.table(\"visits\")}'); s.close()"
    )
    subprocess.run([sys.executable, "-c", script, f"chdb://{store}", database], check=True)  # noqa: S603  # our own code


def test_a_sink_that_cannot_store_stops_the_worker_loudly(
    kafka: LocalBroker, payloads: list[bytes], tmp_path: Path
) -> None:
    settings = scenario_settings(kafka, "fatal", tmp_path)
    _store_without_visits(tmp_path / "store", "fatal")
    publish_all(settings, payloads[:500])
    worker = start_worker(settings, tmp_path / "store")
    assert worker.wait(120) == 1
    line = _last_line(settings.data_dir)
    assert line.startswith("vizita: error: sink failed: StoreFatal(")
    assert "visits" in line


def _stopped_in(worker: subprocess.Popen[bytes]) -> float:
    started = time.monotonic()
    worker.send_signal(signal.SIGTERM)
    worker.wait(STOP_WITHIN + 15)
    return time.monotonic() - started


def test_sigterm_in_the_middle_of_a_backfill_stops_the_worker_cleanly(
    kafka: LocalBroker, payloads: list[bytes], tmp_path: Path
) -> None:
    settings = scenario_settings(kafka, "term", tmp_path).model_copy(
        update={"batch_events": SMALL_BATCH_EVENTS}
    )
    # The stream five times over (the repeats are duplicates to fold): long enough, in
    # batches of 100, that the signal comes mid-stream however fast the machine is.
    backfill = payloads * 5
    publish_all(settings, backfill)
    worker = start_worker(settings, tmp_path / "store")
    wait_for_progress(settings, len(backfill) // 20)
    assert _stopped_in(worker) < STOP_WITHIN
    assert worker.returncode == 0
    assert processed(settings) < len(backfill)  # it was stopped mid-stream


def test_sigterm_with_the_broker_gone_stops_the_worker_within_30_s(
    own_kafka: LocalBroker, payloads: list[bytes], tmp_path: Path
) -> None:
    settings = scenario_settings(own_kafka, "orphan", tmp_path)
    publish_all(settings, payloads[:2000])
    worker = start_worker(settings, tmp_path / "store")
    wait_for_progress(settings, 1)
    own_kafka.kill()
    time.sleep(2.0)
    assert worker.poll() is None  # still trying to reach the broker
    assert _stopped_in(worker) < STOP_WITHIN
