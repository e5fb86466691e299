"""How far a replay, the demo's history load or a worker's backfill has come: a bar on
a terminal, a JSON line every 10 s anywhere else (README "Command line", "Logs").

The numbers come from one place, a `Progress` the runner fills (`Pipeline.progress_now`):
the publisher counts what it sent, stage 1 what it processed, the sink what it stored.
What is shown is derived from it here, by pure functions (`reading`, `rate`, `eta`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from typing import Any

import structlog
from rich.console import Console, JustifyMethod, RenderableType
from rich.live import Live
from rich.progress_bar import ProgressBar
from rich.table import Table

log = structlog.get_logger(__name__)

#: a line this often when the progress is logged rather than drawn
LOG_EVERY_SECONDS = 10.0
#: the bar is redrawn this often (and the numbers read)
DRAW_EVERY_SECONDS = 0.25
#: the rate is over the last this many seconds: recent enough to follow a change of
#: pace, long enough not to jump with every batch
RATE_WINDOW_SECONDS = 10.0
BAR_WIDTH = 40
COLUMNS: tuple[JustifyMethod, ...] = ("left", "left", "right", "right", "left")


@dataclass
class Progress:
    """What a run has done so far, counted since its pipeline started in this process."""

    total: int | None = None  # events to publish, when known (not for a worker)
    published: int = 0  # events handed to Kafka
    processed: int = 0  # events stage 1 has finished with: valid, duplicate, dead-lettered
    stored: int = 0  # rows the sink has written to the store (every version of a row)
    waiting_for: str | None = "start"  # what the run waits for now; None: for nothing


@dataclass(frozen=True)
class Reading:
    """A `Progress` at one moment, with its rate (processed events a second) and the
    seconds left at that rate; None while unknown."""

    progress: Progress
    rate: float | None
    eta: float | None

    def fields(self) -> dict[str, Any]:
        """The numbers as the JSON line has them: plain counts, a rounded rate."""
        p = self.progress
        return {
            "published": p.published, "processed": p.processed, "stored": p.stored,
            "total": p.total,
            "rate_per_second": None if self.rate is None else round(self.rate, 1),
            "eta_seconds": None if self.eta is None else round(self.eta),
            "waiting_for": p.waiting_for,
        }  # fmt: skip


def rate(samples: list[tuple[float, int]]) -> float | None:
    """Events a second between the first and last (seconds, count) sample; None before
    two samples apart in time."""
    if not samples:
        return None
    (start, first), (end, last) = samples[0], samples[-1]
    if end <= start:
        return None
    return max(0.0, (last - first) / (end - start))


def eta(total: int | None, done: int, per_second: float | None) -> float | None:
    """Seconds until `done` reaches `total` at `per_second`: 0 once there; None without a
    total or while nothing moves (a time left of "forever" says nothing)."""
    if total is None:
        return None
    if done >= total:
        return 0.0
    if not per_second:
        return None
    return (total - done) / per_second


def clock_text(seconds: float | None) -> str:
    """Seconds as h:mm:ss (or m:ss under an hour); "-:--" when unknown."""
    if seconds is None:
        return "-:--"
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02}:{secs:02}" if hours else f"{minutes}:{secs:02}"


def percent(done: int, total: int | None) -> str:
    """Whole percent, rounded down: "100%" only when all of it is done."""
    if not total:
        return ""
    return f"{min(100, done * 100 // total)}%"


class Meter:
    """Samples of the processed count over the rate window, turned into readings."""

    def __init__(self, window: float = RATE_WINDOW_SECONDS) -> None:
        self.window = window
        self.samples: deque[tuple[float, int]] = deque()

    def read(self, progress: Progress, now: float) -> Reading:
        self.samples.append((now, progress.processed))
        # Keep one sample older than the window, so the rate always spans it.
        while len(self.samples) > 1 and now - self.samples[1][0] >= self.window:
            self.samples.popleft()
        per_second = rate(list(self.samples))
        return Reading(progress, per_second, eta(progress.total, progress.processed, per_second))


def render(title: str, reading: Reading) -> RenderableType:
    """The bar: published and processed against the total, stored rows, rate, time left."""
    p = reading.progress
    grid = Table.grid(padding=(0, 1))
    for justify in COLUMNS:
        grid.add_column(justify=justify, no_wrap=True)
    of = f" of {p.total:,}" if p.total is not None else ""
    pace = "" if reading.rate is None else f"{reading.rate:,.0f} events/s"
    left = f"{clock_text(reading.eta)} left" if p.total is not None else ""
    for label, done in (("published", p.published), ("processed", p.processed)):
        bar = ProgressBar(total=p.total, completed=done, width=BAR_WIDTH)
        extra = f"{pace}  {left}" if label == "processed" else ""
        grid.add_row(label, bar, percent(done, p.total), f"{done:,}{of}", extra)
    state = "done" if p.waiting_for is None else f"waiting for {p.waiting_for}"
    rows = f"{p.stored:,} row" + ("" if p.stored == 1 else "s")
    grid.add_row("stored", rows, "", "", state)
    title_grid = Table.grid()
    title_grid.add_row(f"[bold]{title}[/bold]")
    title_grid.add_row(grid)
    return title_grid


def bar_wanted(log_format: str) -> bool:
    """A bar when stderr is a terminal, unless JSON logs were asked for there."""
    return sys.stderr.isatty() and log_format != "json"


@contextlib.contextmanager
def _logs_above(live: Live) -> Iterator[None]:
    """Log lines printed above the bar while it is drawn: the handlers on stderr write
    through the bar's console (which redraws below them) instead of over the bar."""
    proxy = sys.stderr  # Live has put its proxy there (redirect_stderr)
    moved = [h for h in logging.getLogger().handlers
             if isinstance(h, logging.StreamHandler) and h.stream is live.console.file]  # fmt: skip
    if proxy is live.console.file:  # not redirected (no terminal after all)
        moved = []
    for handler in moved:
        handler.setStream(proxy)
    try:
        yield
    finally:
        for handler in moved:
            handler.setStream(live.console.file)


