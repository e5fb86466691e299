"""Errors of the sinks, and what a store error means for the rows it refused.

ClickHouse names every error with a number (`Code: 241. DB::Exception: ...`); the sink
acts on three kinds:

- *transient*: the store cannot take anything now (unreachable, out of memory or
  disk, too many parts waiting to merge, read-only for a while). Retry, with backoff,
  for as long as it takes; the rows wait in Kafka.
- *fatal*: the store is not what the pipeline was built for (a table or column
  missing, no permission). Nothing will go in until someone acts: the worker stops.
- anything else is about the rows: split the batch until the row at fault is alone,
  and set it aside (`store_rejects`), so it never blocks the rest.
"""

from __future__ import annotations

import re
from enum import Enum
from typing import Final

from vizita.contract.errors import VizitaError


class SinkError(VizitaError):
    """Base class of this package's errors."""


class StoreUnavailable(SinkError):
    """The store cannot be reached now (server down, network). Retry later; the
    events wait in Kafka meanwhile."""


class StoreQueryError(SinkError):
    """The store refused a statement; `code` is ClickHouse's error number, if it said."""

    def __init__(self, message: str, code: int | None = None) -> None:
        super().__init__(message)
        self.code = code if code is not None else error_code(message)


class StoreUrlError(SinkError):
    """The store URL is not one of chdb:///abs/path or clickhouse://…"""


class StoreFatal(SinkError):
    """The store refuses every row for a reason only an operator can fix."""


class Kind(Enum):
    TRANSIENT = "transient"
    FATAL = "fatal"
    ROWS = "rows"


TRANSIENT_CODES: Final = frozenset({
    159,  # TIMEOUT_EXCEEDED
    164,  # READONLY (a replica or disk gone read-only for a while)
    202,  # TOO_MANY_SIMULTANEOUS_QUERIES
    209,  # SOCKET_TIMEOUT
    210,  # NETWORK_ERROR
    225,  # NO_ZOOKEEPER
    236,  # ABORTED
    241,  # MEMORY_LIMIT_EXCEEDED
    242,  # TABLE_IS_READ_ONLY
    243,  # NOT_ENOUGH_SPACE
    252,  # TOO_MANY_PARTS (merges behind; but see too_many_partitions below)
    279,  # ALL_CONNECTION_TRIES_FAILED (on a cluster: no replica of a shard answers)
    285,  # TOO_FEW_LIVE_REPLICAS (an insert quorum that cannot be met now)
    286,  # UNSATISFIED_QUORUM_FOR_PREVIOUS_WRITE
    319,  # UNKNOWN_STATUS_OF_INSERT
    425,  # SYSTEM_ERROR
    999,  # KEEPER_EXCEPTION
})  # fmt: skip
FATAL_CODES: Final = frozenset({
    16,  # NO_SUCH_COLUMN_IN_TABLE
    47,  # UNKNOWN_IDENTIFIER
    60,  # UNKNOWN_TABLE
    81,  # UNKNOWN_DATABASE
    497,  # ACCESS_DENIED
    516,  # AUTHENTICATION_FAILED
})  # fmt: skip
_CODE = re.compile(r"Code: (\d+)\.")
# The same code 252 also says an INSERT spanned more partitions than allowed: that is
# about the rows (a smaller batch goes in), not the store's state.
_TOO_MANY_PARTITIONS = "partitions for single INSERT block"


def error_code(message: str) -> int | None:
    found = _CODE.search(message)
    return int(found[1]) if found else None


def kind_of(exc: BaseException) -> Kind:
    if isinstance(exc, StoreUnavailable):
        return Kind.TRANSIENT
    if not isinstance(exc, StoreQueryError):
        return Kind.FATAL
    if exc.code in FATAL_CODES:
        return Kind.FATAL
    if exc.code in TRANSIENT_CODES and _TOO_MANY_PARTITIONS not in str(exc):
        return Kind.TRANSIENT
    return Kind.ROWS
