"""Days and the programme's time zone (SPEC §2)."""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

LOCAL_TZ = ZoneInfo("Europe/Belgrade")


def local_day(moment: datetime) -> date:
    """The programme day of an instant: its date in Kosovo's time zone."""
    return moment.astimezone(LOCAL_TZ).date()
