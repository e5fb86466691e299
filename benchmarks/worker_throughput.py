"""Worker throughput on a backfill: every event is in Kafka before the worker starts,
then one `vizita worker --exit-when-done` process (both stages and the sink, embedded
store) works through all of it. Publishing is timed on its own.

    .venv/bin/python benchmarks/worker_throughput.py [--days 60] [--per-day 2150]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from producers.publish import publish
from producers.simulator import SimulationConfig, simulate
from vizita.app.broker import LocalBroker
from vizita.contract.logs import configure_logging
from vizita.contract.settings import Settings
from vizita.contract.topics import TOPIC_VISITS
from vizita.kafka.admin import ensure_pipeline_topics


def _worker_env(settings: Settings) -> dict[str, str]:
    return {**os.environ, "VIZITA_KAFKA_BOOTSTRAP": settings.kafka_bootstrap or "",
            "VIZITA_DATA_DIR": str(settings.data_dir), "VIZITA_CLOCK": "event",
            "VIZITA_LOG_LEVEL": "warning"}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--days", type=int, default=60)
    parser.add_argument("--per-day", type=int, default=2150)
    args = parser.parse_args()
    configure_logging("warning", "console")
    payloads = simulate(SimulationConfig(days=args.days, visits_per_day=args.per_day))
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        with LocalBroker(work / "kafka", Settings().kafka_cache_dir) as broker:
            settings = Settings(kafka_bootstrap=broker.bootstrap, data_dir=work / "data")
            ensure_pipeline_topics(settings)
            started = time.monotonic()
            publish(payloads, broker.bootstrap, settings.topic(TOPIC_VISITS))
            published = time.monotonic() - started
            command = [sys.executable, "-m", "vizita", "worker", "--exit-when-done",
                       "--store", f"chdb://{work / 'store'}"]  # fmt: skip
            started = time.monotonic()
            subprocess.run(command, env=_worker_env(settings), check=True)  # noqa: S603  # our own command
            worked = time.monotonic() - started
    count = len(payloads)
    print(f"events: {count:,}")
    print(f"publish: {published:.1f} s = {count / published:,.0f} events/s")
    print(f"worker (start, both stages, sink, store; exits when all is stored): "
          f"{worked:.1f} s = {count / worked:,.0f} events/s")  # fmt: skip


if __name__ == "__main__":
    main()
