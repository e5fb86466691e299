"""Three fixes to faust-streaming 0.15.3's consumer, without which a restart or a
rebalance loses messages (seen here: a restarted worker handled offset 910, then 927).

1. **Skipped messages were acknowledged.** A stream skips a message fetched before a
   rebalance (older generation, or flow suspended) and then *acks* it, so the consumer
   commits past a message no agent processed. `VizitaConsumer.ack` lets such a message
   go without marking its offset safe to commit: after the seek to the committed offset
   it is fetched again and processed.
2. **A stale read offset survived the seek.** The fetch loop records each message's
   offset as "read" after handing it to the streams. For the message in flight when a
   rebalance starts, that record can land *after* the seek to the committed offset, and
   every message between the committed offset and it is then dropped as already read
   ("DROPPED MESSAGE ROFF") and never acknowledged, so the commit also stalls (seen:
   two workers, stage 2's commit stuck for minutes). The loop below is faust's
   `_drain_messages` with one change: every seek starts a new epoch of the partitions it
   moves, and a message fetched in an older epoch of its partition is neither handed
   over nor recorded as read. Per partition: table recovery seeks the changelogs this
   consumer also reads, at every rebalance, and dropping the stream partitions'
   messages in flight then (their positions not moved back) lost them for good (seen:
   stage-2 offsets 333 to 413 never handled, after five kills).

   The epochs are counted where the positions move, in the fetching thread (faust runs
   aiokafka in a thread of its own): each seek moves its partitions and starts their
   new epoch in one step of that thread's loop, and each fetched batch carries the
   epochs of the step that drained it. A batch is then either from before a seek
   (stale, fetched again from the new position) or from after it (handed over), never
   taken for the one when it is the other: counted in the streams' loop, a batch
   drained from the new positions while aiokafka's `seek_to_committed` still awaited
   the broker for the next partition was dropped as stale, its positions already past
   it (seen: a worker that took partitions back stalled, positions at the partitions'
   ends, nothing acknowledged).

   The same loop never hands over past a hole: a seek landing while a batch is handed
   over drops the rest of it, but the fetch position has moved on, and faust commits
   the consecutive offsets acknowledged after the hole as if it were not there (seen:
   a worker that joined and took partitions on within a second lost offsets 390 to
   402 of one). A message beyond the next offset of a committing topic makes the loop
   fetch that partition again from the last offset it handed over.

3. **A partition with nothing committed was not sought.** At a rebalance faust seeks
   every partition to its committed offset (aiokafka's `seek_to_committed`), but one
   with no committed offset yet (a new group, or a worker that died before its first
   commit) is not moved at all: its fetcher goes on from where it had reached, past the
   messages fetched before the rebalance that the rebalance dropped, and those are never
   processed (seen: offsets 12 to 57 of every stage-2 partition, on a worker's first
   start after another died). `perform_seek` below starts such a partition again from
   its first message.

All three only ever cause a message to be processed again, never lost; the stages are
idempotent (state keyed by visit, last writer wins by rank), so a repeat is harmless.
The faust version is pinned exactly because this subclass replaces one of its loops.
"""

from __future__ import annotations

import asyncio
import functools
import threading
from collections.abc import Coroutine, Generator, Iterable, Mapping
from typing import Any, cast

import faust
import structlog
from faust.transport.consumer import CONSUMER_FETCHING, ensure_TP
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TP, Message
from faust.types.transports import TransportT
from mode import Service, ServiceT

from streams.runtime.producer_fixes import VizitaProducer
from vizita.contract.topics import partition_label

_YIELD_EVERY = 100  # as in faust: let other tasks run during a long batch

log = structlog.get_logger(__name__)


