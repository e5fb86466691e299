"""What the pipeline costs, next to the floors beneath it: one run, one local broker,
the same simulated events (SPEC-shaped: late, duplicate, corrected, moved, voided,
invalid) for every line.

    publish   the events into `visits` (kafka-python, idempotent, as `vizita produce`)
    1 raw     aiokafka `getmany` batches -> json.loads -> one INSERT per batch into a plain
              MergeTree table of the embedded engine; no validation, no state
    2 faust   a trivial Faust agent that only counts: `async for`, then `stream.take`
    3 worker  `vizita worker --exit-when-done` on the events already in the topic (both
              stages, the sink, the embedded store); its peak RSS
    4 replay  `vizita.app.replay.replay` of the same events: publisher, pipeline and
              store in one process, on topics of its own
    5 sql     sinks/periods.py's rolling windows over the worker's `visits`: every
              indicator, both windows, 39 scopes, every day; checked against the
              worker's `indicator_values`
    6 latency probes at a steady rate on top of the loaded history: publish -> the
              probe's count readable in `indicator_values`; then again while a second
              worker (`vizita worker --no-sink`) joins and leaves the group

Throughput is events / wall seconds of the line's own process, start-up included (a
backfill pays for it too). Every line that holds Faust or the embedded engine runs in
a process of its own: chdb opens one store per process and Faust apps share module
state. The last line printed is one JSON object with every figure.

    .venv/bin/python benchmarks/pipeline.py                    # 60 days, ~125k events
    .venv/bin/python benchmarks/pipeline.py --year             # 365 days, ~1M events
    .venv/bin/python benchmarks/pipeline.py --days 4 --per-day 300 --seconds 10
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import multiprocessing
import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from producers.publish import idempotent_producer, key_of, publish
from producers.simulator import SimulationConfig, simulate, write_jsonl
from sinks.periods import rolling_window_values
from sinks.queries import as_of_range, store_totals
from sinks.schema import INDICATOR_VALUES
from sinks.sql import literal
from sinks.store import Store, open_store
from vizita.app.broker import LocalBroker
from vizita.app.replay import replay
from vizita.app.runner import Pipeline
from vizita.contract.days import local_day
from vizita.contract.indicators import WEEK
from vizita.contract.logs import configure_logging
from vizita.contract.municipalities import MUNICIPALITIES
from vizita.contract.settings import Settings
from vizita.contract.topics import TOPIC_INDICATORS, TOPIC_VISIT_CONTRIBUTIONS, TOPIC_VISITS
from vizita.kafka.admin import end_offsets, ensure_pipeline_topics

DEFAULT_DAYS, DEFAULT_PER_DAY = 60, 2630  # about 125k events
YEAR_DAYS, YEAR_PER_DAY = 365, 3460  # about 1M events
TAKE_BATCH, TAKE_WITHIN = 2000, 1.0
RAW_BATCH = 5000
POLL_SECONDS = 0.1  # how often the latency line reads the store: its resolution
RSS_POLL_SECONDS = 0.2  # how often the worker line reads the worker's peak RSS
DRAIN_SECONDS = 60.0  # how long a probe may take before it counts as not seen
PUBLISH_LEAD = 3.0  # seconds for the probe publisher's process to start
JOIN_AT, LEAVE_AT = 0.2, 0.6  # the second worker, as shares of the latency minute
BUCKET_SECONDS = 5.0
PROBE_SCOPES = tuple(sorted(MUNICIPALITIES))  # probe k goes to PROBE_SCOPES[k % 38]

# Issue 10's targets, on this machine, broker included.
TARGET_RATIO = 0.5  # worker events/s >= 0.5 x the trivial agent's
TARGET_BACKFILL_EVENTS, TARGET_BACKFILL_SECONDS = 1_000_000, 600.0
YEAR_SCALE = 0.9  # a run of at least 900k events measures the 1M-event targets
TARGET_RSS_MB = 1536.0
TARGET_P99_SECONDS = 2.0

Figures = dict[str, Any]


# --- running a line in a process of its own ------------------------------------------------


def _pool() -> ProcessPoolExecutor:
    # Spawned, not forked: a fresh interpreter shares no chdb session, Faust app or
    # broker client with this one.
    return ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn"))


def in_own_process(function: Callable[..., Any], *args: Any) -> Any:
    """`function(*args)` in a process of its own."""
    with _pool() as pool:
        return pool.submit(function, *args).result()


async def in_own_process_async(function: Callable[..., Any], *args: Any) -> Any:
    """The same, awaited: this process's event loop runs on meanwhile."""
    with _pool() as pool:
        return await asyncio.wrap_future(pool.submit(function, *args))


