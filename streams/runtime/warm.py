"""Before a worker joins the group, its slot's databases read every table partition's
changelog up to its end, outside the group, while the workers already in it go on.

A worker that joins with an empty slot (a new machine, a second worker on one) would
otherwise read each partition it is given from offset 0 while the whole group waits in
the rebalance: tens of seconds on a few months of history. Read beforehand, the
recovery in the rebalance reads only what was written since. Each partition's records
go in with the changelog offset they end at, in one write batch, as `DurableTable`
writes them, so a database is never ahead of its changelog; Faust's recovery takes it
from there. It is best effort: if the broker cannot be read, the recovery reads it all.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import structlog
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError

from streams.runtime.durable import DurableTable

log = structlog.get_logger(__name__)

FETCH_RECORDS = 10_000
POLL_MS = 500
# A safeguard, never reached on a healthy broker: the recovery reads what is left.
WARM_UP_SECONDS = 300.0


@dataclass(frozen=True)
class Warmed:
    records: int
    partitions: int
    seconds: float


async def warm_up(tables: Sequence[DurableTable], bootstrap: str) -> Warmed | None:
    """Read each table's changelog from its database's offset to the end it has now."""
    started = time.monotonic()
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False,
        max_poll_records=FETCH_RECORDS, auto_offset_reset="earliest",
    )  # fmt: skip
    try:
        await consumer.start()
        try:
            records, partitions = await _read_to_ends(consumer, tables)
        finally:
            await consumer.stop()
    except KafkaError as exc:  # the recovery in the group reads what this did not
        log.warning("stream.warm_up_skipped", error=repr(exc))
        return None
    warmed = Warmed(records, partitions, round(time.monotonic() - started, 2))
    log.info("stream.warmed_up", records=warmed.records, partitions=warmed.partitions,
             seconds=warmed.seconds)  # fmt: skip
    return warmed


async def _read_to_ends(
    consumer: AIOKafkaConsumer, tables: Sequence[DurableTable]
) -> tuple[int, int]:
    by_topic = {table.changelog_topic.get_topic_name(): table for table in tables}
    existing = await consumer.topics()  # a first start has no changelogs yet
    tps = [
        TopicPartition(topic, partition)
        for topic, table in sorted(by_topic.items())
        if topic in existing
        for partition in range(table.partitions or table.app.conf.topic_partitions)
    ]
    ends = await consumer.end_offsets(tps)
    starts = {tp: by_topic[tp.topic].stored_offset(tp.partition) + 1 for tp in tps}
    behind = {tp: ends[tp] for tp in tps if starts[tp] < ends[tp]}
    consumer.assign(list(behind))
    for tp in behind:
        consumer.seek(tp, starts[tp])
    return await _read_assigned(consumer, by_topic, behind), len(behind)


async def _read_assigned(
    consumer: AIOKafkaConsumer, by_topic: dict[str, DurableTable], ends: dict[TopicPartition, int]
) -> int:
    behind, records = dict(ends), 0
    deadline = time.monotonic() + WARM_UP_SECONDS
    while behind and time.monotonic() < deadline:
        fetched = await consumer.getmany(*behind, timeout_ms=POLL_MS)
        for tp, batch in fetched.items():
            records += len(batch)
            pairs = [(record.key, record.value) for record in batch]
            by_topic[tp.topic].apply_changelog(tp.partition, pairs, batch[-1].offset)
        for tp in list(behind):
            if await consumer.position(tp) >= behind[tp]:
                del behind[tp]
                consumer.pause(tp)
    return records
