"""Logging, configured once at the entry point: JSON lines when stderr is not a
terminal, readable lines when it is. Libraries' stdlib loggers go the same way.

An exception is a structured traceback in JSON (type, message, frames: what a crash in
production is diagnosed from) and Python's own traceback on a console. Local variables
are left out of both: they can hold tokens, passwords and visits' data."""

from __future__ import annotations

import importlib.util
import logging
import os
import sys
from collections.abc import Mapping

import structlog

# Their INFO is a flood. kafka-python's warnings are too: the broker probe and the
# offset look-ups log every expected retry, so it shows errors only.
_QUIET = {
    "faust": logging.WARNING,
    "mode": logging.WARNING,
    "aiokafka": logging.WARNING,
    "kafka": logging.ERROR,
}


class LibraryFloors(logging.Filter):
    """Holds the records a library's own code makes to that library's level in _QUIET,
    whichever logger carries them. Setting the `faust` logger's level is not enough:
    mode gives every Service subclass the logger of the module that defines it
    (`mode.services.ServiceBase._init_subclass_logger`), so Faust's lifecycle lines
    for the app, consumer and tables subclassed in `streams/runtime` ("[^VizitaApp]:
    Starting...") come under our own module names, at INFO."""

    def __init__(self, floors: Mapping[str, int]) -> None:
        super().__init__()
        self._floors = [
            (directory, level)
            for package, level in floors.items()
            if (directory := _package_directory(package)) is not None
        ]

    def filter(self, record: logging.LogRecord) -> bool:
        for directory, level in self._floors:
            if record.pathname.startswith(directory):
                return record.levelno >= level
        return True


def _package_directory(package: str) -> str | None:
    """Where an installed package's code is (found without importing it)."""
    module = sys.modules.get(package)
    if module is not None:  # faust, once imported, is a module object with no __spec__
        locations = list(getattr(module, "__path__", []))
    else:
        spec = importlib.util.find_spec(package)
        locations = list(spec.submodule_search_locations or []) if spec else []
    return os.path.join(locations[0], "") if locations else None


def not_a_failure(record: logging.LogRecord) -> bool:
    """False for an error record a library logs when nothing failed.

    kafka-python logs "Metadata refresh: failed Cancelled" when a client is closed
    while a background metadata refresh is in flight: closing a connection fails its
    requests with `Cancelled` (kafka/net/connection.py), and kafka/cluster.py logs every
    failed refresh as an error. The offset helpers of `vizita.kafka.admin` open and
    close short-lived clients all the time, so a normal run would show it now and then.
    The same close can catch kafka-python's network thread reading the socket, which it
    logs as "Error receiving network data" although its transport is closing: left out
    only while the transport says so. A refresh that really fails (a broker refusing
    connections, a timeout) carries another error and still shows; a broker that
    closes the connection and goes away also cancels the request in flight, and then
    shows in the reconnection errors."""
    return not (_cancelled_refresh(record) or _read_after_close(record))


def _only_arg(record: logging.LogRecord) -> object:
    args = record.args
    return args[0] if isinstance(args, tuple) and len(args) == 1 else None


def _cancelled_refresh(record: logging.LogRecord) -> bool:
    error = _only_arg(record)
    return (
        record.name == "kafka.cluster"
        and record.msg == "Metadata refresh: failed %s"
        and type(error).__name__ == "Cancelled"
        and type(error).__module__ == "kafka.errors"
    )


def _read_after_close(record: logging.LogRecord) -> bool:
    """kafka-python's network thread reading a socket the client has just closed (the
    same short-lived clients): the transport says it is closing, so nothing failed."""
    transport = _only_arg(record)
    is_closing = getattr(transport, "is_closing", None)
    return (
        record.name == "kafka.net.transport"
        and record.msg == "%s: Error receiving network data closing socket"
        and callable(is_closing)
        and is_closing() is True
    )


def _renderer(as_json: bool) -> list[structlog.types.Processor]:
    if as_json:
        tracebacks = structlog.tracebacks.ExceptionDictTransformer(show_locals=False)
        return [
            structlog.processors.ExceptionRenderer(tracebacks),
            structlog.processors.JSONRenderer(),
        ]
    return [structlog.dev.ConsoleRenderer(exception_formatter=structlog.dev.plain_traceback)]


def configure_logging(level: str = "info", fmt: str = "auto") -> None:
    as_json = fmt == "json" or (fmt == "auto" and not sys.stderr.isatty())
    shared: list[structlog.types.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_logger_name,
        structlog.stdlib.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(structlog.stdlib.ProcessorFormatter(
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                    *_renderer(as_json)],
        foreign_pre_chain=shared,
    ))  # fmt: skip
    handler.addFilter(LibraryFloors(_QUIET))
    handler.addFilter(not_a_failure)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name, floor in _QUIET.items():
        logging.getLogger(name).setLevel(max(floor, root.level))
