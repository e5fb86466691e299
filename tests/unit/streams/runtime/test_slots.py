"""Each worker on one machine takes a data directory no other running worker holds
(streams.runtime.slots)."""

from __future__ import annotations

from pathlib import Path

from streams.runtime.slots import claim_slot


def test_the_first_worker_takes_the_first_slot(tmp_path: Path) -> None:
    slot = claim_slot(tmp_path / "app")
    assert slot.path == tmp_path / "app" / "slot-0"
    assert slot.path.is_dir()
    slot.release()


def test_a_second_worker_takes_the_next_slot(tmp_path: Path) -> None:
    first, second = claim_slot(tmp_path), claim_slot(tmp_path)
    assert (first.path.name, second.path.name) == ("slot-0", "slot-1")
    first.release()
    second.release()


def test_a_released_slot_is_taken_again_with_what_it_holds(tmp_path: Path) -> None:
    first = claim_slot(tmp_path)
    (first.path / "kept").write_text("state")
    first.release()
    again = claim_slot(tmp_path)
    assert (again.path / "kept").read_text() == "state"
    again.release()
