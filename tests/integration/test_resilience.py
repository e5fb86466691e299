"""Effectively-once under failure, with real worker processes: a worker killed with
SIGKILL in the middle and restarted, and two workers sharing the work, must leave the
tables an uninterrupted single worker leaves (tests/workers.py: `reference`).

`visits`, `indicator_values` and `dead_letters` must be identical. Alerts have
hysteresis, so their history depends on the path the values took (which a crash or a
second worker changes); what must hold at the clock day is the SPEC §4 rule."""

from __future__ import annotations

import signal
import time
from typing import Any

import pytest
from workers import (
    SMALL_BATCH_EVENTS,
    WORKER_TIMEOUT,
    assert_same,
    check_alerts,
    dump,
    finish,
    publish_all,
    scenario_settings,
    start_worker,
    wait_for_members,
    wait_for_progress,
)

from vizita.app.broker import LocalBroker
from vizita.kafka.admin import ensure_pipeline_topics

# The first test of each scenario waits for its fixtures (full runs).
pytestmark = pytest.mark.timeout(900)


@pytest.fixture(scope="module")
def crashed(
    kafka: LocalBroker, payloads: list[bytes], tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Any]:
    """The tables after a worker is killed with SIGKILL mid-stream and restarted."""
    work = tmp_path_factory.mktemp("crashed")
    settings = scenario_settings(kafka, "crash", work).model_copy(
        update={"batch_events": SMALL_BATCH_EVENTS}
    )
    # The stream three times over (the repeats are duplicates, which change no table),
    # in small batches: long enough that the kill lands mid-stream on a fast machine.
    backfill = payloads * 3
    publish_all(settings, backfill)
    first = start_worker(settings, work / "store")
    progressed = wait_for_progress(settings, len(backfill) // 6)
    first.send_signal(signal.SIGKILL)
    first.wait(30)
    assert progressed < len(backfill)  # it really died in the middle
    finish(start_worker(settings, work / "store", "--exit-when-done"))
    return dump(work / "store", "crash")


@pytest.fixture(scope="module")
def shared(
    kafka: LocalBroker, payloads: list[bytes], tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Any]:
    """The tables when two worker processes share the partitions."""
    work = tmp_path_factory.mktemp("shared")
    settings = scenario_settings(kafka, "two", work)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    ensure_pipeline_topics(settings)
    helper = start_worker(settings, work / "unused", "--no-sink")
    time.sleep(3)  # let it join the group first, so the work is shared
    publish_all(settings, payloads)
    main = start_worker(settings, work / "store", "--exit-when-done")
    try:
        assert main.wait(WORKER_TIMEOUT) == 0
    finally:
        main.kill()
        helper.send_signal(signal.SIGTERM)
        helper.wait(60)
    return dump(work / "store", "two")


@pytest.fixture(scope="module")
def joined(
    kafka: LocalBroker, payloads: list[bytes], tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Any]:
    """The tables when a second worker joins mid-stream and leaves before the end: the
    partitions it takes on are handed over twice while events wait (the stream comes in
    thirds, so that each move lands mid-stream)."""
    work = tmp_path_factory.mktemp("joined")
    settings = scenario_settings(kafka, "join", work).model_copy(
        update={"batch_events": SMALL_BATCH_EVENTS}
    )
    third = len(payloads) // 3
    publish_all(settings, payloads[:third])
    main = start_worker(settings, work / "store")
    try:
        wait_for_progress(settings, third // 2)
        helper = start_worker(settings, work / "unused", "--no-sink")
        wait_for_members(settings, 2)
        publish_all(settings, payloads[third : 2 * third])
        wait_for_progress(settings, third + third // 2)
        helper.send_signal(signal.SIGTERM)
        assert helper.wait(60) == 0
        publish_all(settings, payloads[2 * third :])
        wait_for_progress(settings, len(payloads))
    finally:
        main.send_signal(signal.SIGTERM)
        main.wait(60)
    # whatever the sink had not written yet, a worker run to the end writes
    finish(start_worker(settings, work / "store", "--exit-when-done"))
    return dump(work / "store", "join")


@pytest.mark.parametrize("table", ["visits", "dead_letters", "indicator_values"])
def test_a_worker_joining_and_leaving_keeps_every_table(
    joined: dict[str, Any], reference: dict[str, Any], table: str
) -> None:
    assert_same(table, joined[table], reference[table])


def test_a_worker_joining_and_leaving_keeps_the_alert_rule(joined: dict[str, Any]) -> None:
    check_alerts(joined)


@pytest.mark.parametrize("table", ["visits", "dead_letters"])
def test_sigkill_and_restart_keep_visits_and_dead_letters(
    crashed: dict[str, Any], reference: dict[str, Any], table: str
) -> None:
    assert_same(table, crashed[table], reference[table])


def test_sigkill_and_restart_keep_the_indicators(
    crashed: dict[str, Any], reference: dict[str, Any]
) -> None:
    assert_same("indicator_values", crashed["indicator_values"], reference["indicator_values"])
    check_alerts(crashed)


@pytest.mark.parametrize("table", ["visits", "dead_letters"])
def test_two_workers_keep_visits_and_dead_letters(
    shared: dict[str, Any], reference: dict[str, Any], table: str
) -> None:
    assert_same(table, shared[table], reference[table])


def test_two_workers_keep_the_indicators(shared: dict[str, Any], reference: dict[str, Any]) -> None:
    assert_same("indicator_values", shared["indicator_values"], reference["indicator_values"])
    check_alerts(shared)
