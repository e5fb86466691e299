"""`at_risk_follow_up_rate` (SPEC §3), pure: no Faust here.

An at-risk visit (completed, effective, with a risk flag) is *followed up* when another
completed effective visit of its household falls 1 to FOLLOW_UP_DAYS days after it, in
any municipality. It counts in its own municipality and in `ALL`, on the day its
follow-up period ends (its day + FOLLOW_UP_DAYS); a window holds the visits whose
period ends inside it.

Whether a visit is followed up depends on its household's other visits, so this state
is kept by household, over the visits of all of Kosovo: stage 2 keeps it where `ALL`
is, and computes the indicator there for every scope. A changed visit changes the
at-risk visits of its household up to FOLLOW_UP_DAYS days before it (old day and new).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta

from streams.indicators import Value, kept, kept_day
from vizita.contract.indicators import FOLLOW_UP_DAYS
from vizita.contract.messages import VisitEntry
from vizita.contract.municipalities import ALL_KOSOVO

INDICATOR = "at_risk_follow_up_rate"
PERIOD = timedelta(days=FOLLOW_UP_DAYS)


@dataclass(frozen=True, slots=True)
class Completed:
    """What the indicator reads of a completed effective visit."""

    household_id: str
    municipality: str
    day: date
    at_risk: bool

    @property
    def ends(self) -> date:
        """The day its follow-up period ends: where it counts."""
        return self.day + PERIOD

    def follows(self, earlier: Completed) -> bool:
        return 1 <= (self.day - earlier.day).days <= FOLLOW_UP_DAYS


def completed_of(entry: VisitEntry | None) -> Completed | None:
    """A visit's entry as this indicator reads it: None unless completed and effective."""
    if entry is None or entry.contribution is None or entry.day is None:
        return None
    if entry.municipality is None or "completed" not in entry.contribution.conditions:
        return None
    at_risk = "ref_den" in entry.contribution.conditions  # completed, with a risk flag
    household = kept(entry.contribution.household_id)
    return Completed(household, kept(entry.municipality), kept_day(entry.day), at_risk)


@dataclass
class EndDay:
    """The at-risk visits of one scope whose follow-up period ends on one day."""

    at_risk: int = 0
    followed: int = 0


@dataclass
class FollowUps:
    """Every completed effective visit of Kosovo by household, which at-risk visits are
    followed up, and per scope and end day their counts; per scope the earliest end
    day changed since it was last computed."""

    visits: dict[str, Completed] = field(default_factory=dict)
    households: dict[str, set[str]] = field(default_factory=dict)
    followed: set[str] = field(default_factory=set)  # at-risk visits followed up
    ends: dict[str, dict[date, EndDay]] = field(default_factory=dict)
    dirty: dict[str, date] = field(default_factory=dict)

    def replace(self, visit_id: str, entry: VisitEntry | None) -> None:
        """A visit's entry is now `entry` (maybe no longer completed, or voided)."""
        before, after = self.visits.get(visit_id), completed_of(entry)
        if before == after:
            return
        if before is not None:
            self._remove(visit_id, before)
        if after is not None:
            self._add(visit_id, after)

    def _add(self, visit_id: str, visit: Completed) -> None:
        self.visits[visit_id] = visit
        self.households.setdefault(visit.household_id, set()).add(visit_id)
        if visit.at_risk:
            followed = self._has_follow_up(visit)
            if followed:
                self.followed.add(visit_id)
            self._count(visit, 1, followed)
        self._review_before(visit)

    def _remove(self, visit_id: str, visit: Completed) -> None:
        del self.visits[visit_id]
        household = self.households[visit.household_id]
        household.discard(visit_id)
        if not household:
            del self.households[visit.household_id]
        if visit.at_risk:
            self._count(visit, -1, visit_id in self.followed)
            self.followed.discard(visit_id)
        self._review_before(visit)

    def _has_follow_up(self, visit: Completed) -> bool:
        # `follows` asks for a later day, so a visit never follows itself up
        return any(
            self.visits[other].follows(visit)
            for other in self.households.get(visit.household_id, ())
        )

    def _review_before(self, changed: Completed) -> None:
        """The household's at-risk visits that `changed` may follow up, decided again."""
        for visit_id in self.households.get(changed.household_id, ()):
            visit = self.visits[visit_id]
            if visit.at_risk and changed.follows(visit):
                now = self._has_follow_up(visit)
                if now != (visit_id in self.followed):
                    (self.followed.add if now else self.followed.discard)(visit_id)
                    self._count_followed(visit, 1 if now else -1)

    def _count(self, visit: Completed, sign: int, followed: bool) -> None:
        self._shift(visit, sign, sign if followed else 0)

    def _count_followed(self, visit: Completed, sign: int) -> None:
        self._shift(visit, 0, sign)

    def _shift(self, visit: Completed, at_risk: int, followed: int) -> None:
        for scope in (visit.municipality, ALL_KOSOVO):
            by_day = self.ends.setdefault(scope, {})
            counts = by_day.setdefault(visit.ends, EndDay())
            counts.at_risk += at_risk
            counts.followed += followed
            if counts.at_risk == 0:  # a missing day means the same; keeps the map small
                del by_day[visit.ends]
            earliest = self.dirty.get(scope)
            self.dirty[scope] = visit.ends if earliest is None else min(earliest, visit.ends)

    def mark_all(self, since: date, scopes: Iterable[str]) -> None:
        for scope in scopes:
            self.dirty[scope] = min(self.dirty.get(scope, since), since)

    def values(self, scope: str, first: date, last: date, window: int) -> Iterator[Value]:
        return follow_up_values(self.ends.get(scope, {}), first, last, window)


def follow_up_values(
    ends: Mapping[date, EndDay], first: date, last: date, window: int
) -> Iterator[Value]:
    """The indicator for every `as_of` in first..last over `window` days, sliding the
    window so each end day enters and leaves once."""
    empty = EndDay()
    at_risk = followed = 0

    def shift(day: date, sign: int) -> None:
        nonlocal at_risk, followed
        counts = ends.get(day, empty)
        at_risk += sign * counts.at_risk
        followed += sign * counts.followed

    day = first - timedelta(days=window - 1)
    while day < first:
        shift(day, +1)
        day += timedelta(days=1)
    as_of = first
    while as_of <= last:
        shift(as_of, +1)
        value = followed / at_risk if at_risk else None
        yield Value(INDICATOR, window, as_of, followed, at_risk, value)
        shift(as_of - timedelta(days=window - 1), -1)
        as_of += timedelta(days=1)
