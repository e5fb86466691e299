"""The tables on disk: after each run of a worker on one data directory, every table
partition's database holds exactly its changelog's last value of each key and the
changelog's last offset (a database is never ahead of its changelog, nor behind it at a
clean stop), and the store is the uninterrupted reference. A new slot's warm-up, before
its worker joins the group, leaves it the same."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path
from typing import Any

import pytest
import rocksdict
from faust.stores.rocksdb import Store
from kafka import KafkaConsumer, TopicPartition
from workers import assert_same, dump, finish, publish_all, scenario_settings, start_worker

from streams.runtime.app import Streams
from streams.runtime.warm import Warmed, warm_up
from vizita.app.broker import LocalBroker
from vizita.contract.settings import Settings
from vizita.contract.targets import load_targets

pytestmark = pytest.mark.timeout(900)
OFFSET_KEY = Store.offset_key  # where faust's RocksDB store keeps its offset
TABLES = 5  # visit-state; scope-entries, days-seen, alert-state, stage2-progress


def test_each_database_equals_its_changelog_after_each_run(
    kafka: LocalBroker, payloads: list[bytes], reference: dict[str, Any], tmp_path: Path
) -> None:
    settings = scenario_settings(kafka, "disk", tmp_path)
    half = len(payloads) // 2
    publish_all(settings, payloads[:half])
    finish(start_worker(settings, tmp_path / "store", "--exit-when-done"))
    assert _checked_databases(settings) == TABLES * settings.partitions
    publish_all(settings, payloads[half:])
    finish(start_worker(settings, tmp_path / "store", "--exit-when-done"))
    assert _checked_databases(settings) == TABLES * settings.partitions
    tables = dump(tmp_path / "store", "disk")
    for table in ("visits", "indicator_values", "dead_letters"):
        assert_same(table, tables[table], reference[table])


def test_a_new_slot_is_warmed_up_to_the_changelogs_before_joining(
    kafka: LocalBroker, payloads: list[bytes], tmp_path: Path
) -> None:
    settings = scenario_settings(kafka, "warm", tmp_path)
    publish_all(settings, payloads[: len(payloads) // 2])
    finish(start_worker(settings, tmp_path / "store", "--exit-when-done"))
    joining = settings.model_copy(update={"data_dir": tmp_path / "joining"})
    first, again = asyncio.run(_warm_up_twice(joining))
    assert first is not None
    assert first.records > 0
    assert _checked_databases(joining) == first.partitions == TABLES * settings.partitions
    assert again is not None
    assert (again.records, again.partitions) == (0, 0)


async def _warm_up_twice(settings: Settings) -> tuple[Warmed | None, Warmed | None]:
    """Two warm-ups of one new slot, outside the group; the second has nothing to read."""
    assert settings.kafka_bootstrap is not None
    streams = Streams(settings, load_targets(settings.targets_file))
    warmed = []
    for _ in range(2):
        warmed.append(await warm_up(streams.tables, settings.kafka_bootstrap))
        for table in streams.tables:
            table.close_databases()
    return warmed[0], warmed[1]


def _checked_databases(settings: Settings) -> int:
    """How many databases of the worker's slot were checked against their changelogs."""
    tables = settings.data_dir / "faust" / settings.app_id / "slot-0" / "v1" / "tables"
    checked = 0
    consumer = KafkaConsumer(bootstrap_servers=settings.kafka_bootstrap)
    with contextlib.closing(consumer):
        for path in sorted(tables.glob("*.db")):
            table, partition = path.name.removesuffix(".db").rsplit("-", 1)
            topic = f"{settings.app_id}-{table}-changelog"
            values, last = _changelog(consumer, TopicPartition(topic, int(partition)))
            stored = _database(path)
            offset = None if last is None else str(last).encode()
            assert stored.pop(OFFSET_KEY, None) == offset, path.name
            assert stored == values, path.name
            checked += 1
    return checked


def _changelog(
    consumer: KafkaConsumer, tp: TopicPartition
) -> tuple[dict[bytes, bytes], int | None]:
    """A changelog partition's last value of each key (without deleted keys), and its
    last offset."""
    consumer.assign([tp])
    end = consumer.end_offsets([tp])[tp]
    consumer.seek_to_beginning(tp)
    values: dict[bytes, bytes] = {}
    last = None
    while consumer.position(tp) < end:
        for records in consumer.poll(timeout_ms=1000).values():
            for record in records:
                last = record.offset
                if record.value is None:
                    values.pop(record.key, None)
                else:
                    values[record.key] = record.value
    return values, last


def _database(path: Path) -> dict[bytes, bytes]:
    db = rocksdict.Rdict(str(path), options=rocksdict.Options(raw_mode=True),
                         access_type=rocksdict.AccessType.read_only())  # fmt: skip
    try:
        return {bytes(key): bytes(value) for key, value in db.items()}
    finally:
        db.close()
