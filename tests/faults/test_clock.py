"""The host's clock steps back between two computations: a row computed later still
replaces the one computed before it, because versions come from the input (the offset
of the tick that computed a row), never from a clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import oracle
import pytest
from workers import assert_same_rows

import streams.runtime.stage2
from sinks.queries import indicator_series
from sinks.store import Store
from vizita.app.replay import replay
from vizita.contract.municipalities import SCOPES
from vizita.contract.settings import Settings

pytestmark = pytest.mark.timeout(600)


class _SteppingBack(datetime):
    """A clock that goes an hour back at every reading."""

    readings = 0

    @classmethod
    def now(cls, tz: object = None) -> datetime:  # type: ignore[override]  # a test's clock
        cls.readings += 1
        return datetime(2026, 6, 1, tzinfo=UTC) - timedelta(hours=cls.readings)


def test_a_clock_step_back_between_computations_leaves_the_newer_rows(
    settings: Settings, store: Store, payloads: list[bytes], tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    monkeypatch.setattr(streams.runtime.stage2, "datetime", _SteppingBack)
    half = len(payloads) // 2
    for part, lines in enumerate((payloads[:half], payloads[half:])):
        path = tmp_path / f"part-{part}.jsonl"
        path.write_bytes(b"\n".join(lines) + b"\n")
        replay(settings, store, path)
    assert _SteppingBack.readings > 1
    stored = {
        (scope, r["indicator"], r["window_days"], r["as_of"]): (
            r["numerator"], r["denominator"], r["value"],
        )
        for scope in SCOPES
        for r in indicator_series(store, scope)
    }  # fmt: skip
    assert_same_rows("indicator_values", stored, oracle.compute(payloads))