class VizitaConsumer(faust_aiokafka.Consumer):
    # Per partition, how many seeks have moved it: a fetched message of a partition
    # sought since is stale (its new position fetches it again). Per partition, because
    # table recovery seeks the changelogs this same consumer reads, which moves no
    # stream partition: their messages in flight must still be handed over.
    _epochs: dict[TP, int] | None = None
    # Per partition, the offset it was last fetched again from after a hole (see
    # `_went_past`): the same hole again is a real one.
    _sought_back: dict[TP, int] | None = None
    # The epochs the batch being handed over was drained in.
    _drained_epochs: dict[TP, int] = {}  # noqa: RUF012  # replaced, never mutated
    _lock: threading.Lock | None = None

    def ack(self, message: Message) -> bool:
        if self._is_current(message):
            return bool(super().ack(message))
        # Done with it, but not safe to commit: it will be fetched again after the seek.
        message.acked = True
        self._unacked_messages.discard(message)
        return False

    def abandon_unacked(self) -> None:
        """Let go of every message a stage took and never finished, without marking any
        safe to commit: after a fault the stop does not wait for them (faust's
        `wait_empty` would, for ever), and the restart processes them again."""
        for message in list(self._unacked_messages):
            message.acked = True
        self._unacked_messages.clear()

    def committed_position(self, tp: TP) -> int | None:
        """The next offset of `tp` the group has committed, as this consumer last saw
        it (at its own commits and at every rebalance's seek); None before any."""
        committed: int | None = self._committed_offset.get(tp)
        return committed

    def lost_heads(self) -> dict[TP, int]:
        """The partitions whose next offset to commit no stage holds while later offsets
        of theirs are acknowledged, each with that offset. A stage takes and acknowledges
        a partition's messages in order, so the message there is not merely waiting: it
        was lost between the fetch and the streams, and the commit would wait for it for
        ever (seen once in some twenty runs: a worker that kept its partitions while
        another joined, the first message after the seek never acknowledged). A
        message-less offset (compaction) looks the same until the next commit closes it."""
        held = {(message.tp, message.offset) for message in self._unacked_messages}
        lost = {}
        for tp, acked in self._acked.items():
            head = self._committed_offset.get(tp)
            if head is None or not acked or head in acked or max(acked) < head:
                continue
            if (tp, head) not in held:
                lost[tp] = head
        return lost

    async def fetch_again(self, tp: TP, offset: int) -> None:
        """Fetch a partition again from `offset`, unless a seek moves it meanwhile (it
        is where it should be then); the stages are idempotent, so what follows is only
        processed again."""
        epoch = self._epoch_table().get(tp, 0)
        await self._thread.call_thread(self._seek_in_thread, {tp: offset}, epoch)

    def _is_current(self, message: Message) -> bool:
        app = self.app
        generation = cast(int | None, getattr(message, "generation_id", None))
        return app.flow_control.is_active() and generation in (
            None,
            app.consumer_generation_id,
        )

    # Every way faust moves a partition's position starts a new seek epoch, in the same
    # step of the fetching thread's loop as the move: a fetched batch is tagged with the
    # epochs it was drained in (`_getmany`), so a seek is either before a batch (which
    # then comes from the new position and is handed over) or after it (which is then
    # stale and fetched again from the new position), never half-way through either.
    async def perform_seek(self) -> None:
        """Faust's, in one step with no fetch in between (aiokafka's own awaits the
        broker between partitions, and a batch drained between them came from new
        positions yet was dropped as fetched before the seek: a worker that took
        partitions back stalled with its positions at the end), and a partition with
        nothing committed starts again from its first message (the module's third fix)."""
        committed = await self._thread.call_thread(self._seek_to_committed_in_thread)
        log.info("consumer.sought_committed", offsets=_named(committed))

    async def _seek_to_committed_in_thread(self) -> dict[TP, int | None]:
        fetching = self._thread._ensure_consumer()
        committed = {
            ensure_TP(tp): await fetching.committed(tp) or None for tp in fetching.assignment()
        }
        fresh = [tp for tp, offset in committed.items() if offset is None]
        earliest = await fetching.beginning_offsets(fresh) if fresh else {}
        with self._positions_lock():
            held = fetching.assignment()  # a rebalance may have moved some meanwhile
            committed = {tp: offset for tp, offset in committed.items() if tp in held}
            for tp, offset in committed.items():
                fetching.seek(tp, offset if offset is not None else earliest.get(tp) or 0)
            self._moved(committed)
            self._read_offset.update(committed)
            self._committed_offset.update(
                {tp: offset for tp, offset in committed.items() if offset is not None}
            )
        return committed

    async def seek(self, partition: TP, offset: int) -> None:
        await self._thread.call_thread(self._seek_in_thread, {ensure_TP(partition): offset})

    async def seek_wait(self, partitions: Mapping[TP, int]) -> None:
        """Faust's (table recovery seeks the changelogs so), the seeks as one step."""
        await self._thread.call_thread(self._seek_wait_in_thread, partitions)

    async def _seek_wait_in_thread(self, partitions: Mapping[TP, int]) -> None:
        await self._seek_in_thread(partitions)
        fetching = self._thread._ensure_consumer()
        await asyncio.wait_for(
            asyncio.gather(*[fetching.position(tp) for tp in partitions]),
            timeout=self.app.conf.broker_request_timeout,
        )

    async def _seek_in_thread(
        self, partitions: Mapping[TP, int], epoch: int | None = None
    ) -> set[TP]:
        """Seek, unless `epoch` is given and a partition was sought since it (a seek
        back over a hole must not undo a rebalance's seek that landed meanwhile); the
        partitions sought."""
        fetching = self._thread._ensure_consumer()
        sought = set()
        with self._positions_lock():
            epochs = self._epoch_table()
            for tp, offset in partitions.items():
                if epoch is not None and epochs.get(tp, 0) != epoch:
                    continue
                fetching.seek(tp, offset)
                self._moved((tp,))
                self._read_offset[ensure_TP(tp)] = offset if offset else None
                sought.add(tp)
        return sought

    async def on_partitions_revoked(self, revoked: set[TP]) -> None:
        log.info("consumer.revoked", read=_named({tp: self._read_offset.get(tp) for tp in revoked}))
        self._let_go(revoked)
        await super().on_partitions_revoked(revoked)

    def _let_go(self, revoked: set[TP]) -> None:
        """What is in flight of these partitions is another member's now, and a hole
        seen in them before says nothing of where they will be when back."""
        with self._positions_lock():
            self._moved(revoked)
        for tp in revoked:
            self._sought_back_table().pop(tp, None)

    async def _getmany(  # faust's signature, `timeout` included
        self,
        active_partitions: set[TP] | None,
        timeout: float,  # noqa: ASYNC109
    ) -> Any:
        records, self._drained_epochs = await self._thread.call_thread(
            self._fetch_in_thread, active_partitions, timeout
        )
        return records

    async def _fetch_in_thread(
        self, active_partitions: set[TP] | None, wait_seconds: float
    ) -> tuple[Any, dict[TP, int]]:
        fetching = self._thread._ensure_consumer()
        records = await self._thread._fetch_records(
            # None (a client-only app: every partition) passes through, as in faust's own
            fetching, cast(set[TP], active_partitions), timeout=wait_seconds,
            max_records=fetching._max_poll_records,
        )  # fmt: skip
        # Read in the step that drained the records: no seek ran in between.
        return records, dict(self._epoch_table())

    def _moved(self, partitions: Iterable[TP]) -> None:
        """What was fetched of these partitions before now is stale."""
        epochs = self._epoch_table()
        for tp in map(ensure_TP, partitions):
            epochs[tp] = epochs.get(tp, 0) + 1

    def _epoch_table(self) -> dict[TP, int]:
        if self._epochs is None:
            self._epochs = {}
        return self._epochs

    def _positions_lock(self) -> threading.Lock:
        """Held by a seek (in the fetching thread) and by the hand-over while it records
        a message as read: a seek between the hand-over's check of the epoch and its
        record would be undone by it."""
        if self._lock is None:
            self._lock = threading.Lock()
        return self._lock

    async def _drain_messages(self, fetcher: ServiceT) -> None:
        consumer_stopped = cast(Service, self)._stopped.is_set
        fetcher_stopped = cast(Service, fetcher)._stopped.is_set
        try:
            while not (consumer_stopped() or fetcher_stopped()):
                self.diag.set_flag(CONSUMER_FETCHING)
                batch = self.getmany(timeout=1.0)
                await self.sleep(0)  # getmany may return at once, again and again
                if not self.should_stop:
                    await self._hand_over(batch)
                self.diag.unset_flag(CONSUMER_FETCHING)
        except self.consumer_stopped_errors:
            if not self.transport.app.should_stop:
                raise
        except asyncio.CancelledError:
            if not self.transport.app.should_stop:
                raise
        finally:
            self.diag.unset_flag(CONSUMER_FETCHING)

    async def _hand_over(self, batch: Any) -> None:
        """Hand a fetched batch to the streams, message by message, but none of a
        partition sought meanwhile (it will be fetched again from the new position)."""
        handed, epochs = 0, self._epoch_table()
        behind: dict[TP, int] = {}  # partitions to fetch again, from this offset
        async for tp, message in batch:
            fetched = self._drained_epochs  # set by the fetch, before the first message
            handed += 1
            if not handed % _YIELD_EVERY:
                await asyncio.sleep(0)
            if tp in behind or epochs.get(tp, 0) != fetched.get(tp, 0):
                continue  # to be fetched again, or sought since the fetch: stale
            read = self._read_offset[tp]
            if read is not None and message.offset < read:
                continue  # already handed over since the last seek
            if read is not None and self._went_past(tp, read, message):
                behind[tp] = read
                continue
            await self._note_gap(tp, read, message)
            await self._maybe_commit()
            if epochs.get(tp, 0) != fetched.get(tp, 0):
                continue
            await self._deliver(message)
            with self._positions_lock():
                if epochs.get(tp, 0) == fetched.get(tp, 0):
                    self._read_offset[tp] = message.offset
        for tp, offset in behind.items():
            # A partition sought meanwhile (a rebalance's seek to the committed offsets)
            # is where it should be: going back to an offset of before the seek would
            # pass over every message from the committed one on, never to be acked.
            sought = await self._thread.call_thread(
                self._seek_in_thread, {tp: offset}, self._drained_epochs.get(tp, 0)
            )
            if tp in sought:
                self._sought_back_table()[tp] = offset
                log.info("consumer.fetching_again", partition=partition_label(tp),
                         offset=offset)  # fmt: skip

    def _went_past(self, tp: TP, read: int, message: Message) -> bool:
        """Whether the fetch went past messages of a committing topic never handed over:
        a seek that lands while a batch is handed over drops the rest of the batch as
        stale, but the position has moved on, and faust would commit past the hole
        (seen: two workers, offsets 390 to 402 of a partition never processed). The
        partition is fetched again from the last offset handed over (or sought to); if
        the hole is there again, it is real (retention, compaction) and counts as acked."""
        if message.offset - read <= 1 or not self.app.topics.acks_enabled_for(message.topic):
            return False
        return self._sought_back_table().get(tp) != read

    def _sought_back_table(self) -> dict[TP, int]:
        if self._sought_back is None:
            self._sought_back = {}
        return self._sought_back

    async def _deliver(self, message: Message) -> None:
        """Give a message to the streams, as faust does, but without four tasks a message
        when nothing waits. Faust runs the callback against the flow being suspended (a
        rebalance must not wait for a full stream buffer), which needs tasks; the
        callback is run one step here first, and only if it has to wait (a full buffer)
        does the rest of it race the suspension in faust's way."""
        # The conductor's `on_message`: a coroutine (faust types it as any awaitable).
        callback = cast(Coroutine[Any, Any, Any], self.callback(message))
        if self.suspend_flow.is_set():
            await self.wait_first(callback, self.suspend_flow.wait())
            return
        try:
            waiting_on = callback.send(None)
        except StopIteration:
            return  # delivered without waiting: the usual case
        await self.wait_first(_Resumed(callback, waiting_on), self.suspend_flow.wait())

    async def _note_gap(self, tp: TP, read: int | None, message: Message) -> None:
        # Offsets with no message (compaction, transaction markers) count as acked.
        if read and message.offset - read > 1 and self.app.topics.acks_enabled_for(message.topic):
            await self._add_gap(tp, read + 1, message.offset)

    async def _maybe_commit(self) -> None:
        if self._commit_every is not None and self._n_acked >= self._commit_every:
            self._n_acked = 0
            await self.commit()

    def fetch_state(self) -> dict[str, dict[str, Any]]:
        """Per held partition: what faust has read, committed and holds acked, and
        where aiokafka's fetch stands (for the stall log: a stall leaves no other
        trace). Read across threads without a lock: a snapshot, good enough to log."""
        fetching = getattr(self._thread, "_consumer", None)
        subscription = getattr(getattr(fetching, "_subscription", None), "subscription", None)
        assignment = getattr(subscription, "assignment", None)
        state = {}
        for tp in sorted(self.assignment()):
            found: dict[str, Any] = {
                "read": self._read_offset.get(tp),
                "committed": self._committed_offset.get(tp),
                "acked": len(self._acked.get(tp, ())),
                "paused": tp in self._paused_partitions,
                "epoch": self._epoch_table().get(tp, 0),
                "sought_back": self._sought_back_table().get(tp),
            }
            fetch = assignment.state_value(tp) if assignment is not None else None
            if fetch is not None:
                found["position"] = fetch._position  # `position` asserts one is set
                found["fetch_paused"] = fetch.paused
                found["awaiting_reset"] = fetch.awaiting_reset
            state[partition_label(tp)] = found
        return state


