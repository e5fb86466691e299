"""`vizita demo`: a local broker, the pipeline, the embedded store and the simulator,
with a live view of what the store holds per municipality."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from producers.publish import idempotent_producer, key_of
from producers.simulator import SimulationConfig, iter_live
from sinks.migrations import migrate
from sinks.queries import (
    active_alerts,
    dead_letters_by_reason,
    indicator_rows,
    latest_as_of,
    recent_alerts,
)
from sinks.store import Store, open_store
from vizita.app.broker import kafka_for
from vizita.app.progress import Progress, bar_wanted, showing_progress
from vizita.app.report import save_report
from vizita.app.runner import Pipeline
from vizita.app.views import alerted_keys, marks_of, value_text, values_at_alert_window
from vizita.contract.days import LOCAL_TZ
from vizita.contract.display import (
    Mark,
    format_target,
    format_value,
    municipality_label,
    severity,
    short,
    title,
    worst_first,
)
from vizita.contract.indicators import INDICATORS
from vizita.contract.municipalities import ALL_KOSOVO
from vizita.contract.settings import Settings
from vizita.contract.targets import Targets, load_targets
from vizita.contract.topics import TOPIC_VISITS
from vizita.kafka.admin import bootstrap_of, end_offsets, ensure_pipeline_topics

Row = Mapping[str, Any]

# Simulated time runs this much faster than the wall clock once the history is in.
DEMO_SPEED = 720.0  # one simulated hour every five seconds


def accelerated_clock(speed: float) -> Callable[[], datetime]:
    started = datetime.now(LOCAL_TZ)

    def now() -> datetime:
        return started + (datetime.now(LOCAL_TZ) - started) * speed

    return now


class _Waits(Exception):  # a signal within history_size, never raised out of it
    """iter_live would wait for its clock: what came before is the history."""


def history_size(config: SimulationConfig, at: datetime) -> int:
    """How many payloads `iter_live` sends before its clock passes `at`: the history the
    demo loads at full speed (counted with the clock stopped at `at`)."""

    def waits(_seconds: float) -> None:
        raise _Waits

    count = 0
    with contextlib.suppress(_Waits):
        for _ in iter_live(config, now=lambda: at, sleep=waits):
            count += 1
    return count


@dataclass
class History:
    """The history the demo loads first: its progress, the `visits` offsets before it,
    and whether the producer has ended (then no more of it comes)."""

    progress: Progress
    before: dict[int, int]
    ended: threading.Event = field(default_factory=threading.Event)

    def sent(self) -> bool:
        return self.ended.is_set() or self.progress.published >= (self.progress.total or 0)


def _produce(
    settings: Settings, config: SimulationConfig, stop: threading.Event, history: History
) -> None:
    """The simulated stream, history first; its first `progress.total` payloads (the
    history) are counted into the progress as the producer takes them."""
    producer = idempotent_producer(bootstrap_of(settings))
    topic = settings.topic(TOPIC_VISITS)
    clock = accelerated_clock(DEMO_SPEED)
    progress = history.progress
    try:
        for sent, payload in enumerate(iter_live(config, now=clock), start=1):
            if stop.is_set():
                break
            # Received at the simulated time: the phones' clocks run as fast as the demo's.
            received_ms = int(clock().timestamp() * 1000)
            producer.send(topic, key=key_of(payload), value=payload, timestamp_ms=received_ms)
            if sent <= (progress.total or 0):
                progress.published = sent
    finally:
        history.ended.set()
        producer.close()


# The live view pages through the municipalities, worst first, a page this often.
PAGE_SECONDS = 5.0
FEED_LINES = 8  # alert transitions shown, newest first
NAME_MIN = 12  # the municipality column is never narrower


@dataclass(frozen=True)
class ViewData:
    """What the live view shows, read once a second."""

    as_of: date | None
    monthly: Mapping[tuple[str, str], Row]  # (scope, indicator) -> 30-day row
    alerts: Sequence[Row]  # active
    feed: Sequence[Row]  # the latest transitions, newest first
    dead_letters: Sequence[Row]  # reason, n
    targets: Targets


def read_view(store: Store, targets: Targets) -> ViewData:
    as_of = latest_as_of(store)
    rows = indicator_rows(store, as_of) if as_of else []
    return ViewData(
        as_of, values_at_alert_window(rows), active_alerts(store),
        recent_alerts(store, FEED_LINES), dead_letters_by_reason(store), targets,
    )  # fmt: skip


def shown_indicators(targets: Targets) -> list[str]:
    """The columns: the indicators with a target somewhere, in the contract's order."""
    held = {str(n) for n in targets.defaults}
    held |= {str(n) for own in targets.municipalities.values() for n in own}
    return [name for name in INDICATORS if name in held]


def _fit(text: str, width: int) -> str:
    return text if len(text) <= width else text[: max(0, width - 1)] + "…"


def _heading(data: ViewData) -> Text:
    letters = sum(int(r["n"]) for r in data.dead_letters)
    top = f" (most: {data.dead_letters[0]['reason']})" if data.dead_letters else ""
    return Text(
        f"Vizita demo · 30 days to {data.as_of or '—'} · active alerts {len(data.alerts)} · "
        f"dead letters {letters}{top}", style="bold",
    )  # fmt: skip


