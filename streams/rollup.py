"""Stage 2's derived state, pure: from the effective visits to indicator rows.

The source of truth is one entry per scope and visit (key, municipality, day,
contribution), kept last-writer-wins by key in a changelog-backed table. Everything here
is derived from those entries, for the scopes a worker owns: day buckets per scope (a
municipality, or `ALL`), the days to recompute, and the rows last emitted. A scope a
worker takes on is built from its entries, and its rows are computed once.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date

from streams.indicators import DayBucket, Value, scope_values
from vizita.contract.indicators import WINDOWS
from vizita.contract.messages import VisitEntry
from vizita.contract.municipalities import ALL_KOSOVO


def supersedes(incoming: VisitEntry, stored: VisitEntry | None) -> bool:
    """The greater key wins; an equal key is the same row sent again."""
    return stored is None or incoming.key > stored.key


def counts_in(scope: str, entry: VisitEntry | None) -> bool:
    """Whether an entry adds to a scope: an effective visit of that municipality, or of
    anywhere for ALL. (A municipality keeps the entry of a visit that moved away, to
    know it counts there no more.)"""
    if entry is None or entry.contribution is None or entry.day is None:
        return False
    return scope in (ALL_KOSOVO, entry.municipality)


@dataclass
class Rollup:
    """The derived state of the scopes one stage-2 worker owns: per scope and day a
    bucket, per scope the earliest day changed since it was last computed, and the
    rows last emitted."""

    buckets: dict[str, dict[date, DayBucket]] = field(default_factory=dict)
    dirty: dict[str, date] = field(default_factory=dict)  # scope -> earliest changed day
    emitted: dict[tuple[str, str, int, date], tuple[int, int | None]] = field(default_factory=dict)

    @property
    def scopes(self) -> set[str]:
        return set(self.buckets)

    def _shift(self, scope: str, entry: VisitEntry | None, sign: int) -> None:
        if entry is None or not counts_in(scope, entry):
            return
        assert entry.day is not None  # counts_in says so
        assert entry.contribution is not None
        self.buckets[scope][entry.day].add(entry.contribution, sign)
        earliest = self.dirty.get(scope)
        self.dirty[scope] = entry.day if earliest is None else min(earliest, entry.day)

    def replace(self, scope: str, old: VisitEntry | None, new: VisitEntry) -> None:
        """A visit's entry in `scope` changed from `old` to `new`."""
        self._shift(scope, old, -1)
        self._shift(scope, new, +1)

    def build(self, scope: str, entries: Iterable[VisitEntry]) -> None:
        """Take on `scope` from its entries; all of its rows will be computed and sent."""
        self.drop(scope)
        self.buckets[scope] = defaultdict(DayBucket)
        for entry in entries:
            self._shift(scope, entry, +1)
        self.dirty[scope] = date.min

    def drop(self, scope: str) -> None:
        """Give `scope` up (another worker owns it now)."""
        self.buckets.pop(scope, None)
        self.dirty.pop(scope, None)
        for key in [key for key in self.emitted if key[0] == scope]:
            del self.emitted[key]

    def mark_all(self, since: date = date.min, scopes: Iterable[str] | None = None) -> None:
        """Mark every owned scope (or these) to be computed from `since` on."""
        for scope in self.buckets if scopes is None else scopes:
            if scope in self.buckets:
                self.dirty[scope] = min(self.dirty.get(scope, since), since)

    def changed_values(
        self, first: date, clock: date, scopes: Iterable[str] | None = None
    ) -> list[tuple[str, Value]]:
        """The rows (scope, value) for as_of in first..clock that differ from what was
        last emitted, for every dirty scope (of `scopes`, when given). Computed whole,
        then the marks are cleared; a change dated after `clock` stays marked for a
        later clock."""
        wanted = None if scopes is None else set(scopes)
        changed: list[tuple[str, Value]] = []
        for scope, since in sorted(self.dirty.items()):
            if wanted is not None and scope not in wanted:
                continue
            start = max(first, since)
            if start > clock:
                continue
            for value in scope_values(self.buckets[scope], start, clock, WINDOWS):
                key = (scope, value.indicator, value.window_days, value.as_of)
                if self.emitted.get(key) != (value.numerator, value.denominator):
                    self.emitted[key] = (value.numerator, value.denominator)
                    changed.append((scope, value))
            del self.dirty[scope]
        return changed

    def value_at(self, scope: str, indicator: str, window: int, as_of: date) -> Value | None:
        for value in scope_values(self.buckets[scope], as_of, as_of, (window,)):
            if value.indicator == indicator:
                return value
        return None