async def _draw(title: str, source: Callable[[], Progress], meter: Meter, live: Live) -> None:
    while True:
        live.update(render(title, meter.read(source(), time.monotonic())))
        await asyncio.sleep(DRAW_EVERY_SECONDS)


async def _log(task: str, source: Callable[[], Progress], meter: Meter) -> None:
    while True:
        await asyncio.sleep(LOG_EVERY_SECONDS)
        log.info(f"{task}.progress", **meter.read(source(), time.monotonic()).fields())


@contextlib.asynccontextmanager
async def showing_progress(
    task: str, title: str, source: Callable[[], Progress], *, bar: bool
) -> AsyncIterator[None]:
    """While the body runs: the bar (`bar`) or a `<task>.progress` line every
    LOG_EVERY_SECONDS; when it ends, the last reading (drawn, or a line with
    finished=true) whether it succeeded or not, so the numbers end where the run did."""
    meter = Meter()
    meter.read(source(), time.monotonic())
    if not bar:
        ticker = asyncio.create_task(_log(task, source, meter), name=f"{task}-progress")
        try:
            yield
        finally:
            await _cancelled(ticker)
            final = meter.read(source(), time.monotonic())
            log.info(f"{task}.progress", **final.fields(), finished=True)
        return
    console = Console(stderr=True)
    with Live(console=console, redirect_stdout=False, transient=False,
              refresh_per_second=1 / DRAW_EVERY_SECONDS) as live, _logs_above(live):  # fmt: skip
        drawer = asyncio.create_task(_draw(title, source, meter, live), name=f"{task}-bar")
        try:
            yield
        finally:
            await _cancelled(drawer)
            live.update(render(title, meter.read(source(), time.monotonic())), refresh=True)


async def _cancelled(task: asyncio.Task[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
