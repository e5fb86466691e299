"""`vizita replay`'s progress as a person and a log collector see it, from a real
process: on a terminal (a pseudo terminal, 100 x 40) the bar, with the summary still
machine-readable on stdout; without one, JSON progress lines ending on the summary's
numbers."""

from __future__ import annotations

import fcntl
import json
import os
import re
import select
import struct
import subprocess
import sys
import termios
import time
from datetime import date
from pathlib import Path
from typing import Any

from producers.simulator import SimulationConfig, simulate, write_jsonl
from vizita.contract.settings import Settings
from vizita.contract.validation import ValidEvent, validate_payload

SMALL = SimulationConfig(seed=12, start=date(2026, 2, 2), days=8, visits_per_day=30,
                         invalid_share=0.03, duplicate_share=0.05)  # fmt: skip
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b[()][A-Z0-9]")
LOUD = re.compile(r"\[\s*(warning|error|critical)\s*\]")  # a console log line's level


def _simulated(path: Path) -> tuple[int, int, int]:
    """Write the file; its lines, invalid lines and distinct visits of valid lines."""
    lines = simulate(SMALL)
    write_jsonl(lines, path)
    valid = [line for line in lines if isinstance(validate_payload(line), ValidEvent)]
    visits = {json.loads(line)["visit_id"] for line in valid}
    return len(lines), len(lines) - len(valid), len(visits)


def _environment(**extra: str) -> dict[str, str]:
    return {**{k: v for k, v in os.environ.items() if not k.startswith("VIZITA_")}, **extra}


def _read_terminal(master: int, process: subprocess.Popen[bytes], timeout: float) -> bytes:
    """All the process wrote to the terminal, until it exits (or `timeout`: then killed)."""
    seen = bytearray()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([master], [], [], 0.5)
        if not ready:
            if process.poll() is not None:
                return bytes(seen)
            continue
        try:
            chunk = os.read(master, 65536)
        except OSError:  # EIO: the last writer closed the terminal
            return bytes(seen)
        if not chunk:
            return bytes(seen)
        seen += chunk
    process.kill()
    raise AssertionError(f"replay did not end within {timeout:.0f} s:\n{seen[-3000:]!r}")


def _in_a_terminal(args: list[str], cwd: Path) -> tuple[int, str, str]:
    """Run vizita with stderr on a new 100 x 40 pseudo terminal and stdout on a pipe:
    its exit code, stdout, and the terminal's text without its escape sequences."""
    master, terminal = os.openpty()
    fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 100, 0, 0))
    try:
        process = subprocess.Popen(  # noqa: S603  # our own command, fixed arguments
            [sys.executable, "-m", "vizita", *args], cwd=cwd, stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=terminal, env=_environment(TERM="xterm-256color"),
        )  # fmt: skip
        os.close(terminal)  # the process holds it now; the reader sees EIO when it exits
        screen = _read_terminal(master, process, timeout=300)
        stdout = process.stdout.read() if process.stdout else b""
        code = process.wait(timeout=30)
    finally:
        os.close(master)
    text = ANSI.sub("", screen.decode("utf-8", errors="replace")).replace("\r", "")
    return code, stdout.decode(), text


def test_a_replay_on_a_terminal_draws_the_bar(tmp_path: Path) -> None:
    read, invalid, visits = _simulated(tmp_path / "f.jsonl")
    # No --bootstrap: a new local broker; the log lines are the console's (a terminal).
    code, stdout, screen = _in_a_terminal(
        ["replay", "f.jsonl", "--json", "--store", f"chdb://{tmp_path / 'store'}"], tmp_path
    )
    assert code == 0, screen[-3000:]
    summary = json.loads(stdout)  # stdout holds the summary only: the bar went to stderr
    assert summary["read"] == read
    assert summary["dead_lettered"] == invalid
    assert summary["valid"] + summary["dead_lettered"] == read
    assert summary["visits_in_store"] + summary["voided_in_store"] == visits
    assert "vizita replay f.jsonl" in screen
    last = screen[screen.rindex("vizita replay f.jsonl") :]  # the bar's last frame
    lines = [line.split() for line in last.splitlines()]
    published = next(line for line in lines if line[:1] == ["published"])
    processed = next(line for line in lines if line[:1] == ["processed"])
    stored = next(line for line in lines if line[:1] == ["stored"])
    assert published[-4:] == ["100%", f"{read:,}", "of", f"{read:,}"]
    assert processed[2:6] == ["100%", f"{read:,}", "of", f"{read:,}"]
    assert "events/s" in processed
    assert processed[-2:] == ["0:00", "left"]
    assert stored == ["stored", f"{summary['rows_stored']:,}", "rows", "done"]
    assert summary["rows_stored"] >= summary["visits_in_store"]
    assert "pipeline.started" in screen  # the log lines, printed above the bar
    assert LOUD.findall(screen) == []
    assert "Traceback" not in screen


def _progress_lines(stderr: str) -> list[dict[str, Any]]:
    lines = [json.loads(line) for line in stderr.splitlines() if line.strip()]
    assert [line for line in lines if line["level"] not in {"debug", "info"}] == []
    return [line for line in lines if line["event"] == "replay.progress"]


def test_a_replay_without_a_terminal_logs_progress_lines(
    settings: Settings, tmp_path: Path
) -> None:
    read, invalid, _ = _simulated(tmp_path / "f.jsonl")
    environment = _environment(
        VIZITA_TOPIC_PREFIX=settings.topic_prefix, VIZITA_APP_ID=settings.app_id,
        VIZITA_DATA_DIR=str(tmp_path / "data"),
    )  # fmt: skip
    done = subprocess.run(  # noqa: S603  # our own command, fixed arguments
        [sys.executable, "-m", "vizita", "replay", "f.jsonl", "--json",
         "--store", f"chdb://{tmp_path / 'store'}", "--bootstrap", settings.kafka_bootstrap or ""],
        cwd=tmp_path, env=environment, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads(done.stdout)
    assert summary["read"] == read
    assert summary["dead_lettered"] == invalid
    progress = _progress_lines(done.stderr)
    assert progress, done.stderr[-3000:]
    keys = {"published", "processed", "stored", "total", "rate_per_second", "eta_seconds"}
    assert all(keys <= set(line) for line in progress)
    *during, last = progress
    assert last["finished"] is True
    assert all("finished" not in line for line in during)
    assert last["total"] == last["published"] == summary["read"]
    assert last["processed"] == summary["valid"] + summary["dead_lettered"]
    assert last["stored"] == summary["rows_stored"] > 0
    assert last["eta_seconds"] == 0
    assert last["waiting_for"] is None
    assert '"pipeline.waiting"' not in done.stderr  # raw offsets: at debug level only
