"""Quiet hours: no message between two local times, in the contact's time zone.

``QuietHours(time(21), time(8))`` is quiet from 21:00 to 08:00 local time (a window may
wrap midnight; start == end means never quiet). :meth:`QuietHours.next_allowed` moves a
send time that falls inside the window to the window's end: the first instant at which
the local clock reads ``end`` or later. Across a DST change that is exact: if ``end``
does not exist that day (the clock jumps over it), the quiet hours end at the jump; if it
occurs twice (the clock falls back), at its first occurrence after the send time.

Contacts without a (known) time zone are in ``fallback_tz`` (the workspace's timezone
setting, UTC by default). Pure: no I/O, times in and out are aware UTC datetimes.
"""

from __future__ import annotations

import dataclasses as dc
import datetime as _dt
import functools
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from segmentum.errors import UsageError

__all__ = ["QuietHours", "zone"]

UTC = _dt.UTC


@functools.lru_cache(maxsize=1024)
def zone(name: str | None, fallback: str = "UTC") -> ZoneInfo:
    """The ZoneInfo of an IANA name; ``fallback``'s for None, empty or unknown names."""
    if name:
        try:
            return ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            pass
    return ZoneInfo(fallback)


def _as_time(value) -> _dt.time:
    if isinstance(value, _dt.time):
        return value
    try:
        return _dt.time.fromisoformat(str(value))
    except ValueError:
        raise UsageError(f"A quiet-hours time is HH:MM, e.g. 21:00; got {value!r}.") from None


@dc.dataclass(frozen=True)
class QuietHours:
    """Quiet from ``start`` to ``end`` local time (see the module doc)."""

    start: _dt.time
    end: _dt.time
    fallback_tz: str = "UTC"

    def __post_init__(self) -> None:
        object.__setattr__(self, "start", _as_time(self.start).replace(tzinfo=None))
        object.__setattr__(self, "end", _as_time(self.end).replace(tzinfo=None))
        try:
            ZoneInfo(self.fallback_tz)
        except (ZoneInfoNotFoundError, ValueError):
            raise UsageError(f"Unknown time zone {self.fallback_tz!r}: use an IANA name, "
                             "e.g. Europe/London.") from None

    def quiet_at(self, local: _dt.time) -> bool:
        """True when a local wall-clock time is inside the quiet window."""
        local = local.replace(tzinfo=None)
        if self.start == self.end:
            return False
        if self.start < self.end:
            return self.start <= local < self.end
        return local >= self.start or local < self.end

    def is_quiet(self, send_at: _dt.datetime, tz_name: str | None) -> bool:
        """True when ``send_at`` (aware) falls in the quiet window of the zone."""
        return self.quiet_at(send_at.astimezone(zone(tz_name, self.fallback_tz)).time())

    def next_allowed(self, send_at: _dt.datetime, tz_name: str | None) -> _dt.datetime:
        """``send_at`` (UTC) if it is outside the quiet window in ``tz_name``, else the
        window's end (UTC)."""
        return _next_allowed(self, _utc(send_at), tz_name)


def _utc(value: _dt.datetime) -> _dt.datetime:
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


@functools.lru_cache(maxsize=65536)
def _next_allowed(q: QuietHours, send_at: _dt.datetime, tz_name: str | None) -> _dt.datetime:
    tz = zone(tz_name, q.fallback_tz)
    local = send_at.astimezone(tz)
    if not q.quiet_at(local.time()):
        return send_at
    for day in (local.date(), local.date() + _dt.timedelta(days=1)):
        edge = _first_instant_at(tz, day, q.end, after=send_at)
        if edge is not None:
            return edge
    raise AssertionError("a quiet window ends within a day")  # start != end here


def _first_instant_at(tz: ZoneInfo, day: _dt.date, wall: _dt.time, after: _dt.datetime):
    """The first instant after ``after`` whose local clock on ``day`` reads ``wall`` or
    later for the first time (DST-aware; see the module doc), or None."""
    naive = _dt.datetime.combine(day, wall)
    found = []
    for fold in (0, 1):
        utc = naive.replace(tzinfo=tz, fold=fold).astimezone(UTC)
        if utc.astimezone(tz).replace(tzinfo=None) == naive:  # the wall time exists
            found.append(utc)
    if not found:  # the clock jumps over ``wall``: the jump is the edge
        found.append(_gap_end(tz, naive))
    later = [t for t in found if t > after]
    return min(later) if later else None


def _gap_end(tz: ZoneInfo, naive: _dt.datetime) -> _dt.datetime:
    """The instant the clock jumps over a nonexistent local time (to the second)."""
    lo = naive.replace(tzinfo=tz, fold=1).astimezone(UTC)  # before the jump
    hi = naive.replace(tzinfo=tz, fold=0).astimezone(UTC)  # after it
    lo, hi = min(lo, hi), max(lo, hi)
    while hi - lo > _dt.timedelta(seconds=1):
        mid = lo + (hi - lo) / 2
        if mid.astimezone(tz).replace(tzinfo=None) >= naive:
            hi = mid
        else:
            lo = mid
    return hi