def _quiet() -> None:
    configure_logging("warning", "console")
    logging.getLogger().setLevel(logging.WARNING)


def _rate(count: int, seconds: float) -> Figures:
    return {
        "events": count,
        "seconds": round(seconds, 2),
        "events_per_s": round(count / seconds, 1),
    }


def _env(settings: Settings, clock: str, data_dir: Path) -> dict[str, str]:
    """A `vizita worker` process's settings (the CLI reads them from its environment)."""
    return {
        **os.environ,
        "VIZITA_KAFKA_BOOTSTRAP": settings.kafka_bootstrap or "",
        "VIZITA_DATA_DIR": str(data_dir),
        "VIZITA_CLOCK": clock,
        "VIZITA_LOG_LEVEL": settings.log_level,
        "VIZITA_LOG_FORMAT": "console",
    }


# --- publish -----------------------------------------------------------------------------


def publish_line(payloads: list[bytes], settings: Settings) -> Figures:
    started = time.monotonic()
    count = publish(payloads, settings.kafka_bootstrap or "", settings.topic(TOPIC_VISITS))
    return _rate(count, time.monotonic() - started)


# --- 1: the raw floor --------------------------------------------------------------------

RAW_COLUMNS = ("event_id", "visit_id", "op", "municipality", "occurred_at")


def _raw_row(payload: bytes) -> tuple[str, ...] | None:
    try:
        event = json.loads(payload)
    except (ValueError, RecursionError):
        return None
    if not isinstance(event, dict):
        return None
    return tuple(str(event.get(name, "")) for name in RAW_COLUMNS)


async def _consume_raw(bootstrap: str, topic: str, count: int, store: Store) -> int:
    from aiokafka import AIOKafkaConsumer, TopicPartition

    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        partitions = [TopicPartition(topic, p) for p in end_offsets(bootstrap, topic)]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        seen = inserts = 0
        while seen < count:
            batches = await consumer.getmany(timeout_ms=1000, max_records=RAW_BATCH)
            records = [record for batch in batches.values() for record in batch]
            rows = [row for record in records if (row := _raw_row(record.value))]
            await asyncio.to_thread(store.insert, "raw_events", RAW_COLUMNS, rows)
            seen, inserts = seen + len(records), inserts + bool(rows)
    finally:
        await consumer.stop()
    return inserts


def raw_floor(bootstrap: str, topic: str, count: int, store_path: Path) -> Figures:
    started = time.monotonic()
    _quiet()
    store = open_store(f"chdb://{store_path}", "bench")
    store.execute("CREATE DATABASE IF NOT EXISTS bench")
    columns = ", ".join(f"{name} String" for name in RAW_COLUMNS)
    store.execute(f"CREATE TABLE bench.raw_events ({columns}) ENGINE = MergeTree ORDER BY visit_id")
    try:
        inserts = asyncio.run(_consume_raw(bootstrap, topic, count, store))
    finally:
        store.close()
    return _rate(count, time.monotonic() - started) | {"inserts": inserts}


# --- 2: a trivial Faust agent ------------------------------------------------------------


