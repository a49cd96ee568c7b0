"""Five-field cron expressions (minute hour day-of-month month day-of-week), in UTC.

Fields take ``*``, numbers, ranges ``a-b``, steps ``*/n`` and ``a-b/n``, lists ``a,b`` and
the names ``JAN``..``DEC`` and ``SUN``..``SAT`` (day of week 0 and 7 are Sunday). As in
cron, when both the day of month and the day of week are restricted, a day matching either
one runs. Pure: :meth:`Cron.latest` finds the last run at or before a time.
"""

from __future__ import annotations

import dataclasses as dc
import datetime as _dt

from segmentum.errors import UsageError

__all__ = ["Cron"]

_MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
_DAYS = ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT")
# (name, low, high, names mapped to numbers)
_FIELDS = (
    ("minute", 0, 59, {}),
    ("hour", 0, 23, {}),
    ("day of month", 1, 31, {}),
    ("month", 1, 12, {m: i + 1 for i, m in enumerate(_MONTHS)}),
    ("day of week", 0, 7, {d: i for i, d in enumerate(_DAYS)}),
)
_HORIZON_DAYS = 5 * 366  # a schedule that matches no day in five years matches none


@dc.dataclass(frozen=True)
class Cron:
    """A parsed cron expression: the allowed values of each field."""

    text: str
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]  # 0 = Sunday
    any_day: bool  # day of month is *
    any_weekday: bool  # day of week is *

    @classmethod
    def parse(cls, text: str) -> Cron:
        parts = str(text).split()
        if len(parts) != 5:
            raise UsageError(
                f"A cron expression has five fields (minute hour day month weekday); "
                f"{text!r} has {len(parts)}.",
                hint='e.g. "0 9 * * MON" for Mondays at 09:00 UTC',
            )
        sets = [_field(p, *spec, text) for p, spec in zip(parts, _FIELDS, strict=True)]
        weekdays = frozenset(d % 7 for d in sets[4])
        return cls(text, *sets[:4], weekdays, parts[2] == "*", parts[4] == "*")

    def day_matches(self, day: _dt.date) -> bool:
        if day.month not in self.months:
            return False
        in_month = day.day in self.days
        in_week = (day.isoweekday() % 7) in self.weekdays
        if self.any_day or self.any_weekday:
            return in_month and in_week
        return in_month or in_week

    def latest(
        self, at: _dt.datetime, not_before: _dt.datetime | None = None
    ) -> _dt.datetime | None:
        """The last scheduled minute at or before ``at`` (aware UTC), not before
        ``not_before``; None if there is none within five years."""
        day = at.date()
        for _ in range(_HORIZON_DAYS):
            if self.day_matches(day):
                for hour in sorted(self.hours, reverse=True):
                    for minute in sorted(self.minutes, reverse=True):
                        t = _dt.datetime(day.year, day.month, day.day, hour, minute, tzinfo=_dt.UTC)
                        if t <= at:
                            return t if not_before is None or t >= not_before else None
            day -= _dt.timedelta(days=1)
            if not_before is not None and day < not_before.date():
                return None
        return None


def _field(part: str, name: str, low: int, high: int, names: dict, text: str) -> frozenset[int]:
    out: set[int] = set()
    for item in part.upper().split(","):
        rng, _, step = item.partition("/")
        try:
            every = int(step) if step else 1
            if rng == "*":
                a, b = low, high
            elif "-" in rng:
                a, b = (_value(x, names) for x in rng.split("-", 1))
            else:
                a = b = _value(rng, names)
                if step:
                    b = high
        except ValueError:
            raise UsageError(f"Cron field {name} {part!r} of {text!r} is not valid.") from None
        if not (low <= a <= b <= high) or every < 1:
            raise UsageError(
                f"Cron field {name} {part!r} of {text!r} is out of range ({low}-{high})."
            )
        out.update(range(a, b + 1, every))
    return frozenset(out)


def _value(token: str, names: dict) -> int:
    return names[token] if token in names else int(token)
