"""Rendering Python values as ClickHouse SQL literals.

Both stores run the very same SQL text, so values are rendered here once rather than
bound by each driver in its own way. Strings and bytes are escaped completely (quotes,
backslashes and every control or non-ASCII byte of a `bytes` value), so no input can
end a literal early.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime
from typing import Any

_SPACE, _DEL = 0x20, 0x7F
_SAFE_ASCII = frozenset(range(_SPACE, _DEL)) - {ord("'"), ord("\\")}


def _escape_bytes(raw: bytes) -> str:
    return "".join(chr(b) if b in _SAFE_ASCII else f"\\x{b:02x}" for b in raw)


def _escape_text(text: str) -> str:
    # Non-ASCII characters stay as they are: the SQL text is sent as UTF-8.
    return "".join(_escape_char(c) for c in text)


def _escape_char(char: str) -> str:
    code = ord(char)
    if code < _SPACE or code == _DEL or char in _QUOTING:
        return f"\\x{code:02x}"
    return char


_QUOTING = frozenset("'\\")


def _datetime(value: datetime) -> str:
    if value.tzinfo is None:
        raise ValueError("naive datetime: every instant carries its offset")
    return value.astimezone(UTC).strftime("'%Y-%m-%d %H:%M:%S.%f'")[:-4] + "'"


def _float(value: float) -> str:
    if math.isnan(value):
        return "nan"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return repr(value)


def literal(value: Any) -> str:  # noqa: PLR0911  # one branch a type reads best
    """One value as a ClickHouse literal."""
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return _float(value)
    if isinstance(value, str):
        return f"'{_escape_text(value)}'"
    if isinstance(value, bytes | bytearray | memoryview):
        return f"'{_escape_bytes(bytes(value))}'"
    if isinstance(value, datetime):
        return _datetime(value)
    if isinstance(value, date):
        return f"'{value.isoformat()}'"
    if isinstance(value, list | tuple | frozenset | set):
        return "[" + ", ".join(literal(item) for item in value) + "]"
    raise TypeError(f"no SQL literal for {type(value).__name__}")


def values_clause(rows: Iterable[Sequence[Any]]) -> str:
    return ",\n".join("(" + ", ".join(literal(v) for v in row) + ")" for row in rows)


def insert_statement(
    table: str, columns: Sequence[str], values: str, dedup_token: str, *, to_shards: bool = False
) -> str:
    """An INSERT of a rendered VALUES clause, with the token that lets the engine drop
    the same block inserted again (ClickHouse `insert_deduplication_token`).

    `to_shards`: the table is Distributed, and the INSERT answers only once every shard
    holds its rows (by default a Distributed table queues them on the node and sends
    them later, so an offset committed after the INSERT would not mean "stored")."""
    settings = f"SETTINGS insert_deduplication_token = {literal(dedup_token)}"
    if to_shards:
        settings += ", distributed_foreground_insert = 1"
    return f"INSERT INTO {table} ({', '.join(columns)}) {settings} VALUES\n{values}"
