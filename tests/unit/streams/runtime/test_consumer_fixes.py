"""The consumer's hand-over loop (streams.runtime.consumer_fixes): a seek makes stale
only what was fetched of the partitions it moves. Table recovery seeks changelog
partitions at every rebalance; the stream partitions' messages fetched with them must
still be handed over, or they are lost (their positions are not moved back)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from faust.types import TP

from streams.runtime.consumer_fixes import VizitaConsumer, _Resumed

STREAM_A, STREAM_B = TP("contributions", 0), TP("contributions", 1)
CHANGELOG = TP("scope-entries-changelog", 0)


@dataclass
class _Message:
    topic: str
    partition: int
    offset: int


class _Acks:
    def acks_enabled_for(self, topic: str) -> bool:
        return True


class _Conf:
    broker_request_timeout = 5.0


class _App:
    topics = _Acks()
    conf = _Conf()


class _Fetching:
    """aiokafka's consumer, as far as the seeks go: the broker's committed offsets are
    awaited (another task may run meanwhile), a seek moves a position at once."""

    _max_poll_records = None

    def __init__(self, committed: dict[TP, int | None]) -> None:
        self.broker_committed = committed
        self.sought: list[tuple[TP, int]] = []

    def assignment(self) -> set[TP]:
        return set(self.broker_committed)

    async def committed(self, tp: TP) -> int | None:
        await asyncio.sleep(0)
        return self.broker_committed[tp]

    async def beginning_offsets(self, partitions: list[TP]) -> dict[TP, int]:
        await asyncio.sleep(0)
        return dict.fromkeys(partitions, 3)

    def seek(self, tp: TP, offset: int) -> None:
        self.sought.append((tp, offset))


class _Thread:
    """The fetching thread: here its loop is the test's own."""

    def __init__(self, fetching: _Fetching) -> None:
        self.fetching = fetching
        self.drains: list[dict[TP, int]] = []  # each fetch, as the records' epochs

    async def call_thread(self, fun: Callable[..., Awaitable[Any]], *args: Any) -> Any:
        return await fun(*args)

    def _ensure_consumer(self) -> _Fetching:
        return self.fetching

    async def _fetch_records(self, fetching: _Fetching, *args: Any, **kwargs: Any) -> Any:
        return {}


def _consumer(on_message: Callable[[VizitaConsumer, _Message], Awaitable[None]]) -> Any:
    """A VizitaConsumer with just what `_hand_over` reads; `on_message` is the streams."""
    consumer: Any = VizitaConsumer.__new__(VizitaConsumer)
    consumer._read_offset = {STREAM_A: None, STREAM_B: None, CHANGELOG: None}
    consumer._commit_every = None
    consumer.app = _App()
    consumer.handed = []
    consumer._thread = _Thread(_Fetching({STREAM_A: 10, STREAM_B: 20, CHANGELOG: None}))
    consumer._committed_offset = {}

    async def callback(message: _Message) -> None:
        consumer.handed.append((message.partition, message.offset))
        await on_message(consumer, message)

    async def wait_first(*coroutines: Awaitable[Any]) -> None:
        consumer.raced += 1
        await coroutines[0]
        for other in coroutines[1:]:
            getattr(other, "close", lambda: None)()

    class _Never:
        def is_set(self) -> bool:
            return False

        def wait(self) -> Awaitable[None]:
            return asyncio.sleep(3600)

    async def add_gap(tp: TP, start: int, end: int) -> None:
        consumer.gaps.append((tp, start, end))

    consumer.sought, consumer.gaps = consumer._thread.fetching.sought, []
    consumer._add_gap = add_gap
    consumer.callback = callback
    consumer.wait_first = wait_first
    consumer.raced = 0  # how many hand-overs raced the flow's suspension (with tasks)
    consumer.suspend_flow = _Never()
    return consumer


async def _batch(messages: list[tuple[TP, int]]) -> AsyncIterator[tuple[TP, _Message]]:
    for tp, offset in messages:
        yield tp, _Message(tp.topic, tp.partition, offset)


def _hand_over(consumer: Any, messages: list[tuple[TP, int]]) -> list[tuple[int, int]]:
    asyncio.run(consumer._hand_over(_batch(messages)))
    return list(consumer.handed)


FETCHED = [(STREAM_A, 10), (STREAM_B, 20), (STREAM_A, 11), (STREAM_B, 21), (STREAM_A, 12)]


def test_a_batch_is_handed_over_whole_without_a_seek() -> None:
    async def nothing(consumer: VizitaConsumer, message: _Message) -> None:
        return None

    consumer = _consumer(nothing)
    assert _hand_over(consumer, FETCHED) == [(0, 10), (1, 20), (0, 11), (1, 21), (0, 12)]
    assert consumer.raced == 0  # none had to wait: no task was made for any


