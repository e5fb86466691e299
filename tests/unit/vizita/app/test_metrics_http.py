"""The worker's /metrics: served over HTTP while the block runs, on the port asked for,
and a port that cannot be had is one line, not a traceback."""

from __future__ import annotations

import socket
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, Counter

from vizita.app.metrics_http import MetricsPortError, serving_metrics
from vizita.contract.settings import Settings


def _settings(tmp_path: Path, port: int | None) -> Settings:
    return Settings(metrics_port=port, data_dir=tmp_path)


def test_metrics_are_served_while_the_block_runs(tmp_path: Path) -> None:
    registry = CollectorRegistry()
    Counter("vizita_probe", "A counter of this test only.", registry=registry).inc(3)
    with serving_metrics(_settings(tmp_path, 0), registry) as port:
        assert port
        url = f"http://127.0.0.1:{port}/metrics"
        with urllib.request.urlopen(url, timeout=5) as answer:
            assert answer.status == 200
            assert "vizita_probe_total 3.0" in answer.read().decode()
    with pytest.raises(urllib.error.URLError, match="refused"):  # stopped with the block
        urllib.request.urlopen(url, timeout=2)


def test_nothing_is_served_without_a_port(tmp_path: Path) -> None:
    with serving_metrics(_settings(tmp_path, None)) as port:
        assert port is None


def test_a_port_in_use_is_a_vizita_error(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with (
            pytest.raises(MetricsPortError, match=f"127.0.0.1:{port}"),
            serving_metrics(_settings(tmp_path, port)),
        ):
            pass
