"""Shared test setup: no test reads or writes the developer's own .vizita directory."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def _no_ambient_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    # A VIZITA_* variable in the developer's shell must not change what a test sees.
    import os

    for name in list(os.environ):
        if name.startswith("VIZITA_"):
            monkeypatch.delenv(name)


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture(autouse=True)
def _no_leftover_workers() -> Iterator[None]:
    yield
    workers = sys.modules.get("workers")  # tests/workers.py, if a test suite uses it
    if workers is not None:
        workers.kill_leftover_workers()
