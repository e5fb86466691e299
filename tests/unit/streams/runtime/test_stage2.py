"""When a stage-2 tick computes (streams.runtime.stage2.ScopeStage._due): at the head of
its partition always, even with a few messages after it; further behind, only once the
partition's last computation is old enough. After a recovery, only the partitions it
wrote into are built again. A partition taken on computes only the rows of the days its
entries changed on after its last computation."""

from __future__ import annotations

import asyncio
import time
from datetime import date, timedelta
from types import SimpleNamespace
from typing import Any

from faust.types import TP

from streams.rollup import Rollup
from streams.runtime.stage2 import HEAD_BACKLOG, Partition, ScopeStage, progress_key
from vizita.contract.messages import (
    Contribution,
    ScopeEntries,
    StoredEntry,
    VisitEntry,
    decode,
    encode,
)
from vizita.contract.municipalities import SCOPES

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


# --- taking a partition on ---------------------------------------------------------------------

DAY = date(2024, 3, 1)


def _entry(version: int, day: date) -> VisitEntry:
    return VisitEntry((version,), "peje", day, Contribution.of("hh-1", "n-1", ["effective"]))


class _Table:
    """A table partition as stage 2 reads and writes it."""

    def __init__(self, values: dict[bytes, bytes]) -> None:
        self.values = values

    def read(self, key: bytes, partition: int) -> bytes | None:
        return self.values.get(key)

    def put(self, key: bytes, value: bytes, partition: int) -> None:
        self.values[key] = value

    def items_in(self, partitions: Any) -> list[tuple[bytes, bytes]]:
        return list(self.values.items())


def _one_partition_stage(entries: dict[bytes, bytes], settled: int) -> Any:
    stage: Any = ScopeStage.__new__(ScopeStage)
    stage.partitions, stage.owned, stage.rollup = 1, {}, Rollup()
    stage.entries = _Table(entries)
    stage.progress = _Table({progress_key(0): str(settled).encode()})
    return stage


def test_an_entry_is_kept_with_its_offset_and_the_earliest_day_it_changed() -> None:
    stage = _one_partition_stage({}, settled=0)
    stage._entries(0, 7, ScopeEntries("peje", [("v-1", _entry(1, DAY + timedelta(days=5)))]))
    stage._entries(0, 9, ScopeEntries("peje", [("v-1", _entry(2, DAY + timedelta(days=2)))]))
    stage._entries(0, 11, ScopeEntries("peje", [("v-1", _entry(1, DAY))]))  # superseded
    kept = decode(stage.entries.values[b"peje|v-1"], StoredEntry)
    assert kept == StoredEntry(_entry(2, DAY + timedelta(days=2)), 9, DAY + timedelta(days=2))
    stage._entries(0, 12, ScopeEntries("peje", [("v-1", _entry(3, DAY + timedelta(days=8)))]))
    kept = decode(stage.entries.values[b"peje|v-1"], StoredEntry)
    assert (kept.offset, kept.changed_from) == (12, DAY + timedelta(days=2))  # the day it left


def test_an_entry_changed_twice_since_its_partition_settled_keeps_the_first_day_left() -> None:
    stage = _one_partition_stage({}, settled=5)
    stage._entries(0, 3, ScopeEntries("peje", [("v-1", _entry(1, DAY))]))  # computed: 3 < 5
    stage._entries(0, 7, ScopeEntries("peje", [("v-1", _entry(2, DAY + timedelta(days=5)))]))
    stage._entries(0, 9, ScopeEntries("peje", [("v-1", _entry(3, DAY + timedelta(days=8)))]))
    kept = decode(stage.entries.values[b"peje|v-1"], StoredEntry)
    assert kept.changed_from == DAY  # its rows there still count it until computed again
    stage.progress.put(progress_key(0), b"10", 0)
    stage._entries(0, 12, ScopeEntries("peje", [("v-1", _entry(4, DAY + timedelta(days=9)))]))
    kept = decode(stage.entries.values[b"peje|v-1"], StoredEntry)
    assert kept.changed_from == DAY + timedelta(days=8)  # offset 9 was computed


def test_a_partition_taken_on_computes_from_the_first_day_changed_after_it_settled() -> None:
    entries = {
        b"peje|v-1": StoredEntry(_entry(1, DAY), 5, DAY),  # computed before: offset < 10
        b"peje|v-2": StoredEntry(_entry(1, DAY + timedelta(days=4)), 10, DAY + timedelta(days=3)),
        b"ALL|v-3": StoredEntry(_entry(1, DAY + timedelta(days=6)), 14, DAY + timedelta(days=6)),
    }
    stage = _one_partition_stage({k: encode(v) for k, v in entries.items()}, settled=10)
    since = stage._build({0: SCOPES})
    assert since == {0: DAY + timedelta(days=3)}
    assert stage.rollup.scopes == set(SCOPES)
    assert stage.rollup.dirty == dict.fromkeys(SCOPES, DAY + timedelta(days=3))
    assert sum(b.counts["effective"] for b in stage.rollup.buckets["peje"].values()) == 2


def test_a_partition_whose_entries_did_not_change_since_it_settled_computes_nothing() -> None:
    entries = {b"peje|v-1": encode(StoredEntry(_entry(1, DAY), 5, DAY))}
    stage = _one_partition_stage(entries, settled=6)
    assert stage._build({0: SCOPES}) == {0: None}
    assert stage.rollup.dirty == {}
    assert stage.rollup.changed_values(DAY, DAY + timedelta(days=30)) == []
