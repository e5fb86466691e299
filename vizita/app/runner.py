"""The pipeline in one process: the streams and the sink on one event loop.

`vizita worker` runs it until stopped; `vizita replay` and `vizita demo` run it and
watch it. Extra workers (`vizita worker --no-sink`) add stream capacity; the sink runs
where the store is.

Every part is supervised: `failed()` answers when a stage, the Faust app or the sink
stops on a fault it cannot absorb, and the caller then stops the whole worker loudly
(`WorkerFailed`), so that systemd, compose or Kubernetes restarts it. Nothing a stage
has not finished is committed, so the restart takes up where the fault struck.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
from dataclasses import dataclass, field, replace
from typing import Any

import structlog
from aiokafka import TopicPartition

from sinks.kafka_sink import KafkaSink
from sinks.lag import record_consumer_lag
from sinks.store import Store
from streams.runtime.app import Streams
from vizita.app.errors import AppError
from vizita.app.progress import Progress
from vizita.contract.settings import Settings
from vizita.contract.targets import Targets, load_targets
from vizita.contract.topics import (
    SINK_TOPICS,
    TOPIC_VISIT_CONTRIBUTIONS,
    TOPIC_VISITS,
    partition_label,
    sink_group,
    stream_group,
)
from vizita.kafka.admin import (
    bootstrap_of,
    committed_offsets,
    end_offsets,
    last_value,
    wait_for_group_coordinators,
)

log = structlog.get_logger(__name__)

LAG_EVERY_SECONDS = 30.0
WAITING_LOG_SECONDS = 10.0
#: stage 1's outcomes that finish an event (a re-keyed one comes back, and counts then)
PROCESSED_OUTCOMES = ("valid", "duplicate", "dead_lettered")
#: how long a clean stop may take (within the 30 s a worker has to stop in every state)
STOP_SECONDS = 25.0


class WorkerFailed(AppError):
    """A part of the worker stopped on a fault it cannot absorb."""


COORDINATOR_WAIT_SECONDS = 30.0


# A young-generation collection every this many allocations instead of Python's 700: a
# batch allocates tens of thousands of short-lived objects (events, rows, entries) and
# few cycles, so the default collected about seven times a batch to find nothing.
GC_YOUNG_THRESHOLD = 20_000


def _collect_garbage_less_often() -> None:
    """Once the stream is started: what exists then (modules, the app, its tables'
    recovered state) lives as long as the process, and frozen it is never scanned."""
    gc.freeze()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(GC_YOUNG_THRESHOLD, older, oldest)


@dataclass
class Pipeline:
    settings: Settings
    store: Store | None  # None: this worker streams only, another one sinks
    targets: Targets | None = None  # None: read from settings.targets_file
    streams: Streams | None = None
    sink: KafkaSink | None = None
    _sink_task: asyncio.Task[None] | None = None
    _lag_task: asyncio.Task[None] | None = None
    # What a replay, the demo or a backfill shows: the publisher adds its counts.
    progress: Progress = field(default_factory=Progress)
    _last_waiting_log: float = 0.0

    async def start(self) -> None:
        await self._wait_for_group_coordinators()
        targets = self.targets or load_targets(self.settings.targets_file)
        self.streams = Streams(self.settings, targets)
        await self.streams.start()
        _collect_garbage_less_often()
        if self.store is not None:
            self.sink = KafkaSink(self.settings, self.store)
            self._sink_task = asyncio.create_task(self.sink.run(), name="sink")
            self._lag_task = asyncio.create_task(self._record_lag(self.store), name="lag")
        log.info("pipeline.started", app_id=self.settings.app_id, sink=self.sink is not None)

    async def _wait_for_group_coordinators(self) -> None:
        """The consumers start once the broker has their groups' coordinator. A new
        cluster has none until it has created its offsets topic, which the first
        consumer's question starts: aiokafka logs that first try as an error ("Group
        Coordinator Request failed"), in every first run. Waiting here instead keeps a
        normal start free of errors, and hides nothing: a coordinator still missing
        after the wait is a warning here, and the consumers' own errors follow."""
        groups = [stream_group(self.settings.app_id)]
        if self.store is not None:
            groups.append(sink_group(self.settings.app_id))
        ready = await asyncio.to_thread(
            wait_for_group_coordinators, bootstrap_of(self.settings), groups,
            COORDINATOR_WAIT_SECONDS,
        )  # fmt: skip
        if not ready:
            log.warning("kafka.coordinator.missing", groups=groups, waited=COORDINATOR_WAIT_SECONDS)

    @property
    def running(self) -> Streams:
        assert self.streams is not None, "the pipeline is started first"
        return self.streams

    def progress_now(self) -> Progress:
        """The progress, with what stage 1 and the sink of this process have done by now
        (a copy: the display keeps it as it was)."""
        if self.streams is not None:
            counts = self.streams.stats.counts
            self.progress.processed = sum(counts[outcome] for outcome in PROCESSED_OUTCOMES)
        if self.sink is not None:
            self.progress.stored = sum(self.sink.stored.values())
        return replace(self.progress)

    async def _record_lag(self, store: Store) -> None:
        """Consumer lag into the store every LAG_EVERY_SECONDS, for the health dashboard.
        A failed measurement is logged and retried next time: lag is a gauge."""
        while True:
            try:
                await asyncio.to_thread(record_consumer_lag, self.settings, store)
            except Exception as exc:  # never let a gauge stop the pipeline
                log.warning("lag.not_recorded", error=repr(exc))
            await asyncio.sleep(LAG_EVERY_SECONDS)

    async def failed(self) -> WorkerFailed:
        """Until a part fails; then what failed, as the error to stop the worker with."""
        watched: list[asyncio.Future[Any]] = [asyncio.ensure_future(self.running.wait_failed())]
        if self._sink_task is not None:
            watched.append(self._sink_task)
        done, pending = await asyncio.wait(watched, return_when=asyncio.FIRST_COMPLETED)
        for task in pending:
            if task is not self._sink_task:
                task.cancel()
        finished = done.pop()
        if finished is self._sink_task:
            exc = finished.exception() if not finished.cancelled() else None
            where, why = "sink", exc or RuntimeError("the sink stopped")
        else:
            where, why = finished.result()
        log.error("worker.failed", part=where, error=repr(why), exc_info=why)
        return WorkerFailed(f"{where} failed: {why!r}")

    async def until_stored_or_failed(self, before: dict[int, int]) -> None:
        """`wait_until_stored`, unless a part fails first: then WorkerFailed."""
        stored = asyncio.ensure_future(self.wait_until_stored(before))
        failure = asyncio.ensure_future(self.failed())
        try:
            done, _ = await asyncio.wait({stored, failure}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            # Cancelled too (the demo's --duration): a watch left running would take the
            # stop that follows for the sink failing.
            stored.cancel()
            failure.cancel()
        if stored in done:
            stored.result()
            return
        raise failure.result()

    async def stop(self) -> None:
        """Stop every part, within STOP_SECONDS (WorkerFailed if that was not enough)."""
        try:
            await asyncio.wait_for(self._stop(), STOP_SECONDS)
        except TimeoutError as exc:
            raise WorkerFailed(f"did not stop within {STOP_SECONDS:.0f} s") from exc

    async def _stop(self) -> None:
        if self._lag_task is not None:
            self._lag_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._lag_task
        if self.sink is not None and self._sink_task is not None:
            self.sink.stop()
            with contextlib.suppress(Exception, asyncio.CancelledError):  # failed() said why
                await self._sink_task
        if self.streams is not None:
            await self.streams.stop()
        log.info("pipeline.stopped")

    async def wait_until_ready(self, settle: float = 2.0, poll: float = 0.1) -> None:
        """Until the stream holds partitions, its tables are recovered, and no
        rebalance followed for `settle` seconds."""
        loop = asyncio.get_running_loop()
        quiet_since = None
        while quiet_since is None or loop.time() - quiet_since < settle:
            quiet_since = (quiet_since or loop.time()) if self.running.ready() else None
            await asyncio.sleep(poll)

    async def _ends(self, topic: str) -> dict[int, int]:
        return await asyncio.to_thread(
            end_offsets, bootstrap_of(self.settings), self.settings.topic(topic)
        )

    async def _committed(self, topic: str) -> dict[int, int]:
        # What any worker of the group has processed (another worker may own partitions).
        return await asyncio.to_thread(
            committed_offsets, bootstrap_of(self.settings), stream_group(self.settings.app_id),
            self.settings.topic(topic),
        )  # fmt: skip

    async def _stage1_done(self, ends: dict[int, int], before: dict[int, int]) -> bool:
        positions = self.running.stats.positions
        left = [
            p for p, end in ends.items() if end > before.get(p, 0) and positions.get(p, 0) < end
        ]
        if not left:
            return True
        committed = await self._committed(TOPIC_VISITS)  # the slower question, asked only now
        self._waiting("stage 1", ends=ends, committed=committed, positions=dict(positions))
        return all(committed.get(p, 0) >= ends[p] for p in left)

    def _waiting(self, stage: str, **numbers: Any) -> None:
        """What a wait waits for, in the progress; and, at debug level every
        WAITING_LOG_SECONDS, the offsets still pending (the progress line is the
        readable one: vizita.app.progress)."""
        self.progress.waiting_for = stage
        now = asyncio.get_running_loop().time()
        if now - self._last_waiting_log >= WAITING_LOG_SECONDS:
            self._last_waiting_log = now
            log.debug("pipeline.waiting", stage=stage, **numbers)

    async def _settle_stage1(self, before: dict[int, int], poll: float) -> None:
        while True:
            ends = await self._ends(TOPIC_VISITS)
            if await self._stage1_done(ends, before):
                await self.running.flush()  # re-keyed or dead-lettered sends are out
                if await self._ends(TOPIC_VISITS) == ends:
                    return
            await asyncio.sleep(poll)

    async def _settle_stage2(self, poll: float) -> None:
        """Until, on every stage-2 partition, a tick after everything stage 1 sent has
        been processed: that tick computed it all (here, or in the worker that owns the
        partition)."""
        stats = self.running.stats
        ends = await self._ends(TOPIC_VISIT_CONTRIBUTIONS)
        while True:
            behind = {p: end for p, end in ends.items() if stats.settled.get(p, 0) < end}
            if behind:
                elsewhere = await self._settled_elsewhere(behind)
                behind = {p: end for p, end in behind.items() if elsewhere.get(p, 0) < end}
            if not behind:
                break
            self._waiting("stage 2", behind=behind, settled=dict(stats.settled))
            await asyncio.sleep(poll)
        await self.running.flush()

    async def _settled_elsewhere(self, partitions: dict[int, int]) -> dict[int, int]:
        """Stage 2's settled positions as their owners wrote them (maybe other workers)."""
        topic, bootstrap = self.running.progress_topic, bootstrap_of(self.settings)
        settled = {}
        for partition in partitions:
            value = await asyncio.to_thread(last_value, bootstrap, topic, partition)
            settled[partition] = int(value) if value else 0
        return settled

    async def wait_until_stored(self, before: dict[int, int], poll: float = 0.5) -> None:
        """Wait until every `visits` message past `before` is processed, its indicators
        and alerts computed, and all of it is in the store."""
        await self._settle_stage1(before, poll)
        await self._settle_stage2(poll)
        outputs: dict[TopicPartition, int] = {}
        for topic in SINK_TOPICS:
            for partition, end in (await self._ends(topic)).items():
                outputs[TopicPartition(self.settings.topic(topic), partition)] = end
        assert self.sink is not None, "waiting for the store needs the sink in this process"
        while not await self.sink.caught_up(outputs):  # polls the broker
            self._waiting("the sink", ends={partition_label(tp): n for tp, n in outputs.items()})
            await asyncio.sleep(poll)
        self.progress.waiting_for = None