def _table(data: ViewData, names: list[str], codes: list[str], *, rank: Mapping[str, int],
           marks: Mapping[str, Mapping[str, Mark]], width: int) -> Table:  # fmt: skip
    value_width = max([8, *(len(short(n)) for n in names)])
    name_width = max(NAME_MIN, width - 3 - 4 - (value_width + 1) * len(names) - 1)
    table = Table(box=None, pad_edge=False, padding=(0, 1, 0, 0), show_edge=False)
    table.add_column("#", justify="right", width=2, no_wrap=True)
    table.add_column("municipality", width=name_width, no_wrap=True, overflow="ellipsis")
    table.add_column("bhd", justify="right", width=3, no_wrap=True)
    for name in names:
        table.add_column(short(name), justify="right", width=value_width, no_wrap=True)

    def value(code: str, name: str) -> Text:
        # No denominators: the columns are too narrow; `vizita indicators` has them.
        row = {"value": data.monthly.get((code, name), {}).get("value")}
        return value_text(name, row, data.targets, code, marks.get(code, {}).get(name))

    kosovo = _fit(municipality_label(ALL_KOSOVO), name_width)
    table.add_row("", kosovo, "", *(value(ALL_KOSOVO, n) for n in names), style="bold")
    for code in codes:
        behind = severity(marks[code].values())[0]
        label = _fit(municipality_label(code), name_width)
        table.add_row(str(rank[code]), label, str(behind or ""), *(value(code, n) for n in names))
    return table


def _feed(data: ViewData, width: int, lines: int) -> list[Text]:
    if not data.feed:
        return [Text("no alert transitions yet", style="dim")]
    out = []
    for alert in list(data.feed)[:lines]:
        code, name = str(alert["municipality"]), str(alert["indicator"])
        target = data.targets.for_municipality(code).get(name)
        value = format_value(name, alert["value"], target)
        if alert["denominator"] is not None:
            value += f" (of {alert['denominator']})"
        line = (f"{alert['as_of']} {alert['state']:<8} {municipality_label(code)}: "
                f"{title(name)} {value}, target {format_target(name, target)}")  # fmt: skip
        out.append(Text(_fit(line, width), style="bold" if alert["state"] == "raised" else ""))
    return out


def render_view(data: ViewData, width: int, height: int, page: int) -> Group:
    """The view in `width` x `height` characters: a heading, Kosovo, one page of the
    municipalities worst first (`page` turns through the rest), the alert feed."""
    names = shown_indicators(data.targets)
    marks = marks_of(data.monthly, data.targets, alerted_keys(data.alerts), names)
    order = worst_first({code: found.values() for code, found in marks.items()})
    rank = {code: n for n, code in enumerate(order, start=1)}
    feed_lines = min(FEED_LINES, max(1, height // 5))
    per_page = max(1, height - 4 - 1 - feed_lines - 1)  # heading, header, Kosovo, pager, feed
    pages = max(1, -(-len(order) // per_page))
    first = (page % pages) * per_page
    shown = order[first : first + per_page]
    pager = Text(
        f"municipalities {first + 1} to {first + len(shown)} of {len(order)}, worst first"
        + (f"; page {page % pages + 1}/{pages}, turning every {PAGE_SECONDS:g} s"
           if pages > 1 else ""), style="dim",
    )  # fmt: skip
    return Group(
        _heading(data),
        _table(data, names, shown, rank=rank, marks=marks, width=width),
        pager,
        Text(f"Alert feed (newest first), {len(data.alerts)} active:", style="bold"),
        *_feed(data, width, feed_lines),
    )


async def _frame(store: Store, targets: Targets, console: Console | None) -> Group:
    data = await asyncio.to_thread(read_view, store, targets)
    width, height = console.size if console is not None else Console().size
    return render_view(data, width, height, page=int(time.monotonic() // PAGE_SECONDS))


async def _load_history(
    pipeline: Pipeline, history: History, bar: bool, deadline: float | None
) -> bool:
    """Until the history is published, processed and stored, with its progress shown;
    False if the deadline (`--duration`) came first."""
    total = history.progress.total or 0
    shown = showing_progress("demo", f"vizita demo: {total:,} events of history",
                             pipeline.progress_now, bar=bar)  # fmt: skip
    timeout = asyncio.timeout_at(deadline)
    try:
        async with shown, timeout:
            history.progress.waiting_for = "the simulator"
            while not history.sent():  # noqa: ASYNC110  # the producer is a thread: polled
                await asyncio.sleep(0.2)
            await pipeline.until_stored_or_failed(history.before)
    except TimeoutError:
        if not timeout.expired():
            raise  # not the deadline's
        return False
    return True


async def _watch(settings: Settings, targets: Targets, store: Store, duration: float | None,
                 history: History) -> None:  # fmt: skip
    """The history's progress, then the live view, until `duration` is over."""
    pipeline = Pipeline(settings, store, targets, progress=history.progress)
    await pipeline.start()
    loop = asyncio.get_running_loop()
    deadline = None if duration is None else loop.time() + duration
    try:
        if not await _load_history(pipeline, history, bar_wanted(settings.log_format), deadline):
            return
        with Live(await _frame(store, targets, None), refresh_per_second=1,
                  vertical_overflow="crop") as live:  # fmt: skip
            while deadline is None or loop.time() < deadline:
                await asyncio.sleep(1.0)
                live.update(await _frame(store, targets, live.console))
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
    # Counted before the producer's clock starts: all of it comes without a wait.
    progress = Progress(total=history_size(config, datetime.now(LOCAL_TZ)))
    stop = threading.Event()
    try:
        with kafka_for(settings) as live:
            ensure_pipeline_topics(live)
            history = History(progress, end_offsets(bootstrap_of(live), live.topic(TOPIC_VISITS)))
            producer = threading.Thread(target=_produce, args=(live, config, stop, history),
                                        daemon=True)  # fmt: skip
            producer.start()
            with contextlib.suppress(KeyboardInterrupt):
                asyncio.run(_watch(live, targets, store, duration, history))
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
