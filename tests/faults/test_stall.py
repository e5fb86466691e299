"""A stage that stops answering is not silent: with events waiting on a partition it
holds and no progress for `stall_seconds`, the worker fails loudly (the runner's
WorkerFailed, one line from the CLI) and the log says what every task waits on. An
idle stream, with nothing waiting, never counts as stalled."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from workers import publish_all

from producers.simulator import SimulationConfig, simulate
from sinks.store import Store
from streams.runtime import watch
from streams.runtime.stage1 import RevisionStage
from vizita.app.runner import Pipeline, WorkerFailed
from vizita.contract.settings import Settings
from vizita.kafka.admin import end_offsets, ensure_pipeline_topics

pytestmark = pytest.mark.timeout(300)
STALL_SECONDS = 3.0


def test_a_stage_waiting_forever_stops_the_worker_loudly_and_an_idle_one_never(
    settings: Settings, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    watched = settings.model_copy(update={"stall_seconds": STALL_SECONDS, "clock": "event"})
    lines = simulate(SimulationConfig(seed=21, days=5, visits_per_day=40, invalid_share=0.0))
    ensure_pipeline_topics(watched)
    publish_all(watched, lines[:100])
    hanging = asyncio.Event()
    handle = RevisionStage.handle

    async def handle_or_hang(self: RevisionStage, events: Any) -> Any:
        if hanging.is_set():  # what a send whose answer never comes looks like
            await asyncio.Event().wait()
        return await handle(self, events)

    monkeypatch.setattr(RevisionStage, "handle", handle_or_hang)

    async def run() -> WorkerFailed:
        pipeline = Pipeline(watched, store)
        await pipeline.start()
        try:
            await pipeline.wait_until_stored({})
            failure = asyncio.ensure_future(pipeline.failed())
            await asyncio.sleep(4 * STALL_SECONDS)  # idle, ticks still flowing
            assert not failure.done(), "an idle stream was taken for a stalled one"
            hanging.set()
            await asyncio.to_thread(publish_all, watched, lines[100:])
            return await asyncio.wait_for(failure, 20 * STALL_SECONDS)
        finally:
            await pipeline.stop()

    logged: list[dict[str, Any]] = []
    monkeypatch.setattr(
        watch.log, "error", lambda event, **kw: logged.append({"event": event, **kw})
    )
    failed = asyncio.run(run())
    message = str(failed)
    visits = watched.topic("visits")
    assert message.startswith(f"revisions failed: StreamStalled('{visits}/")
    assert "events waiting, no progress for" in message
    stalled = [entry for entry in logged if entry["event"] == "stream.stalled"]
    assert len(stalled) == 1
    assert any("handle_or_hang" in task for task in stalled[0]["tasks"])
    assert sum(end_offsets(watched.kafka_bootstrap or "", visits).values()) == len(lines)