async def _count_with_faust(bootstrap: str, topic: str, count: int, take: bool, data: Path) -> None:
    import faust  # here, so that the line's time includes it as the worker's does

    app = faust.App(
        f"bench-trivial-{uuid.uuid4().hex[:8]}",
        broker=f"kafka://{bootstrap}",
        store="memory://",
        web_enabled=False,
        datadir=str(data),
        topic_disable_leader=True,
        consumer_auto_offset_reset="earliest",
        broker_commit_interval=1.0,
    )
    source = app.topic(topic, key_serializer="raw", value_serializer="raw")
    done, seen = asyncio.Event(), [0]

    def counted(n: int) -> None:
        seen[0] += n
        if seen[0] >= count:
            done.set()

    async def each(stream: Any) -> None:
        async for _event in stream:
            counted(1)

    async def batches(stream: Any) -> None:
        async for batch in stream.take(TAKE_BATCH, within=TAKE_WITHIN):
            counted(len(batch))

    app.agent(source, name="count")(batches if take else each)
    await app.start()
    try:
        await done.wait()
    finally:
        await app.stop()


def trivial_agent(bootstrap: str, topic: str, count: int, take: bool, data: Path) -> Figures:
    started = time.monotonic()
    _quiet()
    asyncio.run(_count_with_faust(bootstrap, topic, count, take, data))
    return _rate(count, time.monotonic() - started)


# --- 3: the worker -------------------------------------------------------------------------


def worker_line(
    settings: Settings, count: int, store_path: Path, profile: Path | None = None
) -> Figures:
    command = [sys.executable, "-m", "vizita", "worker", "--exit-when-done",
               "--store", f"chdb://{store_path}"]  # fmt: skip
    if profile is not None:
        # py-spy samples the worker from outside; the peak RSS is then py-spy's own.
        py_spy = str(Path(sys.executable).with_name("py-spy"))
        command = [py_spy, "record", "--rate", "50", "--format", "speedscope",
                   "--output", str(profile), "--", *command]  # fmt: skip
    started = time.monotonic()
    env = _env(settings, "event", settings.data_dir)
    process = subprocess.Popen(command, env=env)  # noqa: S603  # our own command, no shell
    peak_mb = _peak_rss_mb(process)
    seconds = time.monotonic() - started
    if process.returncode != 0:
        raise SystemExit(f"vizita worker exited with {process.returncode}")
    return _rate(count, seconds) | {"peak_rss_mb": peak_mb}


def _peak_rss_mb(process: subprocess.Popen[bytes]) -> float:
    """The child's own peak RSS, read from its VmHWM until it exits. Not wait4's
    ru_maxrss: Linux keeps in it the RSS the child had before exec, which is this
    process's own (1.9 GB once a year of payloads is simulated here)."""
    peak_kb = 0
    status = Path(f"/proc/{process.pid}/status")
    while process.poll() is None:
        with contextlib.suppress(OSError, ValueError, IndexError):  # exiting meanwhile
            peak_kb = max(peak_kb, int(status.read_text().split("VmHWM:")[1].split()[0]))
        time.sleep(RSS_POLL_SECONDS)
    return round(peak_kb / 1024, 1)


# --- 4: replay -----------------------------------------------------------------------------


def replay_line(bootstrap: str, events_file: Path, work: Path) -> Figures:
    _quiet()
    settings = Settings(
        kafka_bootstrap=bootstrap,
        topic_prefix="replay.",
        app_id="bench-replay",
        data_dir=work / "replay-data",
        store_url=f"chdb://{work / 'replay-store'}",
        log_level="warning",
    )
    store = open_store(settings.store_url.get_secret_value(), settings.database)
    started = time.monotonic()
    try:
        summary = replay(settings, store, events_file)
    finally:
        store.close()
    sent = {
        name: sum(end_offsets(bootstrap, settings.topic(name)).values())
        for name in (TOPIC_VISIT_CONTRIBUTIONS, TOPIC_INDICATORS)
    }
    return _rate(summary.read, time.monotonic() - started) | {
        "valid": summary.valid,
        "dead_lettered": summary.dead_lettered,
        "contributions_and_ticks": sent[TOPIC_VISIT_CONTRIBUTIONS],
        "indicator_rows_sent": sent[TOPIC_INDICATORS],
        "indicator_rows_stored": summary.indicator_rows_in_store,
    }


# --- 5: the SQL full recompute -------------------------------------------------------------

Key = tuple[Any, ...]


def _rows_by_key(rows: list[dict[str, Any]]) -> dict[Key, tuple[Any, ...]]:
    return {
        (r["municipality"], r["indicator"], int(r["window_days"]), r["as_of"]): (
            r["numerator"],
            r["denominator"],
            r["value"],
        )
        for r in rows
    }


