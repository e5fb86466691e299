"""A data directory of its own for each worker on one machine.

Workers of one app on one machine share `data_dir`; RocksDB lets one process open a
database, so each worker takes the first slot no other running worker holds. A slot's
databases survive the worker: the next one to take the slot reads only the changelogs'
tails. The lock is the kernel's (`flock`), so a killed worker's slot is free at once.
"""

from __future__ import annotations

import fcntl
import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Slot:
    path: Path  # the worker's own data directory
    _fd: int

    def release(self) -> None:
        os.close(self._fd)  # closing drops the lock


def claim_slot(directory: Path) -> Slot:
    """Lock and return the first free slot under `directory` (created as needed)."""
    directory.mkdir(parents=True, exist_ok=True)
    number = 0
    while True:
        fd = os.open(directory / f"slot-{number}.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            number += 1
            continue
        path = directory / f"slot-{number}"
        path.mkdir(exist_ok=True)
        return Slot(path, fd)
