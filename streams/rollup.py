"""Stage 2's derived state, pure: from the effective visits to indicator rows.

The source of truth is one entry per visit (version, municipality, day, contribution),
kept last-writer-wins by version in a changelog-backed table. Everything here is
derived from those entries: day buckets per scope (each municipality and `ALL`), the
days to recompute, and the rows last emitted. After a restart it is rebuilt from the
entries, and every row is recomputed once.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date

from streams.indicators import DayBucket, Value, scope_values
from vizita.contract.indicators import WINDOWS
from vizita.contract.messages import VisitEntry
from vizita.contract.municipalities import ALL_KOSOVO, SCOPES


def supersedes(incoming: VisitEntry, stored: VisitEntry | None) -> bool:
    """The greater key wins; an equal key is the same row sent again."""
    return stored is None or incoming.key > stored.key


@dataclass
class Rollup:
    buckets: dict[str, dict[date, DayBucket]] = field(
        default_factory=lambda: {scope: defaultdict(DayBucket) for scope in SCOPES}
    )
    dirty: dict[str, date] = field(default_factory=dict)  # scope -> earliest changed day
    emitted: dict[tuple[str, str, int, date], tuple[int, int | None]] = field(default_factory=dict)

    def _shift(self, entry: VisitEntry | None, sign: int) -> None:
        if entry is None or entry.contribution is None or entry.day is None:
            return
        for scope in (entry.municipality, ALL_KOSOVO):
            if scope in self.buckets:
                self.buckets[scope][entry.day].add(entry.contribution, sign)
                earliest = self.dirty.get(scope)
                self.dirty[scope] = entry.day if earliest is None else min(earliest, entry.day)

    def replace(self, old: VisitEntry | None, new: VisitEntry) -> None:
        """A visit's entry changed from `old` to `new`."""
        self._shift(old, -1)
        self._shift(new, +1)

    def rebuild(self, entries: Iterable[VisitEntry]) -> None:
        """Start again from the entries; every row will be recomputed and re-sent."""
        self.buckets = {scope: defaultdict(DayBucket) for scope in SCOPES}
        self.emitted.clear()
        for entry in entries:
            self._shift(entry, +1)
        self.dirty = dict.fromkeys(SCOPES, date.min)

    def mark_all(self, since: date = date.min) -> None:
        for scope in SCOPES:
            self.dirty[scope] = min(self.dirty.get(scope, since), since)

    def changed_values(self, first: date, clock: date) -> list[tuple[str, Value]]:
        """The rows (scope, value) for as_of in first..clock that differ from what was
        last emitted, for every dirty scope. Computed whole, then the marks are cleared;
        a change dated after `clock` stays marked for a later, later clock."""
        changed: list[tuple[str, Value]] = []
        for scope, since in sorted(self.dirty.items()):
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
