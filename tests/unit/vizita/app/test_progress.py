"""The progress of a replay, the demo's history or a backfill: its numbers as pure
functions (rate, time left, percent), the bar as it is drawn, the JSON lines as they
are logged, the runner's counts, and the demo's history size."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import date, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import pytest
from rich.console import Console
from structlog.testing import capture_logs

import vizita.app.progress
from producers.simulator import SimulationConfig, simulate_submissions
from vizita.app.demo import history_size
from vizita.app.progress import (
    Meter,
    Progress,
    Reading,
    clock_text,
    eta,
    percent,
    rate,
    render,
    showing_progress,
)
from vizita.app.runner import Pipeline
from vizita.contract.days import LOCAL_TZ
from vizita.contract.settings import Settings

# --- the numbers -------------------------------------------------------------------------


def test_the_rate_is_events_a_second_between_the_first_and_last_sample() -> None:
    assert rate([(10.0, 100), (12.0, 300), (14.0, 900)]) == 200.0
    assert rate([(0.0, 0), (0.5, 250)]) == 500.0


def test_no_rate_before_two_samples_apart_in_time() -> None:
    assert rate([]) is None
    assert rate([(3.0, 10)]) is None
    assert rate([(3.0, 10), (3.0, 20)]) is None


def test_a_count_that_went_down_is_no_negative_rate() -> None:
    assert rate([(0.0, 50), (1.0, 40)]) == 0.0


def test_time_left_is_what_remains_over_the_rate() -> None:
    assert eta(1000, 400, 200.0) == 3.0
    assert eta(1000, 999, 0.5) == 2.0


def test_time_left_is_zero_once_done_and_unknown_without_a_total_or_a_rate() -> None:
    assert eta(1000, 1000, None) == 0.0
    assert eta(1000, 1200, 5.0) == 0.0  # more than planned (a few live events, the demo)
    assert eta(None, 10, 5.0) is None
    assert eta(1000, 10, None) is None
    assert eta(1000, 10, 0.0) is None  # nothing moves: no "forever"


def test_percent_is_rounded_down_so_100_means_all() -> None:
    assert percent(999, 1000) == "99%"
    assert percent(1000, 1000) == "100%"
    assert percent(1001, 1000) == "100%"
    assert percent(0, 1000) == "0%"
    assert percent(5, None) == ""
    assert percent(0, 0) == ""


def test_clock_text() -> None:
    assert clock_text(None) == "-:--"
    assert clock_text(0.4) == "0:00"
    assert clock_text(75) == "1:15"
    assert clock_text(3600 + 62) == "1:01:02"


def test_the_meter_rates_over_the_last_window_only() -> None:
    meter = Meter(window=10.0)
    for second in range(21):  # 10 events a second for 10 s, then 100 a second
        processed = 10 * second if second <= 10 else 100 + 100 * (second - 10)
        reading = meter.read(Progress(total=5000, processed=processed), float(second))
    assert reading.rate == 100.0
    assert reading.eta == (5000 - 1100) / 100.0
    assert meter.samples[0][0] == 10.0  # one sample as old as the window


def test_a_reading_has_readable_numbers() -> None:
    progress = Progress(total=1284, published=1284, processed=873, stored=4321,
                        waiting_for="stage 1")  # fmt: skip
    fields = Reading(progress, 412.345, 1.0194).fields()
    assert fields == {
        "published": 1284, "processed": 873, "stored": 4321, "total": 1284,
        "rate_per_second": 412.3, "eta_seconds": 1, "waiting_for": "stage 1",
    }  # fmt: skip
    assert Reading(Progress(), None, None).fields()["rate_per_second"] is None


# --- the bar ---------------------------------------------------------------------------------


def drawn(reading: Reading) -> str:
    console = Console(width=100, record=True, color_system=None)
    console.print(render("vizita replay f.jsonl", reading))
    return console.export_text()


def test_the_bar_shows_published_processed_stored_rate_and_time_left() -> None:
    progress = Progress(total=1284, published=1284, processed=873, stored=4321,
                        waiting_for="stage 1")  # fmt: skip
    lines = drawn(Reading(progress, 412.0, 1.0)).splitlines()
    assert lines[0].strip() == "vizita replay f.jsonl"
    assert lines[1].startswith("published ━")
    assert "100% 1,284 of 1,284" in lines[1]
    assert lines[2].startswith("processed ━")
    assert lines[2].split()[2:] == ["67%", "873", "of", "1,284", "412", "events/s", "0:01", "left"]
    assert lines[3].split() == ["stored", "4,321", "rows", "waiting", "for", "stage", "1"]
    assert all(len(line) <= 100 for line in lines)


def test_the_bar_when_done_and_without_a_total() -> None:
    done = drawn(Reading(Progress(total=10, published=10, processed=10, stored=1,
                                  waiting_for=None), 5.0, 0.0))  # fmt: skip
    assert "100% 10 of 10" in done
    assert "1 row " in done
    assert done.rstrip().endswith("done")
    backfill = drawn(Reading(Progress(processed=7), None, None))
    assert "7" in backfill
    assert "left" not in backfill
    assert "%" not in backfill


# --- the lines -------------------------------------------------------------------------------


def test_without_a_terminal_a_line_every_period_and_a_last_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(vizita.app.progress, "LOG_EVERY_SECONDS", 0.05)
    progress = Progress(total=100)

    async def run() -> None:
        async with showing_progress("replay", "title", lambda: Progress(**vars(progress)),
                                    bar=False):  # fmt: skip
            for n in range(1, 11):
                progress.published = progress.processed = 10 * n
                await asyncio.sleep(0.02)
            progress.stored, progress.waiting_for = 250, None

    with capture_logs() as logs:
        asyncio.run(run())
    assert logs
    assert {line["event"] for line in logs} == {"replay.progress"}
    assert len(logs) >= 3  # about one each 0.05 s of the 0.2 s, then the last
    last = logs[-1]
    assert last["finished"] is True
    final = ("published", "processed", "stored", "total", "eta_seconds")
    assert {k: last[k] for k in final} == {
        "published": 100, "processed": 100, "stored": 250, "total": 100, "eta_seconds": 0,
    }  # fmt: skip
    assert last["rate_per_second"] > 0
    assert all("finished" not in line for line in logs[:-1])


def test_the_last_line_comes_even_when_the_run_fails() -> None:
    async def run() -> None:
        async with showing_progress("demo", "title", lambda: Progress(total=5, published=2),
                                    bar=False):  # fmt: skip
            raise RuntimeError("broken")

    with capture_logs() as logs, pytest.raises(RuntimeError, match="broken"):
        asyncio.run(run())
    assert [(line["event"], line["published"], line["finished"]) for line in logs] == [
        ("demo.progress", 2, True)]  # fmt: skip


# --- where the numbers come from -------------------------------------------------------------


def test_the_runner_counts_finished_events_and_stored_rows() -> None:
    pipeline = Pipeline(Settings(), store=None)
    pipeline.progress.total, pipeline.progress.published = 10, 10
    counts = Counter(valid=5, duplicate=2, dead_lettered=1, rekeyed=3)  # re-keyed: come back
    # Only these are read: the stage counters and the sink's rows.
    streams: Any = SimpleNamespace(stats=SimpleNamespace(counts=counts))
    sink: Any = SimpleNamespace(stored=Counter(visits=6, indicator_values=30))
    pipeline.streams, pipeline.sink = streams, sink
    seen = pipeline.progress_now()
    assert (seen.total, seen.published, seen.processed, seen.stored) == (10, 10, 8, 36)
    counts["valid"] += 2
    assert seen.processed == 8  # a copy: what was shown stays as it was
    assert pipeline.progress_now().processed == 10


def test_the_demo_history_is_what_arrived_before_the_start() -> None:
    config = SimulationConfig(seed=3, start=date(2026, 3, 2), days=6, visits_per_day=15)
    at = datetime(2026, 3, 8, tzinfo=LOCAL_TZ)  # midnight after its last day
    arrived = [s for s in simulate_submissions(config) if s.arrival <= at]
    assert history_size(config, at) == len(arrived) > 0
    earlier = at - timedelta(days=2)
    assert history_size(config, earlier) == sum(
        1 for s in simulate_submissions(config) if s.arrival <= earlier
    )


def test_a_deadline_on_the_wait_leaves_no_failure_watch_behind(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The demo's --duration may end while the history loads: the stop that follows
    must not be taken for a part failing."""
    pipeline = Pipeline(Settings(), store=None)
    watches: list[asyncio.Task[Any]] = []

    async def forever(*args: Any) -> Any:
        task = asyncio.current_task()
        assert task is not None
        watches.append(task)
        await asyncio.Event().wait()

    monkeypatch.setattr(pipeline, "wait_until_stored", forever)
    monkeypatch.setattr(pipeline, "failed", forever)

    async def run() -> None:
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.05):
                await pipeline.until_stored_or_failed({})
        await asyncio.sleep(0)
        assert len(watches) == 2
        assert all(watch.cancelled() for watch in watches)

    asyncio.run(run())
