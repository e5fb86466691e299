"""The Faust app, wired, behind a small facade (`Streams`) for the runner: start,
ready, flush, stop, what the stages have done, and whether one of them failed.
Validation is the contract's; the maths is in `streams.revisions`,
`streams.indicators`, `streams.rollup` and `streams.alerts`; `stage1` and `stage2` meet
them with the topics and the tables.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from faust.types import EventT

from streams.errors import NoBootstrap
from streams.runtime.consumer_fixes import VizitaApp
from streams.runtime.durable import DurableTable, Health, batch_agent, delivered
from streams.runtime.shared import StageTopics, StreamStats
from streams.runtime.slots import claim_slot
from streams.runtime.stage1 import RevisionStage
from streams.runtime.stage2 import PROGRESS_TABLE, ScopeStage, send_ticks
from streams.runtime.warm import warm_up
from streams.runtime.watch import watch_for_stalls
from vizita.contract.settings import Settings
from vizita.contract.targets import Targets


def _faust_app(settings: Settings, bootstrap: str, datadir: Path) -> VizitaApp:
    return VizitaApp(
        settings.app_id,
        broker=f"kafka://{bootstrap}",
        # Tables live on disk (`DurableTable`): a start reads their changelogs' tails.
        store="rocksdb://",
        topic_partitions=settings.partitions,
        topic_replication_factor=settings.replication_factor,
        table_standby_replicas=0,
        web_enabled=False,
        datadir=str(datadir),
        consumer_auto_offset_reset="earliest",
        broker_commit_interval=1.0,
        broker_session_timeout=settings.kafka_session_timeout_seconds,
        broker_heartbeat_interval=min(3.0, settings.kafka_session_timeout_seconds / 3),
        producer_acks=-1,
        # The stages send a few large messages per batch and wait for them: a short
        # linger lets one produce request carry a batch's messages to many partitions.
        producer_linger=0.002,
        producer_max_request_size=4 * 1024 * 1024,
        # Table writes go in record batches of this size (`DurableTable.send_changes`).
        producer_max_batch_size=256 * 1024,
        # A rebalance waits for the batch in flight: its table writes reach the changelog
        # before the tables are read back from it, and its old owner is done with a
        # partition before the new one takes it on.
        stream_wait_empty=True,
    )


class Streams:
    """Both stages in this process, as the runner sees them."""

    def __init__(self, settings: Settings, targets: Targets) -> None:
        if settings.kafka_bootstrap is None:
            raise NoBootstrap("the stream needs a Kafka bootstrap address")
        self._bootstrap = settings.kafka_bootstrap
        self._slot = claim_slot(settings.data_dir / "faust" / settings.app_id)
        self._app: Any = _faust_app(settings, self._bootstrap, self._slot.path)
        self.stats = StreamStats()
        self.health = Health()
        topics = StageTopics(self._app, settings)
        self._wire_revisions(topics, settings)
        self._wire_scopes(topics, settings, targets)
        self._stall_seconds = settings.stall_seconds
        self._agents = {
            topics.visits.get_topic_name(): "revisions",
            topics.contributions.get_topic_name(): "scopes",
        }
        self._watch: asyncio.Task[None] | None = None

    def _wire_revisions(self, topics: StageTopics, settings: Settings) -> None:
        stage = RevisionStage(self._app, topics, settings.partitions)

        async def handle(events: Sequence[EventT[Any]]) -> None:
            outcomes: Counter[str] = await stage.handle(events)
            positions = {e.message.partition: e.message.offset + 1 for e in events}
            self.stats.done(outcomes, positions)

        batch_agent(
            self._app, topics.visits, "revisions", handle, tables=(stage.states,),
            health=self.health, max_batch=settings.batch_events, within=settings.batch_seconds,
        )  # fmt: skip

    def _wire_scopes(self, topics: StageTopics, settings: Settings, targets: Targets) -> None:
        stage = ScopeStage(self._app, topics, targets, settings.partitions, self.stats)
        batch_agent(
            self._app, topics.contributions, "scopes", stage.handle, tables=stage.tables,
            health=self.health, max_batch=settings.batch_events, within=settings.batch_seconds,
        )  # fmt: skip
        live_clock = settings.clock == "live"

        @self._app.timer(settings.tick_seconds, on_leader=True)  # type: ignore[untyped-decorator]  # faust's timer is untyped
        async def tick() -> None:
            await delivered(send_ticks(topics, settings.partitions, live_clock))

    @property
    def tables(self) -> list[DurableTable]:
        return [table for table in self._app.tables.values() if isinstance(table, DurableTable)]

    async def start(self) -> None:
        await warm_up(self.tables, self._bootstrap)
        for table in self.tables:
            table.close_databases()  # Faust opens those it is given
        await self._app.start()
        self._watch = asyncio.create_task(watch_for_stalls(
            self._app, self._agents, limit=self._stall_seconds, ready=self.ready,
            health=self.health,
        ), name="stall-watch")  # fmt: skip

    async def stop(self) -> None:
        if self._watch is not None:
            self._watch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watch
        if self.health.failures:
            self._app.consumer.abandon_unacked()  # a failed stage never finishes its batch
        try:
            await self._app.stop()
        finally:
            self._slot.release()

    def ready(self) -> bool:
        """The stream holds partitions, its tables are recovered, no rebalance runs."""
        app = self._app
        recovered = app.tables.recovery.completed.is_set()
        return bool(recovered and not app.rebalancing and app.consumer.assignment())

    def crashed(self) -> BaseException | None:
        """What stopped the Faust app itself, if something did."""
        crashed: bool = self._app.crashed
        return self._app.crash_reason if crashed else None

    async def wait_failed(self) -> tuple[str, BaseException]:
        """Until a stage fails (which it never does on bad input), then where and why."""
        while True:
            waiting = asyncio.ensure_future(self.health.wait_failed())
            done, _ = await asyncio.wait({waiting}, timeout=0.5)
            if done:
                return waiting.result()
            waiting.cancel()
            reason = self.crashed()
            if reason is not None:
                return "faust", reason

    async def flush(self) -> None:
        """Everything the stages have sent so far is acknowledged by Kafka."""
        await self._app.producer.flush()

    @property
    def progress_topic(self) -> str:
        """The changelog of stage 2's settled positions (whichever worker owns them)."""
        return str(self._app.tables[PROGRESS_TABLE].changelog_topic.get_topic_name())
