"""The command line's edge: an expected failure is one line on stderr and a non-zero
exit, never a traceback (run as a real process, as a person or a supervisor would)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from vizita.app.broker import free_port


def vizita(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603  # our own command, fixed arguments
        [sys.executable, "-m", "vizita", *args],
        capture_output=True, text=True, timeout=120, check=False,
        env={**os.environ, "VIZITA_LOG_FORMAT": "json", **(env or {})},
    )  # fmt: skip


def one_line(done: subprocess.CompletedProcess[str]) -> str:
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert "Traceback" not in done.stderr
    return lines[0]


@pytest.fixture
def payloads(tmp_path: Path) -> Path:
    path = tmp_path / "visits.jsonl"
    path.write_text("{}\n", encoding="utf-8")
    return path


def test_a_bad_store_url(payloads: Path) -> None:
    done = vizita("replay", str(payloads), "--store", "postgres://somewhere/db")
    assert done.returncode == 1
    assert one_line(done) == "vizita: error: store URL must start with chdb:/// or clickhouse://"


def test_a_relative_chdb_path(payloads: Path) -> None:
    done = vizita("replay", str(payloads), "--store", "chdb://relative/path")
    assert done.returncode == 1
    assert "must be absolute" in one_line(done)


def test_a_cluster_on_the_embedded_engine(tmp_path: Path) -> None:
    done = vizita("alerts", "--store", f"chdb://{tmp_path}/store",
                  env={"VIZITA_STORE_CLUSTER": "vizita"})  # fmt: skip
    assert done.returncode == 1
    assert one_line(done) == (
        "vizita: error: the embedded engine is one node: a cluster needs clickhouse://"
    )


def test_the_demo_refuses_a_cluster() -> None:
    done = vizita("demo", env={"VIZITA_STORE_CLUSTER": "vizita"})
    assert done.returncode == 2
    assert "unset store_cluster" in one_line(done)


def test_a_missing_file(tmp_path: Path) -> None:
    done = vizita("replay", str(tmp_path / "nowhere.jsonl"))
    assert done.returncode == 2
    line = one_line(done)
    assert line.startswith("vizita replay: error: ")
    assert "nowhere.jsonl" in line
    assert "does not exist" in line


def test_an_unreachable_broker(payloads: Path) -> None:
    port = free_port()  # nothing listens there
    done = vizita("produce", str(payloads), "--bootstrap", f"127.0.0.1:{port}")
    assert done.returncode == 1
    assert one_line(done) == f"vizita: error: no Kafka broker answered at 127.0.0.1:{port}"


def test_a_bad_targets_file(tmp_path: Path) -> None:
    targets = tmp_path / "targets.yaml"
    targets.write_text("min_denominator: 20\nhysteresis: a lot\n", encoding="utf-8")
    done = vizita("dashboards", "build", "--out", str(tmp_path / "out"),
                  env={"VIZITA_TARGETS_FILE": str(targets)})  # fmt: skip
    assert done.returncode == 1
    line = one_line(done)
    assert line.startswith(f"vizita: error: {targets}: hysteresis: ")
    assert not (tmp_path / "out").exists()


def test_a_targets_file_that_is_not_there(tmp_path: Path) -> None:
    missing = tmp_path / "targets.yaml"
    done = vizita("dashboards", "build", "--out", str(tmp_path / "out"),
                  env={"VIZITA_TARGETS_FILE": str(missing)})  # fmt: skip
    assert done.returncode == 1
    assert one_line(done) == (
        f"vizita: error: {missing}: cannot read the targets file: No such file or directory"
    )


def test_a_bad_setting_in_the_environment() -> None:
    done = vizita("alerts", env={"VIZITA_PARTITIONS": "many"})
    assert done.returncode == 1
    assert one_line(done).startswith("vizita: error: settings: partitions: ")


def test_debug_adds_the_traceback(payloads: Path) -> None:
    done = vizita("--log-level", "debug", "replay", str(payloads), "--store", "nope://x")
    assert done.returncode == 1
    assert "vizita: error: store URL must start with" in done.stderr
    assert "Traceback" in done.stderr
    assert "StoreUrlError" in done.stderr


def test_version() -> None:
    done = vizita("--version")
    assert done.returncode == 0
    assert done.stdout.startswith("vizita, version ")


def test_an_unknown_municipality_names_the_close_matches(tmp_path: Path) -> None:
    done = vizita("indicators", "--municipality", "prizen", "--store", f"chdb://{tmp_path}/s")
    assert done.returncode == 2
    line = one_line(done)
    assert line.startswith("vizita indicators: error: ")
    assert "unknown municipality code 'prizen'; did you mean prizren?" in line


def test_a_month_that_is_no_month(tmp_path: Path) -> None:
    done = vizita("report", "--month", "2025-13", "--store", f"chdb://{tmp_path}/s")
    assert done.returncode == 2
    assert "'2025-13' is not a month: use YYYY-MM" in one_line(done)
    both = vizita("report", "--month", "2025-10", "--quarter", "2025Q4")
    assert both.returncode == 2
    assert "give --month or --quarter, not both" in one_line(both)


def test_send_without_a_mail_server_fails_before_any_work(tmp_path: Path) -> None:
    out = tmp_path / "report.html"
    done = vizita("report", "--send", "--out", str(out), "--store", f"chdb://{tmp_path}/s")
    assert done.returncode == 1
    assert one_line(done) == (
        "vizita: error: --send needs smtp_host (VIZITA_SMTP_HOST), smtp_sender "
        "(VIZITA_SMTP_SENDER), smtp_recipients (VIZITA_SMTP_RECIPIENTS)"
    )
    assert not out.exists()
