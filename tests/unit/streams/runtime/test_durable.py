"""A durable table's reads and writes (streams.runtime.durable.DurableTable): writes not
yet sent are read before the database, a database is written with its changelog offset
in the same batch, and a database that fails is the worker's fault, never the event's."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import rocksdict
from faust.stores.rocksdb import Store

from streams.errors import TableUnavailable
from streams.runtime.durable import DurableTable

OFFSET_KEY = Store.offset_key  # where faust's RocksDB store keeps its offset


@pytest.fixture
def table(tmp_path: Path) -> Iterator[Any]:
    databases: dict[int, rocksdict.Rdict] = {}

    def database(partition: int) -> rocksdict.Rdict:
        if partition not in databases:
            path = str(tmp_path / f"t-{partition}.db")
            databases[partition] = rocksdict.Rdict(path, options=rocksdict.Options(raw_mode=True))
        return databases[partition]

    table: Any = DurableTable.__new__(DurableTable)
    table._unsent, table._sending, table._recovered_into = {}, {}, set()
    table._data = SimpleNamespace(offset_key=OFFSET_KEY, _db_for_partition=database)
    table.name = "t"
    yield table
    for db in databases.values():
        db.close()


def test_a_write_not_yet_sent_is_read_before_the_database(table: Any) -> None:
    table.apply_changelog(0, [(b"k", b"old")], last_offset=4)
    table.put(b"k", b"new", 0)
    assert table.read(b"k", 0) == b"new"
    assert table.read(b"k", 1) is None  # another partition's database
    assert dict(table.items_in([0])) == {b"k": b"new"}


def test_a_database_holds_its_changelog_offset_and_lists_only_keys(table: Any) -> None:
    table.apply_changelog(2, [(b"a", b"1"), (b"b", b"2")], last_offset=41)
    assert table._database(2).get(OFFSET_KEY) == b"41"
    assert sorted(table.items_in([2])) == [(b"a", b"1"), (b"b", b"2")]
    assert (table.stored_offset(2), table.stored_offset(3)) == (41, -1)


def test_a_tombstone_from_the_changelog_deletes_its_key(table: Any) -> None:
    table.apply_changelog(1, [(b"a", b"1"), (b"b", b"2")], last_offset=7)
    table.apply_changelog(1, [(b"a", None)], last_offset=8)
    assert dict(table.items_in([1])) == {b"b": b"2"}
    assert table.stored_offset(1) == 8


def test_the_partitions_faust_s_recovery_wrote_into_are_told_once(table: Any) -> None:
    applied: list[Any] = []
    table.data.apply_changelog_batch = lambda batch, **_: applied.extend(batch)
    events = [SimpleNamespace(message=SimpleNamespace(partition=p)) for p in (3, 1, 3)]
    table.apply_changelog_batch(iter(events))
    assert applied == events  # all of them reach faust's store, the iterator read once
    assert table.take_recovered() == {1, 3}
    assert table.take_recovered() == set()


def test_a_database_that_fails_is_the_table_s_error(table: Any) -> None:
    def broken(partition: int) -> Any:
        raise RuntimeError("IO error: No space left on device")

    table.data._db_for_partition = broken
    with pytest.raises(TableUnavailable, match="No space left"):
        table.read(b"k", 0)
    with pytest.raises(TableUnavailable):
        list(table.items_in([0]))