def sql_line(store_path: Path) -> Figures:
    _quiet()
    store = open_store(f"chdb://{store_path}", "vizita")
    try:
        days = as_of_range(store)
        assert days is not None, "the worker stored no indicator values"
        sql = rolling_window_values(store.database, *days)
        started = time.monotonic()
        store.execute(sql)  # the engine's work alone: the rows go to a Null output
        seconds = time.monotonic() - started
        computed = _rows_by_key(store.query(sql))
        stream = _rows_by_key(
            store.query(
                "SELECT municipality, indicator, window_days, as_of, numerator, denominator, "
                f"value FROM {store.table(INDICATOR_VALUES)} FINAL"
            )
        )
        visits = store_totals(store)["visits"]
    finally:
        store.close()
    differences = sum(computed.get(key) != row for key, row in stream.items())
    differences += len(computed.keys() - stream.keys())
    return {
        "seconds": round(seconds, 2),
        "rows": len(computed),
        "visits": visits,
        "days": (days[1] - days[0]).days + 1,
        "differences_from_stream": differences,
    }


# --- 6: latency ----------------------------------------------------------------------------


@dataclass(frozen=True)
class ProbePlan:
    """One phase of the latency line: `count` probes at `rate` a second, from the
    monotonic instant `start_at` on (CLOCK_MONOTONIC is one clock for every process)."""

    bootstrap: str
    topic: str
    phase: str
    count: int
    rate: float
    start_at: float
    occurred_at: str  # ISO-8601, UTC

    @property
    def day(self) -> date:
        return local_day(datetime.fromisoformat(self.occurred_at))


def _probe(index: int, plan: ProbePlan, submitted: datetime) -> bytes:
    """A completed visit in municipality PROBE_SCOPES[index % 38], dated when its phase
    began (so a phase that runs past midnight still raises one day's row): it adds one
    to that municipality's 7-day `visits_completed` on that day."""
    event = {
        "schema_version": 1, "event_id": str(uuid.uuid4()),
        "visit_id": f"probe-{plan.phase}-{index}", "revision": 1, "op": "upsert",
        "occurred_at": plan.occurred_at, "submitted_at": submitted.isoformat(),
        "municipality": PROBE_SCOPES[index % len(PROBE_SCOPES)], "facility_id": None,
        "nurse_id": "n-probe", "household_id": f"hh-probe-{index}", "child_age_months": 12,
        "pregnant": False, "visit_type": "routine", "outcome": "completed",
        "topics": ["immunisation", "nutrition"], "risk_flags": [], "referrals": [],
    }  # fmt: skip
    return json.dumps(event, separators=(",", ":")).encode()


def publish_probes(plan: ProbePlan) -> list[float]:
    """Send the plan's probes on time; answer when each was handed to the producer."""
    producer = idempotent_producer(plan.bootstrap)
    sent = []
    try:
        for index in range(plan.count):
            time.sleep(max(0.0, plan.start_at + index / plan.rate - time.monotonic()))
            payload = _probe(index, plan, datetime.now(UTC))
            sent.append(time.monotonic())
            producer.send(plan.topic, key=key_of(payload), value=payload)
        producer.flush()
    finally:
        producer.close()
    return sent


def _numerators(store: Store, day: date) -> dict[str, tuple[int, float]]:
    """Per municipality, its probe row's numerator and when stage 2 computed it (in
    this process's monotonic clock)."""
    rows = store.query(
        f"SELECT municipality, numerator, toUnixTimestamp64Milli(computed_at) AS computed_ms "
        f"FROM {store.table(INDICATOR_VALUES)} FINAL "
        f"WHERE indicator = {literal('visits_completed')} AND window_days = {WEEK} "
        f"AND as_of = {literal(day)}"
    )
    to_monotonic = time.monotonic() - time.time()
    return {
        r["municipality"]: (int(r["numerator"]), int(r["computed_ms"]) / 1000 + to_monotonic)
        for r in rows
    }


