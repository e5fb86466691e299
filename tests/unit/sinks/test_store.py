"""Opening stores by URL, and the server backend's error classes (no server needed)."""

from __future__ import annotations

from pathlib import Path

import pytest

from sinks.errors import StoreUnavailable, StoreUrlError
from sinks.store import Row, ServerBackend, Store, _convert_row, open_store
from vizita.app.broker import free_port


@pytest.mark.parametrize("url", ["chdb://relative/path", "postgres://x", "store"])
def test_bad_urls_are_refused(url: str) -> None:
    with pytest.raises(StoreUrlError):
        open_store(url, "vizita")


def test_the_embedded_engine_is_never_a_cluster(tmp_path: Path) -> None:
    with pytest.raises(StoreUrlError, match="one node"):
        open_store(f"chdb://{tmp_path}/store", "vizita", "vizita")
    assert not (tmp_path / "store").exists()  # refused before anything was opened


class _Kept:
    def __init__(self) -> None:
        self.statements: list[str] = []

    def execute(self, sql: str) -> None:
        self.statements.append(sql)

    def fetch(self, sql: str) -> list[Row]:
        raise AssertionError(sql)

    def close(self) -> None:
        pass


def test_a_cluster_store_inserts_through_the_distributed_table_and_waits_for_shards() -> None:
    server = open_store(f"clickhouse://default:@127.0.0.1:{free_port()}/vizita", "v", "c")
    assert server.cluster == "c"  # nothing is connected before the first statement
    kept = _Kept()
    Store(kept, "v", "c").insert("visits", ("visit_id",), [("v1",)])
    Store(kept, "v").insert("visits", ("visit_id",), [("v1",)])
    on_cluster, on_one_node = kept.statements
    assert on_cluster.startswith("INSERT INTO v.visits (visit_id) SETTINGS insert_deduplication")
    assert "distributed_foreground_insert = 1" in on_cluster
    assert on_one_node == on_cluster.replace(", distributed_foreground_insert = 1", "")


def test_a_server_that_is_down_is_unavailable_not_a_crash() -> None:
    # Nothing listens on this port: the sink must see a transient error it can retry.
    store = open_store(f"clickhouse://default:@127.0.0.1:{free_port()}/vizita", "vizita")
    assert isinstance(store.backend, ServerBackend)
    with pytest.raises(StoreUnavailable):
        store.query("SELECT 1")
    with pytest.raises(StoreUnavailable):
        store.insert("visits", ("visit_id",), [("v1",)])


def test_embedded_rows_become_python_values() -> None:
    meta = [
        {"name": "d", "type": "Date"}, {"name": "t", "type": "DateTime64(3, 'UTC')"},
        {"name": "n", "type": "Nullable(UInt64)"},
        {"name": "a", "type": "Array(LowCardinality(String))"},
        {"name": "b", "type": "Bool"}, {"name": "big", "type": "UInt64"},
    ]  # fmt: skip
    row = {"d": "2026-03-01", "t": "2026-03-01 10:00:00.500", "n": None, "a": ["x"], "b": True,
           "big": "18446744073709551615"}  # fmt: skip
    out = _convert_row(row, meta)
    assert str(out["d"]) == "2026-03-01"
    assert out["t"].isoformat() == "2026-03-01T10:00:00.500000+00:00"
    assert out["n"] is None
    assert out["a"] == ["x"]
    assert out["big"] == 2**64 - 1
