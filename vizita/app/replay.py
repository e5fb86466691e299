"""`vizita replay FILE`: publish a JSONL file, run the pipeline until all of it is
stored, and say what happened to it."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

from producers.publish import publish, read_lines
from sinks.migrations import migrate
from sinks.schema import ACTIVE_ALERTS, DEAD_LETTERS, INDICATOR_VALUES, VISITS
from sinks.store import Store
from vizita.app.progress import Progress, bar_wanted, showing_progress
from vizita.app.runner import Pipeline
from vizita.contract.settings import Settings
from vizita.contract.targets import Targets, load_targets
from vizita.contract.topics import TOPIC_VISITS
from vizita.kafka.admin import bootstrap_of, end_offsets, ensure_pipeline_topics


@dataclass(frozen=True)
class ReplaySummary:
    read: int  # lines published
    valid: int  # lines that passed validation (duplicates included)
    duplicates: int  # valid lines whose event_id the visit had already seen
    dead_lettered: int  # invalid lines, now in visits-dlq and dead_letters
    rows_stored: int  # rows the sink wrote, every version of a row (the progress's "stored")
    seconds: float
    visits_in_store: int  # `visits` rows of existing (not voided) visits, whole store
    voided_in_store: int
    dead_letters_in_store: int
    indicator_rows_in_store: int
    active_alerts: int

    def as_dict(self) -> dict[str, float | int]:
        return asdict(self)


def store_counts(store: Store) -> tuple[int, ...]:
    visits = store.query(
        f"SELECT countIf(NOT is_void) AS live, countIf(is_void) AS void "
        f"FROM {store.table(VISITS)} FINAL"
    )[0]
    counts = [int(visits["live"]), int(visits["void"])]
    for table, final in ((DEAD_LETTERS, "FINAL"), (INDICATOR_VALUES, "FINAL"), (ACTIVE_ALERTS, "")):
        counts.append(
            int(store.query(f"SELECT count() AS n FROM {store.table(table)} {final}")[0]["n"])
        )
    return tuple(counts)


def _counted(lines: Iterator[bytes], progress: Progress) -> Iterator[bytes]:
    """The lines, counted into the progress as the producer takes them (in its thread;
    the only writer of `published`)."""
    for line in lines:
        yield line
        progress.published += 1


async def _run(
    settings: Settings, targets: Targets, store: Store, path: Path
) -> tuple[int, dict[str, int], Progress]:
    pipeline = Pipeline(settings, store, targets)
    pipeline.progress.total = await asyncio.to_thread(lambda: sum(1 for _ in read_lines(path)))
    shown = showing_progress("replay", f"vizita replay {path.name}", pipeline.progress_now,
                             bar=bar_wanted(settings.log_format))  # fmt: skip
    async with shown:
        await pipeline.start()
        try:
            # Publish once the workers hold their partitions, so that the start-up
            # rebalance does not make the first seconds of the replay processed twice.
            await pipeline.wait_until_ready()
            pipeline.progress.waiting_for = "stage 1"
            topic = settings.topic(TOPIC_VISITS)
            before = await asyncio.to_thread(end_offsets, bootstrap_of(settings), topic)
            lines = _counted(read_lines(path), pipeline.progress)
            read = await asyncio.to_thread(publish, lines, bootstrap_of(settings), topic)
            pipeline.progress.published = read  # acknowledged, now
            await pipeline.until_stored_or_failed(before)
        finally:
            await pipeline.stop()
    return read, dict(pipeline.running.stats.counts), pipeline.progress_now()


def replay(
    settings: Settings, store: Store, path: Path, targets: Targets | None = None
) -> ReplaySummary:
    """Needs `settings.kafka_bootstrap` set (see `vizita.app.broker.kafka_for`). The
    clock is the event clock: the latest day of any valid upsert (SPEC §2)."""
    settings = settings.model_copy(update={"clock": "event"})
    targets = targets or load_targets(settings.targets_file)
    started = time.monotonic()
    migrate(store, settings.dead_letter_retention_days)
    ensure_pipeline_topics(settings)
    read, counts, progress = asyncio.run(_run(settings, targets, store, path))
    valid = counts.get("valid", 0) + counts.get("duplicate", 0)
    return ReplaySummary(read, valid, counts.get("duplicate", 0), counts.get("dead_lettered", 0),
                         progress.stored, round(time.monotonic() - started, 2),
                         *store_counts(store))  # fmt: skip