@dataclass
class Watched:
    """Per probe: when its effect was first read back, and when stage 2 computed the
    row that showed it (None: not seen)."""

    seen: list[float | None]
    computed: list[float | None]


async def _watch(store: Store, plan: ProbePlan) -> Watched:
    """The n-th probe of a municipality has landed once its numerator is n above where
    it stood; it is read back when a query returns that."""
    baseline = {
        m: n for m, (n, _) in (await asyncio.to_thread(_numerators, store, plan.day)).items()
    }
    order: dict[str, list[int]] = {code: [] for code in PROBE_SCOPES}
    for index in range(plan.count):
        order[PROBE_SCOPES[index % len(PROBE_SCOPES)]].append(index)
    watched = Watched([None] * plan.count, [None] * plan.count)
    until = plan.start_at + plan.count / plan.rate + DRAIN_SECONDS
    while None in watched.seen and time.monotonic() < until:
        numerators = await asyncio.to_thread(_numerators, store, plan.day)
        now = time.monotonic()
        for code, indices in order.items():
            numerator, computed = numerators.get(code, (0, now))
            for index in indices[: numerator - baseline.get(code, 0)]:
                if watched.seen[index] is None:
                    watched.seen[index], watched.computed[index] = now, computed
        await asyncio.sleep(POLL_SECONDS)
    return watched


async def _second_worker(settings: Settings, work: Path, join: float, leave: float) -> Figures:
    """A `vizita worker --no-sink` in the group from monotonic `join` to `leave`."""
    await asyncio.sleep(max(0.0, join - time.monotonic()))
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "vizita", "worker", "--no-sink",
        env=_env(settings, "live", work / "second-worker"),
    )  # fmt: skip
    await asyncio.sleep(max(0.0, leave - time.monotonic()))
    process.terminate()  # SIGTERM: it leaves the group cleanly
    asked = time.monotonic()
    await process.wait()
    return {"exit_seconds": round(time.monotonic() - asked, 1), "returncode": process.returncode}


