"""The stall watch's runtime side (streams.runtime.watch): which partitions it reads,
what it says a stuck task waits on, and that a stall fails the stream's health."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from faust.types import TP

from streams.errors import StreamStalled
from streams.runtime import watch
from streams.runtime.durable import Health
from streams.runtime.producer_fixes import TrackingProducer
from streams.stalls import Reading

AGENTS = {"v.visits": "revisions", "v.visit-contributions": "scopes"}


@dataclass
class FakeConsumer:
    ends: dict[TP, int | None]
    committed: dict[TP, int] = field(default_factory=dict)

    def assignment(self) -> set[TP]:
        return set(self.ends)

    def highwater(self, tp: TP) -> int | None:
        return self.ends[tp]

    def committed_position(self, tp: TP) -> int | None:
        return self.committed.get(tp)


def test_only_the_stages_partitions_with_known_positions_are_read() -> None:
    consumer = FakeConsumer(
        ends={TP("v.visits", 0): 9, TP("v.visits", 1): 4, TP("v.visits", 2): None,
              TP("v.visit-state-changelog", 0): 99},
        committed={TP("v.visits", 0): 7, TP("v.visits", 2): 3,
                   TP("v.visit-state-changelog", 0): 1},
    )  # fmt: skip
    assert watch.readings(consumer, AGENTS) == {"v.visits/0": Reading(7, 9)}


async def _never() -> None:
    await asyncio.Event().wait()


async def _handler() -> None:
    await _never()


def test_the_await_chain_names_each_coroutine_down_to_the_future() -> None:
    async def run() -> list[str]:
        task = asyncio.create_task(_handler())
        await asyncio.sleep(0)
        chain = watch.await_chain(task.get_coro())
        task.cancel()
        return chain

    chain = asyncio.run(run())
    assert [link.split(" ")[0] for link in chain] == ["_handler", "_never", "wait", "FutureIter"]
    assert "test_watch.py:" in chain[0]


def test_a_stuck_partition_fails_the_stream_and_logs_what_waits(monkeypatch: Any) -> None:
    consumer = FakeConsumer(ends={TP("v.visit-contributions", 1): 50},
                            committed={TP("v.visit-contributions", 1): 20})  # fmt: skip
    app = type("App", (), {"consumer": consumer})()
    logged: list[dict[str, Any]] = []
    monkeypatch.setattr(
        watch.log, "error", lambda event, **kw: logged.append({"event": event, **kw})
    )
    health = Health()

    async def run() -> tuple[str, BaseException]:
        stuck = asyncio.create_task(_handler(), name="scopes-batch")
        watcher = asyncio.create_task(
            watch.watch_for_stalls(app, AGENTS, limit=0.2, ready=lambda: True, health=health)
        )
        failure = await asyncio.wait_for(health.wait_failed(), 5)
        await watcher
        stuck.cancel()
        return failure

    where, why = asyncio.run(run())
    assert where == "scopes"
    assert isinstance(why, StreamStalled)
    assert str(why).startswith("v.visit-contributions/1 at offset 20 with 30 events waiting")
    assert logged[0]["event"] == "stream.stalled"
    assert any(line.startswith("scopes-batch: _handler") for line in logged[0]["tasks"])


def test_no_stall_while_the_stream_is_not_ready() -> None:
    consumer = FakeConsumer(ends={TP("v.visits", 0): 50}, committed={TP("v.visits", 0): 20})
    app = type("App", (), {"consumer": consumer})()
    health = Health()

    async def run() -> bool:
        watcher = asyncio.create_task(
            watch.watch_for_stalls(app, AGENTS, limit=0.2, ready=lambda: False, health=health)
        )
        await asyncio.sleep(1.0)
        watcher.cancel()
        return bool(health.failures)

    assert asyncio.run(run()) is False


def test_the_producer_s_state_names_each_partition_held_and_its_leader() -> None:
    async def run() -> dict[str, Any]:
        faust_producer = type("Producer", (), {})()
        faust_producer._producer = TrackingProducer(bootstrap_servers="127.0.0.1:9")
        await faust_producer._producer._message_accumulator.add_message(
            TP("v.visit-state-changelog", 2), b"key", b"value", timeout=1
        )
        return watch.producer_state(faust_producer)

    state = asyncio.run(run())
    assert state["waiting"] == {"v.visit-state-changelog/2": {"batches": 1, "leader": None}}
    assert (state["in_flight_nodes"], state["muted"]) == ([], [])
    assert watch.producer_state(None) == {}


def test_a_stall_stops_the_stream_even_when_the_clients_cannot_be_described(
    monkeypatch: Any,
) -> None:
    """The accounts read the clients' private state: if that ever changes under them,
    the stall must still fail the stream, saying why they are missing."""
    consumer = FakeConsumer(ends={TP("v.visits", 0): 50}, committed={TP("v.visits", 0): 20})
    consumer.fetch_state = lambda: 1 / 0  # type: ignore[attr-defined]  # a broken account
    broken = type("Producer", (), {"_producer": object()})()  # no client under it
    app = type("App", (), {"consumer": consumer, "producer": broken})()
    logged: list[dict[str, Any]] = []
    monkeypatch.setattr(
        watch.log, "error", lambda event, **kw: logged.append({"event": event, **kw})
    )
    health = Health()

    async def run() -> tuple[str, BaseException]:
        watcher = asyncio.create_task(
            watch.watch_for_stalls(app, AGENTS, limit=0.2, ready=lambda: True, health=health)
        )
        failure = await asyncio.wait_for(health.wait_failed(), 5)
        await watcher
        return failure

    where, why = asyncio.run(run())
    assert (where, type(why)) == ("revisions", StreamStalled)
    assert logged[0]["fetch"] == {"not_read": "ZeroDivisionError('division by zero')"}
    assert logged[0]["producer"]["not_read"].startswith("AttributeError(")


@dataclass
class LosingConsumer:
    """A consumer whose head of `v.visits/0` is lost on every reading until fetched
    again."""

    lost: dict[TP, int]
    fetched_again: list[tuple[TP, int]] = field(default_factory=list)

    def lost_heads(self) -> dict[TP, int]:
        return dict(self.lost)

    async def fetch_again(self, tp: TP, offset: int) -> None:
        self.fetched_again.append((tp, offset))


def test_a_head_lost_on_two_readings_in_a_row_is_fetched_again() -> None:
    head = TP("v.visits", 0)
    consumer = LosingConsumer({head: 437})

    async def readings_in_a_row() -> list[dict[TP, int]]:
        seen: dict[TP, int] = {}
        kept = []
        for _ in range(3):
            seen = await watch.fetch_lost_heads_again(consumer, seen)
            kept.append(seen)
        return kept

    # Seen once, fetched again on the second reading, then it counts from the start.
    assert asyncio.run(readings_in_a_row()) == [{head: 437}, {}, {head: 437}]
    assert consumer.fetched_again == [(head, 437)]


def test_a_head_that_moved_between_readings_is_not_fetched_again() -> None:
    head = TP("v.visits", 0)
    consumer = LosingConsumer({head: 437})

    async def moved() -> dict[TP, int]:
        return await watch.fetch_lost_heads_again(consumer, {head: 436})

    assert asyncio.run(moved()) == {head: 437}
    assert consumer.fetched_again == []


def test_a_consumer_that_keeps_no_account_of_its_heads_fetches_nothing_again() -> None:
    consumer = FakeConsumer(ends={TP("v.visits", 0): 50})
    assert asyncio.run(watch.fetch_lost_heads_again(consumer, {TP("v.visits", 0): 1})) == {}
