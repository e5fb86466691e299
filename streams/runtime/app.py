"""The Faust app, wired, behind a small facade (`Streams`) for the runner: start,
ready, flush, stop, and what the stages have done. Validation is the contract's; the
maths is in `streams.revisions`, `streams.indicators`, `streams.rollup` and
`streams.alerts`; `stage1` and `stage2` meet them with the topics and the tables.
"""

from __future__ import annotations

from typing import Any

from streams.errors import NoBootstrap
from streams.runtime.consumer_fixes import VizitaApp
from streams.runtime.shared import StageTopics, StreamStats
from streams.runtime.stage1 import wire_revisions
from streams.runtime.stage2 import PROGRESS_TABLE, wire_indicators
from vizita.contract.settings import Settings
from vizita.contract.targets import Targets


def _faust_app(settings: Settings, bootstrap: str) -> VizitaApp:
    datadir = settings.data_dir / "faust" / settings.app_id
    datadir.parent.mkdir(parents=True, exist_ok=True)
    return VizitaApp(
        settings.app_id,
        broker=f"kafka://{bootstrap}",
        # Tables live in memory and are rebuilt from their changelog topics at start.
        store="memory://",
        topic_partitions=settings.partitions,
        topic_replication_factor=1,
        table_standby_replicas=0,
        web_enabled=False,
        datadir=str(datadir),
        consumer_auto_offset_reset="earliest",
        broker_commit_interval=1.0,
        producer_acks=-1,
        # Batch sends a little: one produce request per event is the main cost otherwise.
        producer_linger=0.005,
        stream_wait_empty=False,
    )


class Streams:
    """Both stages in this process, as the runner sees them."""

    def __init__(self, settings: Settings, targets: Targets) -> None:
        if settings.kafka_bootstrap is None:
            raise NoBootstrap("the stream needs a Kafka bootstrap address")
        self._app: Any = _faust_app(settings, settings.kafka_bootstrap)
        self.stats = StreamStats()
        topics = StageTopics(self._app, settings)
        wire_revisions(self._app, topics, settings.partitions, self.stats)
        wire_indicators(
            self._app, topics, targets, self.stats,
            tick_seconds=settings.tick_seconds, live_clock=settings.clock == "live",
        )  # fmt: skip

    async def start(self) -> None:
        await self._app.start()

    async def stop(self) -> None:
        await self._app.stop()

    def ready(self) -> bool:
        """The stream holds partitions, its tables are recovered, no rebalance runs."""
        app = self._app
        recovered = app.tables.recovery.completed.is_set()
        return bool(recovered and not app.rebalancing and app.consumer.assignment())

    async def flush(self) -> None:
        """Everything the stages have sent so far is acknowledged by Kafka."""
        await self._app.producer.flush()

    @property
    def progress_topic(self) -> str:
        """The changelog of stage 2's settled position (whichever worker owns it)."""
        return str(self._app.tables[PROGRESS_TABLE].changelog_topic.get_topic_name())