def _percentile(ordered: Sequence[float], share: float) -> float:
    """Nearest rank: the smallest value with at least `share` of them at or below it."""
    rank = max(1, -(-len(ordered) * share // 1))
    return ordered[int(rank) - 1]


def _worst_by_bucket(pairs: list[tuple[float, float]], start_at: float) -> list[float | None]:
    """The longest wait of the probes sent in each BUCKET_SECONDS of the phase: where
    in the minute the slow ones were (None: no probe seen from that stretch)."""
    worst: dict[int, float] = {}
    for moment, delay in pairs:
        bucket = int((moment - start_at) // BUCKET_SECONDS)
        worst[bucket] = max(worst.get(bucket, 0.0), delay)
    return [round(worst[b], 2) if b in worst else None for b in range(max(worst, default=-1) + 1)]


def _shares(delays: Sequence[float], prefix: str = "") -> Figures:
    ordered = sorted(delays)
    figures: Figures = {}
    for share in (0.5, 0.95, 0.99):
        figures[f"{prefix}p{round(share * 100)}_s"] = round(_percentile(ordered, share), 3)
    figures[f"{prefix}max_s"] = round(ordered[-1], 3)
    return figures


def _latencies(sent: list[float], watched: Watched, start_at: float) -> Figures:
    """Publish → read back, and its two parts: publish → computed by stage 2 (the
    stream), computed → read back (the sink, the store, the poll). A row read back may
    be a later computation than the probe's own, so the stream's part is an upper
    bound and the store's a lower one."""
    seen = [
        (s, t, c)
        for s, t, c in zip(sent, watched.seen, watched.computed, strict=True)
        if t is not None and c is not None
    ]
    figures: Figures = {"probes": len(sent), "seen": len(seen)}
    if seen:
        figures |= _shares([t - s for s, t, _ in seen])
        figures["max_by_5s"] = _worst_by_bucket([(s, t - s) for s, t, _ in seen], start_at)
        figures["stream"] = _shares([max(c - s, 0.0) for s, _, c in seen])
        figures["store"] = _shares([max(t - c, 0.0) for _, t, c in seen])
    return figures


async def _probe_phase(
    store: Store, settings: Settings, args: argparse.Namespace, phase: str, work: Path | None = None
) -> Figures:
    """Probes for `args.seconds` at `args.rate`; with `work`, a second worker joins
    and leaves meanwhile."""
    plan = ProbePlan(
        settings.kafka_bootstrap or "", settings.topic(TOPIC_VISITS), phase,
        round(args.rate * args.seconds), args.rate, time.monotonic() + PUBLISH_LEAD,
        datetime.now(UTC).isoformat(),
    )  # fmt: skip
    publishing = asyncio.create_task(in_own_process_async(publish_probes, plan))
    side = None
    if work is not None:
        join, leave = (plan.start_at + share * args.seconds for share in (JOIN_AT, LEAVE_AT))
        side = asyncio.create_task(_second_worker(settings, work, join, leave))
    watched = await _watch(store, plan)
    figures = _latencies(await publishing, watched, plan.start_at)
    if side is not None:
        figures["second_worker"] = await side | {
            "joined_at_s": JOIN_AT * args.seconds,
            "left_at_s": LEAVE_AT * args.seconds,
        }
    return figures


async def _latency(
    settings: Settings, store: Store, args: argparse.Namespace, work: Path
) -> Figures:
    started = time.monotonic()
    pipeline = Pipeline(settings, store)
    await pipeline.start()
    try:
        await pipeline.wait_until_ready()
        recovered = round(time.monotonic() - started, 1)  # tables read back, partitions held
        ends = await asyncio.to_thread(
            end_offsets, settings.kafka_bootstrap or "", settings.topic(TOPIC_VISITS)
        )
        await pipeline.wait_until_stored(ends)  # the restart's recompute is in the store
        figures: Figures = {
            "recovered_after_s": recovered,
            "ready_after_s": round(time.monotonic() - started, 1),
        }
        figures["steady"] = await _probe_phase(store, settings, args, "steady")
        if "rebalance" not in args.skip:
            figures["rebalance"] = await _probe_phase(store, settings, args, "rebalance", work)
    finally:
        await pipeline.stop()
    return figures


def latency_line(
    settings: Settings, store_path: Path, args: argparse.Namespace, work: Path
) -> Figures:
    """In this process: chdb lets one process open the store, so the probes are read
    back from the very Store the pipeline's sink writes to.

    The live clock, as a deployment runs: the clock day is today from the first tick,
    so today's rows exist before the first probe and each probe, dated today, only
    raises one of them. The event clock would show the probes too, but the first one
    would move the clock day from the history's last day to today inside the measured
    minute, which would then pay for a new day of every scope."""
    live = settings.model_copy(update={"clock": "live"})
    configure_logging(live.log_level, "console")  # the pipeline here logs as the workers do
    store = open_store(f"chdb://{store_path}", live.database)
    try:
        return asyncio.run(_latency(live, store, args, work))
    finally:
        store.close()


# --- targets, the table, the run -----------------------------------------------------------


def _target(name: str, figure: str, met: bool | None) -> Figures:
    return {"target": name, "figure": figure, "met": met}


def _ratio_target(figures: Figures) -> list[Figures]:
    agents = [figures[k]["events_per_s"] for k in ("faust_async_for", "faust_take") if k in figures]
    if not agents:
        return []
    ratio = figures["worker"]["events_per_s"] / max(agents)
    name = f"worker >= {TARGET_RATIO} x trivial Faust agent (the faster)"
    return [_target(name, f"{ratio:.3f} x", ratio >= TARGET_RATIO)]


def _year_targets(figures: Figures) -> list[Figures]:
    """The 1M-event targets: measured by a run of about that size (--year); a smaller
    run shows its figures without a verdict."""
    worker, events = figures["worker"], figures["events"]
    year = events >= YEAR_SCALE * TARGET_BACKFILL_EVENTS
    seconds = worker["seconds"]
    if not year:
        seconds *= TARGET_BACKFILL_EVENTS / events
    backfill = f"{seconds:,.0f} s" + ("" if year else " projected linearly (run --year)")
    rss = worker["peak_rss_mb"]
    return [
        _target(f"1M-event backfill <= {TARGET_BACKFILL_SECONDS:.0f} s", backfill,
                seconds <= TARGET_BACKFILL_SECONDS if year else None),
        _target(f"worker peak RSS <= {TARGET_RSS_MB:.0f} MB (1M events)",
                f"{rss:,.0f} MB at {events:,} events", rss <= TARGET_RSS_MB if year else None),
    ]  # fmt: skip


def _latency_targets(latency: Figures) -> list[Figures]:
    out = []
    for phase in ("steady", "rebalance"):
        if phase in latency and "p99_s" in latency[phase]:
            found = latency[phase]
            complete = found["seen"] == found["probes"]
            figure = f"{found['p99_s']:.2f} s" + (
                "" if complete else f", {found['probes'] - found['seen']} unseen"
            )
            out.append(
                _target(
                    f"p99 publish -> store <= {TARGET_P99_SECONDS:.0f} s ({phase})",
                    figure,
                    complete and found["p99_s"] <= TARGET_P99_SECONDS,
                )
            )
    return out


def targets(figures: Figures) -> list[Figures]:
    out = _ratio_target(figures) + _year_targets(figures) if "worker" in figures else []
    return out + _latency_targets(figures.get("latency", {}))


def _rate_text(line: Figures) -> str:
    return f"{line['events_per_s']:>10,.0f} events/s  ({line['seconds']:,.1f} s)"


def _latency_text(phase: Figures) -> str:
    if "p99_s" not in phase:
        return f"no probe seen of {phase['probes']}"
    parts = "".join(
        f"; {name} p50 {phase[name]['p50_s']:.2f} / p99 {phase[name]['p99_s']:.2f}"
        for name in ("stream", "store")
        if name in phase
    )
    return (
        f"p50 {phase['p50_s']:.2f} / p95 {phase['p95_s']:.2f} / p99 {phase['p99_s']:.2f} "
        f"/ max {phase['max_s']:.2f} s, {phase['seen']:,} of {phase['probes']:,} seen{parts}"
    )


THROUGHPUT_LINES = (
    ("publish", "publish: kafka-python, idempotent"),
    ("raw_floor", "1 raw floor: aiokafka getmany, json, INSERT a batch"),
    ("faust_async_for", "2 trivial Faust agent: async for"),
    ("faust_take", f"2 trivial Faust agent: take({TAKE_BATCH}, within={TAKE_WITHIN:g})"),
    ("worker", "3 vizita worker --exit-when-done"),
    ("replay", "4 vizita replay (publish, pipeline, store: 1 process)"),
)


def _throughput_rows(figures: Figures) -> list[tuple[str, str]]:
    rows = [(label, _rate_text(figures[key])) for key, label in THROUGHPUT_LINES if key in figures]
    if "worker" in figures:
        rss = figures["worker"]["peak_rss_mb"]
        rows.insert(len(rows) - ("replay" in figures), ("  worker peak RSS", f"{rss:>10,.0f} MB"))
    if "sql" in figures:
        sql = figures["sql"]
        rows.append(("5 SQL full recompute: rolling windows, all days",
                     f"{sql['seconds']:>10,.2f} s  ({sql['rows']:,} rows, {sql['days']} days, "
                     f"{sql['differences_from_stream']} differences from the stream)"))  # fmt: skip
    return rows


def _latency_rows(figures: Figures) -> list[tuple[str, str]]:
    latency = figures.get("latency", {})
    rows = []
    if "ready_after_s" in latency:
        recovered = f"{latency['recovered_after_s']:>10,.1f} s"
        rows.append(("6 restart on the history: tables recovered", recovered))
        ready = f"{latency['ready_after_s']:>10,.1f} s"
        rows.append(("6 restart on the history: ready and settled", ready))
    if "steady" in latency:
        label = f"6 latency at {figures['rate']:g} events/s"
        rows.append((label, _latency_text(latency["steady"])))
    if "rebalance" in latency:
        label = "6 latency, a second worker joins and leaves"
        rows.append((label, _latency_text(latency["rebalance"])))
    return rows


def print_report(figures: Figures) -> None:
    print(
        f"Vizita pipeline benchmark: {figures['events']:,} events ({figures['days']} days, "
        f"{figures['per_day']:,} visits a weekday), {figures['cpus']} CPUs, load "
        f"{figures['load_before']:.1f} before and {figures['load_after']:.1f} after"
    )
    for label, text in _throughput_rows(figures) + _latency_rows(figures):
        print(f"{label:<56}{text}")
    print()
    for target in figures["targets"]:
        met = {True: "met", False: "NOT met", None: "not measured"}[target["met"]]
        print(f"{target['target']:<56}{target['figure']:<44}{met}")
    print(json.dumps(figures, default=str))


LINES = ("raw", "faust", "worker", "sql", "replay", "latency", "rebalance")


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--days", type=int, default=DEFAULT_DAYS)
    parser.add_argument(
        "--per-day",
        type=int,
        default=DEFAULT_PER_DAY,
        help="visits on an average weekday, all of Kosovo",
    )
    parser.add_argument(
        "--year", action="store_true", help=f"{YEAR_DAYS} days x {YEAR_PER_DAY} (about 1M events)"
    )
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--rate", type=float, default=100.0, help="latency probes a second")
    parser.add_argument("--seconds", type=float, default=60.0, help="each latency phase")
    parser.add_argument(
        "--profile", type=Path, help="record the worker line with py-spy (speedscope JSON)"
    )
    parser.add_argument("--log-level", default="warning", help="of the pipeline and workers")
    parser.add_argument("--skip", default="", help=f"comma-separated, of: {', '.join(LINES)}")
    args = parser.parse_args(argv)
    args.skip = set(filter(None, args.skip.split(",")))
    if unknown := args.skip - set(LINES):
        parser.error(f"unknown line(s) to skip: {', '.join(sorted(unknown))}")
    if args.year:
        args.days, args.per_day = YEAR_DAYS, YEAR_PER_DAY
    return args


def _events(args: argparse.Namespace, settings: Settings, work: Path) -> tuple[int, Figures]:
    """Simulate, publish, and keep a copy for the replay line; the payloads are not held
    in this process afterwards."""
    config = SimulationConfig(seed=args.seed, days=args.days, visits_per_day=args.per_day)
    payloads = simulate(config)
    if "replay" not in args.skip:
        write_jsonl(payloads, work / "events.jsonl")
    return len(payloads), publish_line(payloads, settings)


def run_lines(args: argparse.Namespace, bootstrap: str, work: Path) -> Figures:
    settings = Settings(kafka_bootstrap=bootstrap, data_dir=work / "data", log_level=args.log_level)
    ensure_pipeline_topics(settings)
    count, published = _events(args, settings, work)
    topic, skip = settings.topic(TOPIC_VISITS), args.skip
    figures: Figures = {
        "events": count,
        "days": args.days,
        "per_day": args.per_day,
        "rate": args.rate,
        "publish": published,
    }
    if "raw" not in skip:
        figures["raw_floor"] = in_own_process(raw_floor, bootstrap, topic, count, work / "raw")
    if "faust" not in skip:
        for key, take in (("faust_async_for", False), ("faust_take", True)):
            figures[key] = in_own_process(
                trivial_agent, bootstrap, topic, count, take, work / "faust"
            )
    if "worker" in skip:
        return figures
    store_path = work / "store"
    figures["worker"] = worker_line(settings, count, store_path, args.profile)
    if "sql" not in skip:
        figures["sql"] = in_own_process(sql_line, store_path)
    if "replay" not in skip:
        figures["replay"] = in_own_process(replay_line, bootstrap, work / "events.jsonl", work)
    if "latency" not in skip:
        figures["latency"] = latency_line(settings, store_path, args, work)
    return figures


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    _quiet()
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="vizita-bench-") as tmp:
        work = Path(tmp)
        with LocalBroker(work / "kafka", Settings().kafka_cache_dir) as broker:
            figures = run_lines(args, broker.bootstrap, work)
    figures |= {"cpus": os.cpu_count(), "load_before": round(load_before, 2),
                "load_after": round(os.getloadavg()[0], 2)}  # fmt: skip
    figures["targets"] = targets(figures)
    print_report(figures)


if __name__ == "__main__":
    main()
