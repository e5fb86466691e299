"""Stage 2's derived state, pure: from the effective visits to indicator rows.

The source of truth is one entry per scope and visit (key, municipality, day,
contribution), kept last-writer-wins by key in a changelog-backed table. Everything here
is derived from those entries, for the scopes a worker owns: day buckets per scope (a
municipality, or `ALL`), the days to recompute, and the rows last emitted. A scope a
worker takes on is built from its entries; it computes again the rows from the days its
entries changed on since its last owner computed.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date

from streams.follow_up import FollowUps
from streams.indicators import DayBucket, Value, scope_values
from vizita.contract.indicators import COUNTRYWIDE_INDICATORS, WINDOWS
from vizita.contract.messages import VisitEntry
from vizita.contract.municipalities import ALL_KOSOVO, SCOPES


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
    rows last emitted. The owner of `ALL` sees every visit, and so also keeps the
    follow-ups, and computes `COUNTRYWIDE_INDICATORS` for every scope."""

    buckets: dict[str, dict[date, DayBucket]] = field(default_factory=dict)
    dirty: dict[str, date] = field(default_factory=dict)  # scope -> earliest changed day
    emitted: dict[tuple[str, str, int, date], tuple[int, int | None]] = field(default_factory=dict)
    follow_ups: FollowUps | None = None  # while `ALL` is owned

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

    def replace(self, scope: str, visit_id: str, old: VisitEntry | None, new: VisitEntry) -> None:
        """A visit's entry in `scope` changed from `old` to `new`."""
        self._shift(scope, old, -1)
        self._shift(scope, new, +1)
        if scope == ALL_KOSOVO and self.follow_ups is not None:
            self.follow_ups.replace(visit_id, new)

    def build(
        self, scope: str, entries: Iterable[tuple[str, VisitEntry]], since: date | None = date.min
    ) -> None:
        """Take on `scope` from its entries (visit_id, entry). Its rows from `since` on
        will be computed and sent, none for None: the rows before it are in the store
        as the scope's last owner computed them from the same entries."""
        self.drop(scope)
        self.buckets[scope] = defaultdict(DayBucket)
        countrywide = scope == ALL_KOSOVO
        follow_ups = self.follow_ups = FollowUps() if countrywide else self.follow_ups
        for visit_id, entry in entries:
            self._shift(scope, entry, +1)
            if countrywide and follow_ups is not None:
                follow_ups.replace(visit_id, entry)
        self.dirty.pop(scope, None)
        if countrywide and follow_ups is not None:
            follow_ups.dirty.clear()  # built just now, from these entries alone
        if since is not None:
            self.mark_all(since, (scope,))

    def drop(self, scope: str) -> None:
        """Give `scope` up (another worker owns it now)."""
        self.buckets.pop(scope, None)
        self.dirty.pop(scope, None)
        countrywide = scope == ALL_KOSOVO
        if countrywide:
            self.follow_ups = None
        for key in [key for key in self.emitted if _emitted_by(key, scope, countrywide)]:
            del self.emitted[key]

    def mark_all(self, since: date = date.min, scopes: Iterable[str] | None = None) -> None:
        """Mark every owned scope (or these) to be computed from `since` on."""
        for scope in self.buckets if scopes is None else scopes:
            if scope in self.buckets:
                self.dirty[scope] = min(self.dirty.get(scope, since), since)
                if scope == ALL_KOSOVO and self.follow_ups is not None:
                    self.follow_ups.mark_all(since, SCOPES)

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
            self._changed(scope, scope_values(self.buckets[scope], start, clock, WINDOWS), changed)
            del self.dirty[scope]
        if self.follow_ups is not None and (wanted is None or ALL_KOSOVO in wanted):
            self._follow_ups_changed(self.follow_ups, first, clock, changed)
        return changed

    def _follow_ups_changed(
        self, follow_ups: FollowUps, first: date, clock: date, changed: list[tuple[str, Value]]
    ) -> None:
        for scope, since in sorted(follow_ups.dirty.items()):
            start = max(first, since)
            if start > clock:
                continue
            for window in WINDOWS:
                self._changed(scope, follow_ups.values(scope, start, clock, window), changed)
            del follow_ups.dirty[scope]

    def _changed(
        self, scope: str, values: Iterable[Value], changed: list[tuple[str, Value]]
    ) -> None:
        for value in values:
            key = (scope, value.indicator, value.window_days, value.as_of)
            if self.emitted.get(key) != (value.numerator, value.denominator):
                self.emitted[key] = (value.numerator, value.denominator)
                changed.append((scope, value))

    def value_at(self, scope: str, indicator: str, window: int, as_of: date) -> Value | None:
        """A value this rollup computes (None for one another worker computes)."""
        return self.values_at(scope, window, as_of).get(indicator)

    def values_at(self, scope: str, window: int, as_of: date) -> dict[str, Value]:
        """Every indicator this rollup computes for `scope` on one day, by name: one
        pass over the window's buckets for all of them."""
        found: dict[str, Value] = {}
        if scope in self.buckets:
            for value in scope_values(self.buckets[scope], as_of, as_of, (window,)):
                found[value.indicator] = value
        if self.follow_ups is not None:
            for value in self.follow_ups.values(scope, as_of, as_of, window):
                found[value.indicator] = value
        return found


def _emitted_by(key: tuple[str, str, int, date], scope: str, countrywide: bool) -> bool:
    """Whether a row last emitted belongs to `scope`'s owner (countrywide: to ALL's)."""
    if key[1] in COUNTRYWIDE_INDICATORS:
        return countrywide
    return key[0] == scope