def _named(offsets: Mapping[Any, int | None]) -> dict[str, int | None]:
    return {partition_label(tp): offset for tp, offset in offsets.items()}


class _Resumed:
    """The rest of a coroutine that ran its first step and yielded `waiting_on` (what it
    waits for): awaiting this hands that to the task awaiting it and runs the rest,
    exactly as if the task had run the coroutine from its start."""

    def __init__(self, coroutine: Coroutine[Any, Any, Any], waiting_on: Any) -> None:
        self._coroutine, self._waiting_on = coroutine, waiting_on

    def __await__(self) -> Generator[Any, Any, Any]:
        coroutine, waiting_on = self._coroutine, self._waiting_on
        while True:
            try:
                answer = yield waiting_on
            except BaseException as exc:  # a cancellation, passed on to the coroutine
                step = functools.partial(coroutine.throw, exc)
            else:
                step = functools.partial(coroutine.send, answer)
            try:
                waiting_on = step()
            except StopIteration as done:
                return done.value


class VizitaTransport(faust_aiokafka.Transport):
    Consumer = VizitaConsumer
    Producer = VizitaProducer


class VizitaApp(faust.App):
    """A faust App whose consumer is `VizitaConsumer`."""

    def _new_transport(self) -> TransportT:
        return VizitaTransport(self.conf.broker_consumer, self)