def test_a_hand_over_that_waits_is_finished_in_faust_s_way() -> None:
    """A full stream buffer: the streams' callback waits; it is resumed where it
    waited, to its end, and the messages after it follow in order."""
    finished = []

    async def full_buffer(consumer: VizitaConsumer, message: _Message) -> None:
        if message.offset == 11:
            await asyncio.sleep(0.01)  # a buffer with room again a little later
            await asyncio.sleep(0)
        finished.append(message.offset)

    consumer = _consumer(full_buffer)
    assert _hand_over(consumer, FETCHED) == [(0, 10), (1, 20), (0, 11), (1, 21), (0, 12)]
    assert finished == [10, 20, 11, 21, 12]
    assert consumer.raced == 1


def test_a_resumed_coroutine_returns_its_value_and_sees_its_cancellation() -> None:
    seen = []

    async def two_waits(until: asyncio.Future[int]) -> int:
        try:
            first = await until
            await asyncio.sleep(3600)
            return first
        except asyncio.CancelledError:
            seen.append("cancelled")
            raise

    async def run() -> None:
        loop = asyncio.get_running_loop()
        until: asyncio.Future[int] = loop.create_future()
        coroutine = two_waits(until)
        resumed = asyncio.ensure_future(_Resumed(coroutine, coroutine.send(None)))
        loop.call_later(0.01, until.set_result, 7)
        await asyncio.sleep(0.05)
        assert not resumed.done()  # past the first wait, in the second
        resumed.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await resumed
        assert resumed.cancelled()

        until = loop.create_future()
        returning = _returning(until)
        done = asyncio.ensure_future(_Resumed(returning, returning.send(None)))
        until.set_result(3)
        assert await done == 3

    asyncio.run(run())
    assert seen == ["cancelled"]


async def _returning(until: asyncio.Future[int]) -> int:
    return await until


def test_a_changelog_seek_leaves_the_stream_partitions_messages_to_hand_over() -> None:
    async def recover_after_first(consumer: VizitaConsumer, message: _Message) -> None:
        if message.offset == 10:
            consumer._moved((CHANGELOG,))  # what recovery's seek_wait does

    handed = _hand_over(_consumer(recover_after_first), FETCHED)
    assert handed == [(0, 10), (1, 20), (0, 11), (1, 21), (0, 12)]


def test_a_seek_of_one_partition_drops_the_rest_of_its_messages_only() -> None:
    async def seek_a_after_first(consumer: VizitaConsumer, message: _Message) -> None:
        if message.offset == 10:
            consumer._moved((STREAM_A,))

    consumer = _consumer(seek_a_after_first)
    assert _hand_over(consumer, FETCHED) == [(0, 10), (1, 20), (1, 21)]
    # The message in flight when its partition was sought is not recorded as read.
    assert consumer._read_offset[STREAM_A] is None
    assert consumer._read_offset[STREAM_B] == 21


async def _nothing(consumer: VizitaConsumer, message: _Message) -> None:
    return None


def test_a_fetch_past_messages_never_handed_over_fetches_them_again() -> None:
    consumer = _consumer(_nothing)
    consumer._read_offset[STREAM_A] = 10  # handed over up to 10; 11 to 13 were dropped
    handed = _hand_over(consumer, [(STREAM_A, 14), (STREAM_B, 20), (STREAM_A, 15)])
    assert handed == [(1, 20)]  # nothing of A past the hole
    assert consumer.sought == [(STREAM_A, 10)]  # fetched again from the last handed over
    assert consumer.gaps == []  # and the hole is not acknowledged


def test_the_same_hole_after_fetching_again_is_a_real_one() -> None:
    consumer = _consumer(_nothing)
    consumer._read_offset[STREAM_A] = 10
    consumer._sought_back = {STREAM_A: 10}  # fetched again from 10 already
    assert _hand_over(consumer, [(STREAM_A, 14)]) == [(0, 14)]
    assert consumer.sought == []
    assert consumer.gaps == [(STREAM_A, 11, 14)]  # retention or compaction: acked


def test_consecutive_offsets_are_no_hole() -> None:
    consumer = _consumer(_nothing)
    consumer._read_offset[STREAM_A] = 10
    assert _hand_over(consumer, [(STREAM_A, 11), (STREAM_A, 12)]) == [(0, 11), (0, 12)]
    assert (consumer.sought, consumer.gaps) == ([], [])


def test_a_partition_sought_after_its_hole_was_seen_is_not_sought_back() -> None:
    """A rebalance's seek to the committed offsets lands while the batch is handed
    over: going back to the old offset afterwards would pass over the messages from the
    committed one on (seen: a worker that took partitions back stalled, 465 events
    waiting behind a committed offset never acknowledged)."""

    async def rebalance_at_b(consumer: VizitaConsumer, message: _Message) -> None:
        if message.partition == STREAM_B.partition:
            consumer._moved((STREAM_A, STREAM_B))  # what perform_seek does

    consumer = _consumer(rebalance_at_b)
    consumer._read_offset[STREAM_A] = 10
    assert _hand_over(consumer, [(STREAM_A, 14), (STREAM_B, 20)]) == [(1, 20)]
    assert consumer.sought == []
    assert consumer.gaps == []
    # Not sought back, so a hole after 10 later on is not taken for a real one.
    assert not consumer._sought_back


