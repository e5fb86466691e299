"""The store: one interface, two ClickHouse backends running the same SQL.

- `chdb:///abs/path` — the ClickHouse engine embedded in this process (chdb-core).
- `clickhouse://user:password@host:9000/db` — a ClickHouse server over the native
  protocol (clickhouse-driver).

Rows come back as dicts of plain Python values (int, float, str, bool, date, aware
datetime, list, None) from both backends alike.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

import structlog

from sinks.errors import StoreQueryError, StoreUnavailable, StoreUrlError
from sinks.sql import insert_statement, values_clause

log = structlog.get_logger(__name__)

Row = dict[str, Any]


class Backend(Protocol):
    def execute(self, sql: str) -> None: ...
    def fetch(self, sql: str) -> list[Row]: ...
    def close(self) -> None: ...


class Store:
    """What the pipeline, the CLI and the tests talk to. `cluster`: the ClickHouse
    cluster the database spans (sinks/ddl.py), None for one node."""

    def __init__(self, backend: Backend, database: str, cluster: str | None = None) -> None:
        self.backend = backend
        self.database = database
        self.cluster = cluster

    def table(self, name: str) -> str:
        return f"{self.database}.{name}"

    def execute(self, sql: str) -> None:
        self.backend.execute(sql)

    def query(self, sql: str) -> list[Row]:
        return self.backend.fetch(sql)

    def insert(self, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
        """Insert a batch; the same batch inserted again is dropped by the engine
        (the token is the batch's content hash), and versioned rows make any other
        repeat harmless."""
        if not rows:
            return
        values = values_clause(rows)
        token = hashlib.sha256(f"{table}|{','.join(columns)}|{values}".encode()).hexdigest()
        statement = insert_statement(
            self.table(table), columns, values, token, to_shards=self.cluster is not None
        )
        self.backend.execute(statement)

    def close(self) -> None:
        self.backend.close()


# --- chdb ----------------------------------------------------------------------------------

# chdb allows one open session per process: every Store on that path shares it (each
# with its own database, as the tests do), and the last one closed closes it.
_CHDB_SESSIONS: dict[str, list[Any]] = {}  # path -> [session, number of users]
_CHDB_LOCK = threading.RLock()


class ChdbBackend:
    def __init__(self, path: Path) -> None:
        from chdb import session  # imported here: a server deployment need not load it

        self._path = str(path)
        with _CHDB_LOCK:
            if self._path not in _CHDB_SESSIONS:
                if _CHDB_SESSIONS:
                    raise StoreUrlError(
                        f"chdb has a store open at {next(iter(_CHDB_SESSIONS))}; "
                        "one embedded store per process"
                    )
                path.mkdir(parents=True, exist_ok=True)
                _CHDB_SESSIONS[self._path] = [session.Session(self._path), 0]  # type: ignore[no-untyped-call]  # chdb is untyped
            entry = _CHDB_SESSIONS[self._path]
            entry[1] += 1
            self._session = entry[0]
        self._closed = False

    def execute(self, sql: str) -> None:
        self._run(sql, "Null")

    def fetch(self, sql: str) -> list[Row]:
        out = self._run(sql, "JSON")
        if not out:
            return []
        answer = json.loads(out)
        return [_convert_row(row, answer["meta"]) for row in answer["data"]]

    def _run(self, sql: str, fmt: str) -> bytes:
        with _CHDB_LOCK:  # the embedded engine is not re-entrant across threads
            try:
                result = self._session.query(sql, fmt)
            except RuntimeError as exc:  # chdb's ChdbError
                raise StoreQueryError(str(exc)[:2000]) from exc
        return bytes(result.bytes())

    def close(self) -> None:
        with _CHDB_LOCK:
            if self._closed:
                return
            self._closed = True
            entry = _CHDB_SESSIONS[self._path]
            entry[1] -= 1
            if entry[1] == 0:
                del _CHDB_SESSIONS[self._path]
                entry[0].close()


def _type_parser(kind: str) -> Callable[[Any], Any]:  # noqa: PLR0911  # a flat table of types
    inner = kind
    for wrapper in ("Nullable(", "LowCardinality("):
        while inner.startswith(wrapper):
            inner = inner[len(wrapper) : -1]
    if inner.startswith("Array("):
        item = _type_parser(inner[6:-1])
        return lambda v: [item(x) for x in v]
    if inner.startswith("DateTime"):
        return lambda v: datetime.fromisoformat(v).replace(tzinfo=UTC)
    if inner.startswith("Date"):
        return date.fromisoformat
    if inner.startswith(("UInt", "Int")):
        return int
    if inner.startswith(("Float", "Decimal")):
        return float
    if inner == "Bool":
        return bool
    return lambda v: v


def _convert_row(row: Row, meta: list[dict[str, str]]) -> Row:
    out: Row = {}
    for column in meta:
        value = row[column["name"]]
        out[column["name"]] = None if value is None else _type_parser(column["type"])(value)
    return out


# --- ClickHouse server -------------------------------------------------------------------


class ServerBackend:
    def __init__(self, url: str) -> None:
        from clickhouse_driver import Client  # imported here: local runs need not load it

        self._client = Client.from_url(url)
        self._lock = threading.Lock()  # one connection, used by one statement at a time

    def execute(self, sql: str) -> None:
        self._call(lambda: self._client.execute(sql))

    def fetch(self, sql: str) -> list[Row]:
        rows, types = self._call(lambda: self._client.execute(sql, with_column_types=True))
        names = [name for name, _ in types]
        return [{n: _aware(v) for n, v in zip(names, row, strict=True)} for row in rows]

    def _call(self, action: Callable[[], Any]) -> Any:
        from clickhouse_driver import errors

        with self._lock:
            try:
                return action()
            except (errors.NetworkError, errors.SocketTimeoutError, EOFError, OSError) as exc:
                self._client.disconnect()
                raise StoreUnavailable(str(exc)) from exc
            except errors.ServerException as exc:
                raise StoreQueryError(str(exc)[:2000], getattr(exc, "code", None)) from exc

    def close(self) -> None:
        self._client.disconnect()


def _aware(value: Any) -> Any:
    if isinstance(value, datetime) and value.tzinfo is None:
        return value.replace(tzinfo=UTC)  # every DateTime column of ours is in UTC
    return value


# --- opening -------------------------------------------------------------------------------


def open_store(url: str, database: str, cluster: str | None = None) -> Store:
    """Open the store a URL names (SPEC §5); `cluster`: the ClickHouse cluster its
    database spans (a server's, never the embedded engine's)."""
    parts = urlsplit(url)
    if parts.scheme == "chdb":
        if cluster is not None:
            raise StoreUrlError("the embedded engine is one node: a cluster needs clickhouse://")
        path = Path(parts.netloc + parts.path) if parts.netloc else Path(parts.path)
        if not path.is_absolute():
            raise StoreUrlError(f"chdb store path must be absolute: {url!r}")
        return Store(ChdbBackend(path), database)
    if parts.scheme == "clickhouse":
        return Store(ServerBackend(url), database, cluster)
    raise StoreUrlError("store URL must start with chdb:/// or clickhouse://")
