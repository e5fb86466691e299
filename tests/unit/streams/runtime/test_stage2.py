"""When a stage-2 tick computes (streams.runtime.stage2.ScopeStage._due): at the head of
its partition always, even with a few messages after it; further behind, only once the
partition's last computation is old enough. After a recovery, only the partitions it
wrote into are built again."""

from __future__ import annotations

import asyncio
import time
from types import SimpleNamespace
from typing import Any

from faust.types import TP

from streams.runtime.stage2 import HEAD_BACKLOG, Partition, ScopeStage

TICK = TP("visit-contributions", 0)


def _stage(highwater: int, next_compute: float) -> Any:
    stage: Any = ScopeStage.__new__(ScopeStage)
    stage.owned = {0: Partition(scopes=(), computes_from=0, next_compute=next_compute)}
    stage.app = SimpleNamespace(consumer=SimpleNamespace(highwater=lambda tp: highwater))
    return stage


def _tick(offset: int) -> Any:
    return SimpleNamespace(partition=0, offset=offset, tp=TICK)


def test_a_tick_with_a_few_messages_after_it_computes_at_once() -> None:
    later = time.monotonic() + 3600  # the last computation asks for a long pause
    assert _stage(highwater=101 + HEAD_BACKLOG, next_compute=later)._due(_tick(100))
    assert _stage(highwater=101, next_compute=later)._due(_tick(100))


def test_a_tick_far_behind_waits_for_its_partition_s_pause() -> None:
    behind = 102 + HEAD_BACKLOG
    assert not _stage(highwater=behind, next_compute=time.monotonic() + 3600)._due(_tick(100))
    assert _stage(highwater=behind, next_compute=time.monotonic() - 1)._due(_tick(100))


def test_a_tick_before_the_partition_was_taken_on_never_computes() -> None:
    stage = _stage(highwater=101, next_compute=0.0)
    stage.owned[0].computes_from = 200
    assert not stage._due(_tick(100))


def test_a_recovery_drops_only_the_scopes_of_partitions_it_wrote_into() -> None:
    stage: Any = ScopeStage.__new__(ScopeStage)
    stage.owned = {0: Partition(scopes=("a",)), 1: Partition(scopes=("b",))}
    dropped: list[str] = []
    stage.rollup = SimpleNamespace(drop=dropped.append)
    recovered = [{1, 3}, set()]  # what each table's recovery wrote into (3: not owned)
    stage.tables = [SimpleNamespace(take_recovered=lambda: recovered.pop(0)) for _ in range(2)]
    asyncio.run(stage._recovered())
    assert dropped == ["b"]
    assert set(stage.owned) == {0}  # partition 1 is taken on again at the next batch
