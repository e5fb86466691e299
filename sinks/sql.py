"""Rendering Python values as ClickHouse SQL literals.

Both stores run the very same SQL text, so values are rendered here once rather than
bound by each driver in its own way. Strings and bytes are escaped completely (quotes,
backslashes and every control or non-ASCII byte of a `bytes` value), so no input can
end a literal early.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, date, datetime
from typing import Any

# What must be escaped in a literal: quotes, backslashes, control characters; in bytes
# also everything past ASCII. Found with a regular expression: most values have none of
# them, and a scan in C leaves them as they are at no cost per character.
_UNSAFE_TEXT = re.compile(r"[\x00-\x1f\x7f'\\]")
_UNSAFE_BYTES = re.compile(rb"[^\x20-\x26\x28-\x5b\x5d-\x7e]")


def _hex_escape(match: re.Match[str]) -> str:
    return f"\\x{ord(match.group()):02x}"


def _hex_escape_byte(match: re.Match[bytes]) -> bytes:
    return b"\\x%02x" % match.group()[0]


def _escape_text(text: str) -> str:
    # Non-ASCII characters stay as they are: the SQL text is sent as UTF-8.
    return _UNSAFE_TEXT.sub(_hex_escape, text)


def _escape_bytes(raw: bytes) -> str:
    return _UNSAFE_BYTES.sub(_hex_escape_byte, raw).decode("ascii")


def _datetime(value: datetime) -> str:
    if value.tzinfo is None:
        raise ValueError("naive datetime: every instant carries its offset")
    utc = value.astimezone(UTC).isoformat(sep=" ", timespec="milliseconds")
    return f"'{utc[:-6]}'"  # without its "+00:00": DateTime64 columns are UTC


def _float(value: float) -> str:
    if math.isnan(value):
        return "nan"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return repr(value)


def _sequence(value: Iterable[Any]) -> str:
    return "[" + ", ".join(literal(item) for item in value) + "]"


def _bytes(value: bytes | bytearray | memoryview) -> str:
    return f"'{_escape_bytes(bytes(value))}'"


# By exact type (a row's values are these, and a dict lookup is cheaper than a chain
# of isinstance checks); a subclass (a StrEnum, an IntEnum) renders as its nearest base.
_BY_TYPE: dict[type, Callable[[Any], str]] = {
    type(None): lambda _: "NULL",
    bool: lambda value: "true" if value else "false",
    int: int.__repr__,  # the number, for an IntEnum too
    float: lambda value: _float(float(value)),
    str: lambda value: f"'{_escape_text(value)}'",
    bytes: _bytes,
    bytearray: _bytes,
    memoryview: _bytes,
    datetime: _datetime,
    date: lambda value: f"'{value.isoformat()}'",
    list: _sequence,
    tuple: _sequence,
    frozenset: _sequence,
    set: _sequence,
}


def literal(value: Any) -> str:
    """One value as a ClickHouse literal."""
    render = _BY_TYPE.get(type(value)) or _nearest_base(type(value))
    return render(value)


def _nearest_base(kind: type) -> Callable[[Any], str]:
    for base in kind.__mro__[1:]:
        if base in _BY_TYPE:
            return _BY_TYPE[base]
    raise TypeError(f"no SQL literal for {kind.__name__}")


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
