"""A store that refuses inserts: for a while with a transient error (memory, as a busy
server says), and for good for every row of one visit (a value it cannot parse). The
pipeline waits the first out, sets the second aside in `store_rejects`, and stores
everything else as an uninterrupted run does."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from dump_store import dump
from workers import assert_same

from sinks.errors import StoreQueryError
from sinks.schema import VISITS
from sinks.store import Backend, Store
from vizita.app.replay import replay
from vizita.contract.events import UpsertEvent
from vizita.contract.settings import Settings
from vizita.contract.validation import ValidEvent, validate_payload

pytestmark = pytest.mark.timeout(600)


class _Refusing:
    """The real engine behind a store that is out of memory for `seconds` after its first
    insert, and refuses every `visits` row of one visit for good."""

    def __init__(self, real: Backend, seconds: float, visit_id: str) -> None:
        self.real, self.seconds, self.visit_id = real, seconds, visit_id
        self.until: float | None = None
        self.transient = self.refused = 0

    def execute(self, sql: str) -> None:
        if sql.startswith("INSERT"):
            self.until = self.until or time.monotonic() + self.seconds
            if time.monotonic() < self.until:
                self.transient += 1
                raise StoreQueryError("Code: 241. DB::Exception: Memory limit exceeded (test)")
            if f".{VISITS} (" in sql and f"'{self.visit_id}'" in sql:
                self.refused += 1
                raise StoreQueryError("Code: 38. DB::Exception: Cannot parse input (test)")
        self.real.execute(sql)

    def fetch(self, sql: str) -> list[dict[str, Any]]:
        return self.real.fetch(sql)

    def close(self) -> None:
        self.real.close()


def test_a_transient_and_a_permanent_refusal(
    settings: Settings, store: Store, payloads: list[bytes], reference: dict[str, Any],
    tmp_path: Path,
) -> None:  # fmt: skip
    upserts = [r.event for r in map(validate_payload, payloads) if isinstance(r, ValidEvent)]
    poisoned = next(e.visit_id for e in upserts if isinstance(e, UpsertEvent))
    path = tmp_path / "visits.jsonl"
    path.write_bytes(b"\n".join(payloads) + b"\n")
    backend = _Refusing(store.backend, seconds=4.0, visit_id=poisoned)

    replay(settings, Store(backend, store.database), path)

    assert backend.transient > 0  # the sink met the outage and waited it out
    assert backend.refused > 0
    tables = dump(store)
    assert_same(
        "visits", tables["visits"], [r for r in reference["visits"] if r["visit_id"] != poisoned]
    )
    assert_same("indicator_values", tables["indicator_values"], reference["indicator_values"])
    assert_same("dead_letters", tables["dead_letters"], reference["dead_letters"])
    rejects = tables["store_rejects"]
    assert rejects
    assert {r["target"] for r in rejects} == {VISITS}
    assert all("Cannot parse input" in r["reason"] for r in rejects)
    assert all(r["source"].startswith(settings.topic("visits-effective/")) for r in rejects)
