"""The store's DDL for one ClickHouse node or for a cluster, from one text.

A migration (`sinks/migrations/NNNN_name.sql`) is written once, with a marker wherever
the two layouts differ. On one node every marker renders to what a single server (or
the embedded engine) runs; on a cluster named `c`:

- `{db}`: the database, on both;
- `{on_cluster}`: nothing; ` ON CLUSTER c`;
- `{local:T}`: `T`; `T_local`, the table that holds T's rows on each shard;
- `{engine:E}`: `E`; `ReplicatedE('/clickhouse/tables/{shard}/{database}/T_local',
  '{replica}', E's arguments)`, T being the table its statement names with `{local:T}`;
- `{dedup_window}`: `non_replicated_deduplication_window`;
  `replicated_deduplication_window`;
- `{distributed:T:KEY}`: no statement; `CREATE OR REPLACE TABLE db.T ON CLUSTER c AS
  db.T_local ENGINE = Distributed(c, db, T_local, KEY)`.

A statement that makes its table anew (`CREATE OR REPLACE`) builds the new table beside
the old one before it swaps them, and two tables cannot share a replication path: its
path ends in `_{uuid}`, the new table's UUID, which an `ON CLUSTER` query draws once for
every host. (A sibling of the old path, never under it: the old table's last replica
removes everything under its path when it is dropped.) `{shard}`, `{replica}`,
`{database}` and `{uuid}` are ClickHouse's macros.

Readers keep the SPEC's names: on a cluster they are the Distributed tables, and a
sharding key that is a function of the replacing key puts every row of one key on one
shard, so `FINAL`, which each shard applies to its own rows, stays exact.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

from sinks.schema import local_name
from sinks.sql import literal

#: where a replicated table's shard keeps its replicas in Keeper (ClickHouse's macros)
REPLICA_PATH: Final = "/clickhouse/tables/{shard}/{database}/"
REPLICA_NAME: Final = "{replica}"
_MARKER = re.compile(r"\{(?P<name>[a-z_]+)(?::(?P<argument>[^{}]*))?\}")
_ENGINE = re.compile(r"(?P<family>[A-Za-z]*MergeTree)(?:\((?P<arguments>[^()]*)\))?")
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class DdlError(ValueError):
    """A migration's text or a cluster name that cannot be rendered."""


@dataclass(frozen=True)
class Layout:
    """Where the store's tables live: one node (`cluster` None), or the shards and
    replicas of the ClickHouse cluster of that name."""

    database: str
    cluster: str | None = None

    def __post_init__(self) -> None:
        if self.cluster is not None and not _IDENTIFIER.fullmatch(self.cluster):
            raise DdlError(f"a cluster name must be an identifier: {self.cluster!r}")

    def on_cluster(self) -> str:
        return f" ON CLUSTER {self.cluster}" if self.cluster else ""

    def local(self, table: str) -> str:
        """The table that holds `table`'s rows (on a cluster, on each shard)."""
        return local_name(table) if self.cluster else table

    def engine(self, engine: str, table: str, *, replacing: bool = False) -> str:
        """`engine` (a MergeTree family, with its arguments) for `table`'s rows."""
        found = _ENGINE.fullmatch(engine)
        if found is None or found["family"].startswith("Replicated"):
            raise DdlError(f"not a plain MergeTree engine: {engine!r}")
        if not self.cluster:
            return engine
        path = REPLICA_PATH + local_name(table) + ("_{uuid}" if replacing else "")
        arguments = [literal(path), literal(REPLICA_NAME)]
        if found["arguments"]:
            arguments.append(found["arguments"])
        return f"Replicated{found['family']}({', '.join(arguments)})"

    def dedup_window(self) -> str:
        """The table setting that keeps the hashes of the last inserts, so an insert
        sent again with the same `insert_deduplication_token` is dropped."""
        if self.cluster:
            return "replicated_deduplication_window"
        return "non_replicated_deduplication_window"

    def distributed(self, table: str, sharding_key: str, *, replace: bool = True) -> str:
        """The statement that makes `table` the Distributed table over its shards'
        tables (nothing on one node). Replacing it is free (it holds no rows: the
        store inserts in the foreground) and it then has the local table's columns."""
        if not self.cluster:
            return ""
        head = "CREATE OR REPLACE TABLE" if replace else "CREATE TABLE IF NOT EXISTS"
        db, local = self.database, local_name(table)
        return (
            f"{head} {db}.{table}{self.on_cluster()} AS {db}.{local} "
            f"ENGINE = Distributed({self.cluster}, {db}, {local}, {sharding_key})"
        )

    def render(self, text: str) -> tuple[str, ...]:
        """The statements of a migration's text, comments left out."""
        without_comments = "\n".join(line.split("--", 1)[0] for line in text.splitlines())
        rendered = (self._statement(part) for part in without_comments.split(";"))
        return tuple(statement for statement in rendered if statement)

    def _statement(self, text: str) -> str:
        tables = {m["argument"] for m in _MARKER.finditer(text) if m["name"] == "local"}
        replacing = text.lstrip().upper().startswith("CREATE OR REPLACE")
        return _MARKER.sub(lambda m: self._marker(m, tables, replacing=replacing), text).strip()

    def _marker(self, marker: re.Match[str], tables: set[str], *, replacing: bool) -> str:
        name, argument = marker["name"], marker["argument"]
        simple = {"db": self.database, "on_cluster": self.on_cluster()}
        if name in simple and argument is None:
            return simple[name]
        if name == "dedup_window" and argument is None:
            return self.dedup_window()
        if name == "local" and argument:
            return self.local(argument)
        if name == "engine" and argument:
            return self.engine(argument, _only_table(tables, marker[0]), replacing=replacing)
        if name == "distributed" and argument and ":" in argument:
            table, key = argument.split(":", 1)
            return self.distributed(table, key)
        raise DdlError(f"unknown marker {marker[0]}")


def _only_table(tables: set[str], marker: str) -> str:
    if len(tables) != 1:
        raise DdlError(f"{marker} needs its statement to name one table with {{local:T}}")
    return next(iter(tables))