def test_a_message_fetched_before_its_partition_was_sought_notes_no_hole() -> None:
    async def seek_a_at_b(consumer: VizitaConsumer, message: _Message) -> None:
        if message.partition == STREAM_B.partition:
            consumer._moved((STREAM_A,))
            consumer._read_offset[STREAM_A] = 10  # the committed offset, as faust's seek sets

    consumer = _consumer(seek_a_at_b)
    consumer._sought_back = {STREAM_A: 10}  # a hole after 10 would count as real
    assert _hand_over(consumer, [(STREAM_B, 20), (STREAM_A, 14)]) == [(1, 20)]
    assert (consumer.sought, consumer.gaps) == ([], [])


def test_the_seek_to_committed_moves_every_partition_in_one_step() -> None:
    """aiokafka's own awaits the broker between partitions; a batch drained then came
    from the new positions of the first ones yet was dropped as stale (seen: a worker
    that took partitions back stalled, its positions at the end, nothing acked)."""
    consumer = _consumer(_nothing)

    async def run() -> list[tuple[int, dict[TP, int]]]:
        drained: list[tuple[int, dict[TP, int]]] = []

        async def fetch_while_seeking() -> None:
            for _ in range(5):
                await consumer._getmany({STREAM_A, STREAM_B}, 0)
                drained.append((len(consumer.sought), consumer._drained_epochs))
                await asyncio.sleep(0)

        await asyncio.gather(consumer.perform_seek(), fetch_while_seeking())
        return drained

    drained = asyncio.run(run())
    assert sorted(consumer.sought) == [(STREAM_A, 10), (STREAM_B, 20), (CHANGELOG, 3)]
    assert consumer._read_offset == {STREAM_A: 10, STREAM_B: 20, CHANGELOG: None}
    assert consumer._committed_offset == {STREAM_A: 10, STREAM_B: 20}
    # Each batch saw either no seek or all of them, with the epochs to match.
    seen = {(sought, epochs.get(STREAM_A, 0), epochs.get(STREAM_B, 0))
            for sought, epochs in drained}  # fmt: skip
    assert seen == {(0, 0, 0), (3, 1, 1)}


def test_a_batch_drained_after_a_seek_is_handed_over() -> None:
    consumer = _consumer(_nothing)
    consumer._epochs = {STREAM_A: 4, STREAM_B: 2}
    consumer._drained_epochs = {STREAM_A: 4, STREAM_B: 2}  # the fetch came after both
    assert _hand_over(consumer, FETCHED) == [(0, 10), (1, 20), (0, 11), (1, 21), (0, 12)]


def test_a_seek_lands_between_the_hand_over_and_its_record_as_read() -> None:
    """The read offset a seek sets is not overwritten by the message in flight."""

    async def seek_a_at_11(consumer: VizitaConsumer, message: _Message) -> None:
        if message.offset == 11:
            await consumer.seek(STREAM_A, 5)

    consumer = _consumer(seek_a_at_11)
    assert _hand_over(consumer, FETCHED) == [(0, 10), (1, 20), (0, 11), (1, 21)]
    assert consumer._read_offset[STREAM_A] == 5
    assert consumer.sought == [(STREAM_A, 5)]


def test_a_revoked_partition_s_messages_in_flight_are_not_handed_over() -> None:
    async def revoke_a_at_b(consumer: VizitaConsumer, message: _Message) -> None:
        if message.partition == STREAM_B.partition:
            consumer._let_go({STREAM_A})

    consumer = _consumer(revoke_a_at_b)
    consumer._sought_back = {STREAM_A: 7}
    assert _hand_over(consumer, [(STREAM_A, 10), (STREAM_B, 20), (STREAM_A, 11)]) == [
        (0, 10),
        (1, 20),
    ]
    assert consumer._sought_back == {}


@dataclass(frozen=True)
class _Held:
    tp: TP
    offset: int


def _acknowledged(acked: dict[TP, list[int]], held: set[_Held]) -> Any:
    consumer = _consumer(_nothing)
    consumer._committed_offset = {STREAM_A: 10, STREAM_B: 20}
    consumer._acked, consumer._unacked_messages = acked, held
    return consumer


def test_a_head_no_stage_holds_behind_acknowledged_offsets_is_lost() -> None:
    consumer = _acknowledged({STREAM_A: [11, 12], STREAM_B: [20, 21]}, set())
    assert consumer.lost_heads() == {STREAM_A: 10}


def test_a_head_a_stage_holds_is_not_lost() -> None:
    consumer = _acknowledged({STREAM_A: [11, 12]}, {_Held(STREAM_A, 10)})
    assert consumer.lost_heads() == {}


def test_a_head_with_nothing_acknowledged_past_it_is_not_lost() -> None:
    # After a commit faust keeps the last offset it committed in the list.
    consumer = _acknowledged({STREAM_A: [9], STREAM_B: []}, set())
    assert consumer.lost_heads() == {}


def test_a_lost_head_is_fetched_again_from_its_offset() -> None:
    consumer = _acknowledged({STREAM_A: [11]}, set())
    asyncio.run(consumer.fetch_again(STREAM_A, 10))
    assert consumer.sought == [(STREAM_A, 10)]
    assert consumer._read_offset[STREAM_A] == 10
    assert consumer._epochs == {STREAM_A: 1}
