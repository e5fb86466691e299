"""Replay throughput: events per second through the whole pipeline (broker, both
stages, sink, embedded store), on a fresh local broker and a fresh store.

    .venv/bin/python benchmarks/replay_throughput.py [--days 60] [--per-day 1700]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from producers.simulator import SimulationConfig, simulate, write_jsonl
from sinks.store import open_store
from vizita.app.broker import kafka_for
from vizita.app.replay import replay
from vizita.contract.logs import configure_logging
from vizita.contract.settings import Settings
from vizita.contract.topics import TOPIC_INDICATORS, TOPIC_VISIT_CONTRIBUTIONS
from vizita.kafka.admin import bootstrap_of, end_offsets


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--days", type=int, default=60)
    parser.add_argument("--per-day", type=int, default=1700)
    args = parser.parse_args()
    configure_logging("warning", "console")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        payloads = simulate(SimulationConfig(days=args.days, visits_per_day=args.per_day))
        write_jsonl(payloads, work / "events.jsonl")
        settings = Settings(store_url=f"chdb://{work / 'store'}", data_dir=work / "data")
        store = open_store(settings.store_url.get_secret_value(), settings.database)
        with kafka_for(settings) as live:
            started = time.monotonic()
            summary = replay(live, store, work / "events.jsonl")
            seconds = time.monotonic() - started
            sent = {name: sum(end_offsets(bootstrap_of(live), live.topic(name)).values())
                    for name in (TOPIC_VISIT_CONTRIBUTIONS, TOPIC_INDICATORS)}  # fmt: skip
        store.close()
    print(f"events: {summary.read}  valid: {summary.valid}  dead-lettered: {summary.dead_lettered}")
    rate = summary.read / seconds
    print(f"replay (publish + process + store): {seconds:.1f} s = {rate:,.0f} events/s")
    print(f"messages: {sent[TOPIC_VISIT_CONTRIBUTIONS]:,} contributions and ticks, "
          f"{sent[TOPIC_INDICATORS]:,} indicator rows sent; {summary.indicator_rows_in_store:,} "
          "rows in the store")  # fmt: skip


if __name__ == "__main__":
    main()
