"""What a normal run logs, with the real Faust app and the real broker: no line at
warning or error, and none of Faust's own INFO lines."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import structlog
from kafka import KafkaConsumer

from vizita.app.broker import LocalBroker
from vizita.app.runner import Pipeline
from vizita.contract.logs import _QUIET, configure_logging
from vizita.contract.settings import Settings
from vizita.kafka.admin import ensure_pipeline_topics


@pytest.fixture
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


def _faust_lines(lines: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Lines Faust and mode wrote: their loggers, or a service's "[^Name]: …" format
    (mode logs a Service subclass under the name of the module defining it)."""
    return [
        line for line in lines
        if str(line.get("logger", "")).split(".")[0] in {"faust", "mode"}
        or str(line["event"]).startswith("[^")
    ]  # fmt: skip


async def _start_and_stop(pipeline: Pipeline) -> None:
    await pipeline.start()
    try:
        async with asyncio.timeout(90):
            await pipeline.wait_until_ready(settle=0.5)
    finally:
        await pipeline.stop()


@pytest.mark.usefixtures("_restore_logging")
def test_a_faust_app_keeps_to_the_levels_set_for_it(
    settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    configure_logging("info", "json")
    handler = logging.getLogger().handlers[0]
    ensure_pipeline_topics(settings)
    pipeline = Pipeline(settings, store=None)  # the Faust app alone, no sink
    structlog.get_logger("vizita.test").info("test.starting")
    asyncio.run(_start_and_stop(pipeline))
    lines = _json_lines(capsys.readouterr().err)
    assert _faust_lines(lines) == []
    assert [line["event"] for line in lines if line["logger"] == "vizita.test"] == ["test.starting"]
    # Faust did not configure logging itself: the one handler and the levels are ours.
    assert logging.getLogger().handlers == [handler]
    assert {name: logging.getLogger(name).level for name in _QUIET} == _QUIET


class _Seen(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def _close_during_a_refresh(bootstrap: str) -> None:
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    consumer.topics()
    # kafka-python's own refresh, started just before close() (private API, pinned
    # version): what happens when a helper closes a client whose refresh is in flight.
    manager = consumer._client._manager
    manager.call_soon(manager.cluster.refresh_metadata)
    consumer.close()


@pytest.mark.usefixtures("_restore_logging")
def test_closing_a_client_during_a_metadata_refresh_logs_no_error(
    kafka: LocalBroker, capsys: pytest.CaptureFixture[str]
) -> None:
    configure_logging("info", "json")
    seen = _Seen()
    logging.getLogger("kafka.cluster").addHandler(seen)
    try:
        for _ in range(20):  # the refresh is not always still in flight at close
            _close_during_a_refresh(kafka.bootstrap)
            if seen.records:
                break
    finally:
        logging.getLogger("kafka.cluster").removeHandler(seen)
    assert [r.getMessage() for r in seen.records] == ["Metadata refresh: failed Cancelled"]
    assert _json_lines(capsys.readouterr().err) == []


def _vizita(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("VIZITA_")}
    return subprocess.run(  # noqa: S603  # our own command, fixed arguments
        [sys.executable, "-m", "vizita", *args], cwd=cwd, env=environment,
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip


def test_a_short_replay_logs_no_warning_and_no_error(tmp_path: Path) -> None:
    simulated = _vizita("simulate", "--out", "f.jsonl", "--days", "3", "--per-day", "20",
                        cwd=tmp_path)  # fmt: skip
    assert simulated.returncode == 0, simulated.stderr
    # No --bootstrap: a new local broker, whose offsets topic does not exist yet.
    done = _vizita("--log-format", "json", "replay", "f.jsonl", "--store",
                   f"chdb://{tmp_path / 'store'}", cwd=tmp_path)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("read ")
    lines = _json_lines(done.stderr)  # every line is JSON, none a bare traceback
    events = [line["event"] for line in lines]
    assert {"kafka.started", "pipeline.started", "pipeline.stopped"} <= set(events)
    loud = [line for line in lines if line["level"] not in {"debug", "info"}]
    assert loud == []
    assert _faust_lines(lines) == []
