"""The markers of a migration, rendered for one node and for a cluster."""

from __future__ import annotations

import pytest

from sinks.ddl import DdlError, Layout

TEXT = """-- a comment is left out, {with_what_looks_like_a_marker}
CREATE TABLE IF NOT EXISTS {db}.{local:t}{on_cluster}
(a UInt8, v UInt64)
ENGINE = {engine:ReplacingMergeTree(v)}
ORDER BY a
SETTINGS {dedup_window} = 1000;

{distributed:t:cityHash64(a)};
"""


def test_one_node_renders_the_plain_statement() -> None:
    assert Layout("db").render(TEXT) == (
        "CREATE TABLE IF NOT EXISTS db.t\n(a UInt8, v UInt64)\n"
        "ENGINE = ReplacingMergeTree(v)\nORDER BY a\n"
        "SETTINGS non_replicated_deduplication_window = 1000",
    )


def test_a_cluster_renders_replicated_shards_and_a_distributed_table() -> None:
    assert Layout("db", "c").render(TEXT) == (
        "CREATE TABLE IF NOT EXISTS db.t_local ON CLUSTER c\n(a UInt8, v UInt64)\n"
        "ENGINE = ReplicatedReplacingMergeTree("
        "'/clickhouse/tables/{shard}/{database}/t_local', '{replica}', v)\nORDER BY a\n"
        "SETTINGS replicated_deduplication_window = 1000",
        "CREATE OR REPLACE TABLE db.t ON CLUSTER c AS db.t_local "
        "ENGINE = Distributed(c, db, t_local, cityHash64(a))",
    )


@pytest.mark.parametrize(
    ("engine", "replicated"),
    [
        ("MergeTree", "ReplicatedMergeTree('/clickhouse/tables/{shard}/{database}/t_local', "
                      "'{replica}')"),
        ("ReplacingMergeTree", "ReplicatedReplacingMergeTree("
                               "'/clickhouse/tables/{shard}/{database}/t_local', '{replica}')"),
    ],
)  # fmt: skip
def test_engines_without_arguments(engine: str, replicated: str) -> None:
    assert Layout("db").engine(engine, "t") == engine
    assert Layout("db", "c").engine(engine, "t") == replicated


def test_a_table_made_anew_gets_a_path_of_its_own() -> None:
    text = (
        "CREATE OR REPLACE TABLE {db}.{local:t}{on_cluster} (a UInt8) ENGINE = {engine:MergeTree}"
    )
    (statement,) = Layout("db", "c").render(text)
    assert "'/clickhouse/tables/{shard}/{database}/t_local_{uuid}', '{replica}'" in statement
    (single,) = Layout("db").render(text)
    assert single == "CREATE OR REPLACE TABLE db.t (a UInt8) ENGINE = MergeTree"


def test_the_bookkeeping_form_of_a_distributed_table_leaves_an_existing_one() -> None:
    statement = Layout("db", "c").distributed("t", "k", replace=False)
    assert statement.startswith("CREATE TABLE IF NOT EXISTS db.t ON CLUSTER c AS db.t_local ")
    assert Layout("db").distributed("t", "k") == ""


@pytest.mark.parametrize(
    "text",
    [
        "SELECT {nonsense}",
        "SELECT {db:x}",
        "SELECT {local}",
        "CREATE TABLE {db}.t (a UInt8) ENGINE = {engine:MergeTree}",  # which table?
        "CREATE TABLE {db}.{local:t} AS {db}.{local:u} ENGINE = {engine:MergeTree}",
        "CREATE TABLE {db}.{local:t} (a UInt8) ENGINE = {engine:ReplicatedMergeTree}",
        "CREATE TABLE {db}.{local:t} (a UInt8) ENGINE = {engine:Memory}",
        "{distributed:t}",
    ],
)
def test_a_marker_that_cannot_be_rendered_is_refused(text: str) -> None:
    with pytest.raises(DdlError):
        Layout("db", "c").render(text)
    with pytest.raises(DdlError):
        Layout("db").render(text)


@pytest.mark.parametrize("name", ["my-cluster", "a b", "c;DROP DATABASE x", "", "1c"])
def test_a_cluster_name_must_be_an_identifier(name: str) -> None:
    with pytest.raises(DdlError):
        Layout("db", name)
