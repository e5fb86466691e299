"""`vizita demo`: a local broker, the pipeline, the embedded store and the simulator,
with a live view of what the store holds per municipality."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable
from datetime import datetime, timedelta

from rich.console import Group
from rich.live import Live
from rich.table import Table

from producers.publish import idempotent_producer, key_of
from producers.simulator import SimulationConfig, iter_live
from sinks.migrations import migrate
from sinks.queries import active_alerts, indicator_rows, latest_as_of
from sinks.schema import DEAD_LETTERS
from sinks.store import Store, open_store
from vizita.app.broker import kafka_for
from vizita.app.report import save_report
from vizita.app.runner import Pipeline
from vizita.app.views import values_at_alert_window
from vizita.contract.days import LOCAL_TZ
from vizita.contract.display import format_value, municipality_label, short
from vizita.contract.municipalities import SCOPES
from vizita.contract.settings import Settings
from vizita.contract.targets import Targets, load_targets
from vizita.contract.topics import TOPIC_VISITS
from vizita.kafka.admin import bootstrap_of, ensure_pipeline_topics

# Simulated time runs this much faster than the wall clock once the history is in.
DEMO_SPEED = 720.0  # one simulated hour every five seconds


def accelerated_clock(speed: float) -> Callable[[], datetime]:
    started = datetime.now(LOCAL_TZ)

    def now() -> datetime:
        return started + (datetime.now(LOCAL_TZ) - started) * speed

    return now


def _produce(settings: Settings, config: SimulationConfig, stop: threading.Event) -> None:
    producer = idempotent_producer(bootstrap_of(settings))
    topic = settings.topic(TOPIC_VISITS)
    clock = accelerated_clock(DEMO_SPEED)
    try:
        for payload in iter_live(config, now=clock):
            if stop.is_set():
                break
            # Received at the simulated time: the phones' clocks run as fast as the demo's.
            received_ms = int(clock().timestamp() * 1000)
            producer.send(topic, key=key_of(payload), value=payload, timestamp_ms=received_ms)
    finally:
        producer.close()


_SHOWN = ("visits_completed", "immunisation_counselling_coverage", "missed_visit_rate")


def _view(store: Store) -> Group:
    as_of = latest_as_of(store)
    rows = indicator_rows(store, as_of) if as_of else []
    monthly = values_at_alert_window(rows)
    alerts = active_alerts(store)
    alerted: dict[str, list[str]] = {}
    for alert in alerts:
        alerted.setdefault(alert["municipality"], []).append(short(alert["indicator"]))
    table = Table(title=f"30 days to {as_of or '—'}: municipalities against their targets")
    for column in ("municipality", "visits", "immunisation", "missed", "alerts"):
        table.add_column(
            column, justify="left" if column in ("municipality", "alerts") else "right"
        )
    for code in SCOPES:
        values = (format_value(n, monthly.get((code, n))) for n in _SHOWN)
        table.add_row(
            municipality_label(code),
            *values,
            ", ".join(alerted.get(code, [])),
            style="red" if code in alerted else None,
        )
    dead = store.query(
        f"SELECT reason, count() AS n FROM {store.table(DEAD_LETTERS)} FINAL "
        "GROUP BY reason ORDER BY n DESC"
    )
    letters = Table(title=f"Active alerts: {len(alerts)}.  Dead letters by reason")
    letters.add_column("reason")
    letters.add_column("count", justify="right")
    for item in dead:
        letters.add_row(item["reason"], str(item["n"]))
    return Group(table, letters)


async def _watch(
    settings: Settings, targets: Targets, store: Store, duration: float | None
) -> None:
    pipeline = Pipeline(settings, store, targets)
    await pipeline.start()
    loop = asyncio.get_running_loop()
    deadline = None if duration is None else loop.time() + duration
    try:
        with Live(await asyncio.to_thread(_view, store), refresh_per_second=1) as live:
            while deadline is None or loop.time() < deadline:
                await asyncio.sleep(1.0)
                live.update(await asyncio.to_thread(_view, store))
    finally:
        await pipeline.stop()


def run_demo(settings: Settings, *, duration: float | None, history_days: int) -> None:
    # The simulated clock runs ahead of the wall clock, so indicators follow event time.
    settings = settings.model_copy(update={"clock": "event"})
    targets = load_targets(settings.targets_file)
    store = open_store(settings.store_url.get_secret_value(), settings.database)
    migrate(store, settings.dead_letter_retention_days)
    yesterday = datetime.now(LOCAL_TZ).date() - timedelta(days=1)
    config = SimulationConfig.ending_on(yesterday, days=history_days)
    stop = threading.Event()
    try:
        with kafka_for(settings) as live:
            ensure_pipeline_topics(live)
            producer = threading.Thread(target=_produce, args=(live, config, stop), daemon=True)
            producer.start()
            with contextlib.suppress(KeyboardInterrupt):
                asyncio.run(_watch(live, targets, store, duration))
            stop.set()
            producer.join(timeout=5)
    finally:
        # The pipeline has stopped, however the run ended (Ctrl-C, --duration, an
        # error): report what the store holds. save_report logs its own failure, so
        # the real reason the demo ended is never hidden.
        try:
            report = save_report(settings, store, datetime.now(LOCAL_TZ))
            if report is not None:
                print(f"report: {report}")
        finally:
            store.close()
