"""The stall watch on the running app: `streams.stalls` fed from Faust's consumer.

Every few seconds the watch reads the partitions of the stages' source topics that this
worker holds: the position the group has committed and the end Kafka reports. A
partition with events waiting whose position has not moved for `limit` seconds fails
the stream through `Health` (the runner then stops the worker loudly, and the
supervisor restarts it), after one log line that says what every task of the worker's
event loops is waiting on: a stall leaves no other trace.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import structlog

from streams.errors import StreamStalled
from streams.runtime.durable import Health
from streams.stalls import Reading, StallWatch
from vizita.contract.topics import partition_label

log = structlog.get_logger(__name__)

#: the watch reads the partitions at most this far apart (and four times per limit)
READ_EVERY_SECONDS = 5.0
#: a task's await chain is cut after this many links
CHAIN_LINKS = 16
#: a task's name is cut after this many characters (faust names some by their repr)
TASK_NAME_CHARACTERS = 60


async def watch_for_stalls(
    app: Any, agents: Mapping[str, str], *, limit: float, ready: Callable[[], bool],
    health: Health,
) -> None:  # fmt: skip
    """Until a stall: `agents` maps each source topic's name to the agent reading it."""
    watch = StallWatch(limit)
    loop = asyncio.get_running_loop()
    lost: dict[Any, int] = {}
    while True:
        await asyncio.sleep(min(READ_EVERY_SECONDS, limit / 4))
        if not ready():
            watch.reset()
            lost = {}
            continue
        lost = await fetch_lost_heads_again(app.consumer, lost)
        stalls = watch.observe(loop.time(), readings(app.consumer, agents))
        if stalls:
            described = [stall.describe() for stall in stalls]
            producer = getattr(app, "producer", None)
            log.error("stream.stalled", partitions=described, tasks=waiting_tasks(app),
                      fetch=_described(fetch_state, app.consumer),
                      producer=_described(producer_state, producer))  # fmt: skip
            agent = agents[stalls[0].partition.rpartition("/")[0]]
            health.fail(agent, StreamStalled("; ".join(described)))
            return


async def fetch_lost_heads_again(consumer: Any, seen: Mapping[Any, int]) -> dict[Any, int]:
    """Fetch again each partition whose next offset to commit was lost on the way to
    the stages (`VizitaConsumer.lost_heads`) on this reading and on the one before (a
    commit ran between them, which would have closed an offset with no message); the
    lost heads to look at again on the next reading."""
    find = getattr(consumer, "lost_heads", None)
    lost: dict[Any, int] = find() if callable(find) else {}
    for tp, offset in lost.items():
        if seen.get(tp) == offset:
            log.warning("consumer.lost_head", partition=partition_label(tp), offset=offset)
            await consumer.fetch_again(tp, offset)
    return {tp: offset for tp, offset in lost.items() if seen.get(tp) != offset}


def readings(consumer: Any, agents: Mapping[str, str]) -> dict[str, Reading]:
    """The held partitions of the agents' topics whose position and end are known."""
    found = {}
    for tp in consumer.assignment():
        if tp.topic not in agents:
            continue  # a changelog: read while the tables recover, not by a stage
        end = consumer.highwater(tp)
        position = consumer.committed_position(tp)
        if end is not None and position is not None:
            found[partition_label(tp)] = Reading(position, end)
    return found


def _described(describe: Callable[[Any], dict[str, Any]], part: Any) -> dict[str, Any]:
    # Read from the clients' private state: should that change, the stall still stops
    # the worker, with the reason this account could not be had.
    try:
        return describe(part)
    except Exception as exc:  # any fault here must not hide the stall
        return {"not_read": repr(exc)}


def fetch_state(consumer: Any) -> dict[str, Any]:
    """The consumer's own account of each held partition, when it keeps one."""
    state = getattr(consumer, "fetch_state", None)
    return dict(state()) if callable(state) else {}


def producer_state(producer: Any) -> dict[str, Any]:
    """What the producer holds and why it is not sent: per partition with batches
    waiting, how many and the leader the producer knows (None or -1: none), and what
    is in flight (a stage waiting on a delivery that never comes stalls too)."""
    sending = getattr(producer, "_producer", None)
    if sending is None:
        return {}
    cluster = sending.client.cluster
    waiting = {
        partition_label(tp): {"batches": len(batches),
                              "leader": cluster.leader_for_partition(tp)}
        for tp, batches in sending._message_accumulator._batches.items() if batches
    }  # fmt: skip
    return {
        "waiting": waiting,
        "pending": len(sending._message_accumulator._pending_batches),
        "in_flight_nodes": sorted(sending._sender._in_flight),
        "muted": sorted(partition_label(tp) for tp in sending._sender._muted_partitions),
        "metadata_updating": sending.client._md_update_fut is not None,
        "metadata_topics": len(sending.client._topics),
    }


def waiting_tasks(app: Any) -> list[str]:
    """Each task of the app's event loop and of its consumer's thread, with the chain
    of awaits it is suspended in (innermost last)."""
    loops = [asyncio.get_running_loop()]
    thread_loop = getattr(getattr(app.consumer, "_thread", None), "thread_loop", None)
    if isinstance(thread_loop, asyncio.AbstractEventLoop):
        loops.append(thread_loop)
    lines = []
    for loop in loops:
        for task in _tasks_of(loop):
            name = task.get_name()[:TASK_NAME_CHARACTERS]
            lines.append(f"{name}: {' -> '.join(await_chain(task.get_coro()))}")
    return sorted(lines)


def _tasks_of(loop: asyncio.AbstractEventLoop) -> list[asyncio.Task[Any]]:
    # Another thread's loop may add a task while its set is read: try again.
    for _ in range(3):
        with contextlib.suppress(RuntimeError):
            return list(asyncio.all_tasks(loop))
    return []


def await_chain(awaitable: Any) -> list[str]:
    """Where a suspended coroutine is, then what it awaits, link by link."""
    return list(_links(awaitable))[:CHAIN_LINKS]


def _links(awaitable: Any) -> Iterator[str]:
    while awaitable is not None:
        if type(awaitable).__name__ == "coroutine_wrapper":
            # What `coroutine.__await__()` returns (faust's agents are awaited through
            # it): its one reference is the coroutine, which has no other way out.
            awaitable = next(iter(gc.get_referents(awaitable)), None)
            continue
        frame = _first_of(awaitable, ("cr_frame", "gi_frame", "ag_frame"))
        if frame is None:
            yield type(awaitable).__name__  # a future (its FutureIter), or an awaitable object
            return
        yield f"{frame.f_code.co_name} ({Path(frame.f_code.co_filename).name}:{frame.f_lineno})"
        awaitable = _first_of(awaitable, ("cr_await", "gi_yieldfrom", "ag_await"))


def _first_of(awaitable: Any, attributes: tuple[str, ...]) -> Any:
    for attribute in attributes:
        found = getattr(awaitable, attribute, None)
        if found is not None:
            return found
    return None
