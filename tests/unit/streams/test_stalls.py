"""The stall watch (streams.stalls): a partition is stuck only when events wait and its
position has stayed put for the whole limit; moving, catching up or a reset starts over."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from streams.stalls import Reading, Stall, StallWatch

LIMIT = 60.0


def test_a_partition_stuck_with_events_waiting_is_a_stall_after_the_limit() -> None:
    watch = StallWatch(LIMIT)
    assert watch.observe(0.0, {"visits/0": Reading(10, 15)}) == []
    assert watch.observe(59.0, {"visits/0": Reading(10, 15)}) == []
    assert watch.observe(60.0, {"visits/0": Reading(10, 15)}) == [Stall("visits/0", 10, 15, 60.0)]


def test_a_partition_that_moves_starts_over() -> None:
    watch = StallWatch(LIMIT)
    watch.observe(0.0, {"visits/0": Reading(10, 15)})
    watch.observe(50.0, {"visits/0": Reading(11, 20)})
    assert watch.observe(100.0, {"visits/0": Reading(11, 20)}) == []
    assert watch.observe(110.0, {"visits/0": Reading(11, 20)})[0].seconds == 60.0


def test_nothing_waiting_is_never_a_stall_however_long() -> None:
    watch = StallWatch(LIMIT)
    for now in range(0, 1000, 10):
        assert watch.observe(float(now), {"visits/0": Reading(15, 15)}) == []


def test_a_reset_and_a_partition_gone_forget_the_wait() -> None:
    watch = StallWatch(LIMIT)
    watch.observe(0.0, {"visits/0": Reading(1, 2), "visits/1": Reading(1, 2)})
    watch.observe(30.0, {"visits/1": Reading(1, 2)})  # visits/0 went to another worker
    watch.reset()
    assert watch.observe(61.0, {"visits/0": Reading(1, 2), "visits/1": Reading(1, 2)}) == []


def test_a_stall_says_where_and_how_many_events_wait() -> None:
    text = Stall("vizita.visits/3", 240, 1767, 121.4).describe()
    assert text == "vizita.visits/3 at offset 240 with 1527 events waiting, no progress for 121 s"


@given(st.lists(st.tuples(st.floats(0, 30), st.integers(0, 3), st.integers(0, 3)), max_size=40))
def test_a_stall_is_reported_exactly_when_the_position_stood_still_for_the_limit(
    steps: list[tuple[float, int, int]],
) -> None:
    """Against a plain model: the time since the last reading at which the partition
    moved or had nothing waiting."""
    watch = StallWatch(LIMIT)
    now, position, since = 0.0, None, None
    for pause, advance, backlog in steps:
        now += pause
        new_position = (position or 0) + advance
        if backlog == 0 or new_position != position or since is None:
            since = now if backlog else None
        position = new_position
        stalls = watch.observe(now, {"p": Reading(new_position, new_position + backlog)})
        expected = since is not None and now - since >= LIMIT
        assert bool(stalls) == expected
