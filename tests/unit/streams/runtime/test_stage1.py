"""Stage 1 tells a bad event from a bad worker (streams.runtime.stage1.RevisionStage):
an event whose handling fails twice is dead-lettered; a table that cannot be read stops
the stage, so that no valid event is dead-lettered for the worker's fault."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from streams.errors import TableUnavailable
from streams.runtime.stage1 import Batch, RevisionStage
from vizita.contract.validation import Reason

MESSAGE = SimpleNamespace(topic="visits", partition=0, offset=7, key=b"v", value=b"{}")


def _stage_failing_with(exc: Exception) -> Any:
    stage: Any = RevisionStage.__new__(RevisionStage)

    def fold(batch: Batch, message: Any) -> None:
        raise exc

    stage._fold = fold
    return stage


def test_an_event_that_fails_twice_is_dead_lettered() -> None:
    batch = Batch()
    _stage_failing_with(KeyError("bug"))._take(batch, MESSAGE)
    assert [(m, r.reason) for m, r in batch.dead] == [(MESSAGE, Reason.INTERNAL_ERROR)]


def test_a_table_that_cannot_be_read_stops_the_stage() -> None:
    batch = Batch()
    with pytest.raises(TableUnavailable):
        _stage_failing_with(TableUnavailable("visit-state partition 0"))._take(batch, MESSAGE)
    assert batch.dead == []
