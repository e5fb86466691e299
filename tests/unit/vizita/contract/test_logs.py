"""Logging as the command line configures it: exceptions as structured tracebacks in
JSON and readable ones on a console; libraries held to their levels whichever logger
carries their records; a library's error that is no failure left out."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import faust
import pytest
import structlog
from kafka.errors import Cancelled, KafkaConnectionError

from vizita.contract.logs import _QUIET, LibraryFloors, configure_logging, not_a_failure


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    levels = {name: logging.getLogger(name).level for name in _QUIET}
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    for name, saved in levels.items():
        logging.getLogger(name).setLevel(saved)
    structlog.reset_defaults()


def _json_lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def _fail() -> None:
    raise ValueError("visit v-17 has no municipality")


def _assert_structured(line: dict[str, Any]) -> None:
    assert line["level"] == "error"
    [exception] = line["exception"]
    assert exception["exc_type"] == "ValueError"
    assert exception["exc_value"] == "visit v-17 has no municipality"
    names = [frame["name"] for frame in exception["frames"]]
    assert names[-1] == "_fail"  # the frame that raised, with the ones that called it
    assert all({"filename", "lineno"} <= set(frame) for frame in exception["frames"])
    assert "locals" not in json.dumps(line)  # they may hold tokens and passwords


def test_a_structlog_exception_is_a_structured_traceback_in_json(
    capsys: pytest.CaptureFixture[str],
) -> None:
    configure_logging("info", "json")
    try:
        _fail()
    except ValueError:
        structlog.get_logger("vizita.test").exception("sink.crashed", batch=3)
    [line] = _json_lines(capsys.readouterr().err)
    assert line["event"] == "sink.crashed"
    assert line["batch"] == 3
    _assert_structured(line)


def test_a_stdlib_exception_is_a_structured_traceback_in_json(
    capsys: pytest.CaptureFixture[str],
) -> None:
    configure_logging("info", "json")
    try:
        _fail()
    except ValueError:
        logging.getLogger("x").exception("a library failed")
    [line] = _json_lines(capsys.readouterr().err)
    assert line["event"] == "a library failed"
    assert line["logger"] == "x"
    _assert_structured(line)


def test_a_console_shows_python_s_own_traceback(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("info", "console")
    try:
        _fail()
    except ValueError:
        structlog.get_logger("vizita.test").exception("sink.crashed")
        logging.getLogger("x").exception("a library failed")
    err = capsys.readouterr().err
    assert err.count("Traceback (most recent call last):") == 2
    assert err.count("ValueError: visit v-17 has no municipality") == 2
    assert "traceback object at" not in err


def _record(logger: str, level: int, pathname: str, msg: str = "m", *args: object) -> Any:
    return logging.LogRecord(logger, level, pathname, 1, msg, args, None)


def test_faust_s_records_are_held_to_its_level_under_our_logger_names() -> None:
    floors = LibraryFloors({"faust": logging.WARNING})
    faust_code = str(Path(faust.__file__).parent / "app" / "base.py")
    ours = str(Path(__file__))
    assert not floors.filter(_record("streams.runtime.app", logging.INFO, faust_code))
    assert floors.filter(_record("streams.runtime.app", logging.WARNING, faust_code))
    assert floors.filter(_record("streams.runtime.app", logging.INFO, ours))


def test_only_a_cancelled_metadata_refresh_is_left_out() -> None:
    template = "Metadata refresh: failed %s"
    assert not not_a_failure(_record("kafka.cluster", logging.ERROR, "c.py", template,
                                     Cancelled()))  # fmt: skip
    assert not_a_failure(_record("kafka.cluster", logging.ERROR, "c.py", template,
                                 KafkaConnectionError("111 ECONNREFUSED")))  # fmt: skip
    assert not_a_failure(_record("kafka.other", logging.ERROR, "c.py", template, Cancelled()))


class _Transport:
    def __init__(self, closing: bool) -> None:
        self.closing = closing

    def is_closing(self) -> bool:
        return self.closing


def test_only_a_read_on_a_closing_transport_is_left_out() -> None:
    template = "%s: Error receiving network data closing socket"
    logger = "kafka.net.transport"
    assert not not_a_failure(_record(logger, logging.ERROR, "t.py", template, _Transport(True)))
    assert not_a_failure(_record(logger, logging.ERROR, "t.py", template, _Transport(False)))
    assert not_a_failure(_record("kafka.other", logging.ERROR, "t.py", template, _Transport(True)))
