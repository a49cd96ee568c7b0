"""The as-of time of a command, with the data in view: a sensible default, and a warning when
the as-of lies after the data.

The rule (one place for every command):

* **given** (``--as-of DATE``, or ``now``): that time. When it is more than
  :data:`STALE_AFTER` (a day) past the newest data time, one warning says so, with the newest
  data time: recent periods then look empty (a 0% current month in every cohort, nobody
  "active" in RFM) through no fault of the customers;
* **not given**: now, while the newest data are less than a day old; otherwise the end of
  the newest data's day (midnight UTC after it). A workspace loaded last week is read as of
  the day its data end, not as of a week of silence; ``--as-of now`` still gives now. A
  command with a default of its own (the report: the date of the ``rfm`` table) uses that
  one, checked like a given time.

The newest data time is the latest of ``orders.ordered_at``, ``events.occurred_at``,
``deals.updated_at`` and ``contacts.created_at`` (the tables the workspace has). An empty
workspace has none: then the as-of is now (or as given), without warnings.

    >>> chosen = resolve_as_of(ws, None)
    >>> chosen.time, chosen.newest_data, chosen.warnings, chosen.to_dict()
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass, field
from typing import Any

from segmentum.clock import to_utc

__all__ = ["STALE_AFTER", "DATA_TIMES", "AsOf", "newest_data_time", "resolve_as_of"]

STALE_AFTER = _dt.timedelta(days=1)
DATA_TIMES = {
    "orders": "ordered_at",
    "events": "occurred_at",
    "deals": "updated_at",
    "contacts": "created_at",
}


@dataclass(frozen=True)
class AsOf:
    """The as-of time used, how it was chosen, and what to tell the user about it."""

    time: _dt.datetime
    newest_data: _dt.datetime | None
    rule: str  # "given", "now" or "end of the newest data's day"
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """The keys every command's JSON carries about its as-of."""
        return {
            "as_of": self.time,
            "as_of_rule": self.rule,
            "newest_data": self.newest_data,
            "warnings": list(self.warnings),
        }


def newest_data_time(ws) -> _dt.datetime | None:
    """The latest activity time in the workspace (see the module doc), None when it has none."""
    import ibis

    present = set(ws.tables())
    parts = [
        ws.table(name).aggregate(newest=lambda t, c=column: t[c].max())
        for name, column in DATA_TIMES.items()
        if name in present and column in ws.table(name).columns
    ]
    if not parts:
        return None
    newest = ibis.union(*parts).newest.max().to_pandas()
    return None if newest is None or newest != newest else to_utc(newest)  # NaT != NaT


def _end_of_day(t: _dt.datetime) -> _dt.datetime:
    return _dt.datetime.combine(t.date() + _dt.timedelta(days=1), _dt.time(), _dt.UTC)


def _fmt(t: _dt.datetime) -> str:
    return f"{t:%Y-%m-%d %H:%M} UTC"


def resolve_as_of(
    ws, value: Any = None, *, default: Any = None, now: _dt.datetime | None = None
) -> AsOf:
    """The as-of time for ``value`` (None when not given) on this workspace (module doc).

    ``default`` is a command's own default for a missing value (the report's: the date of
    the rfm table), checked like a given time; ``now`` is the current time (default: the
    clock), so the rule can be tested.
    """
    now = to_utc(now)
    newest = newest_data_time(ws)
    rule = "given"
    if value is None and default is not None:
        value, rule = default, "the command's default"
    if value is None:
        if newest is None or now - newest <= STALE_AFTER:
            return AsOf(now, newest, "now")
        time = _end_of_day(newest)
        note = (
            f"As of {_fmt(time)}, the end of the day of the newest data ({_fmt(newest)}): "
            f"now is {_days(now - newest)} later. Pass --as-of now for now, or "
            "--as-of DATE."
        )
        return AsOf(time, newest, "end of the newest data's day", notes=[note])
    time = to_utc(value)
    if newest is None or time - newest <= STALE_AFTER:
        return AsOf(time, newest, rule)
    warning = (
        f"As of {_fmt(time)} is {_days(time - newest)} after the newest data "
        f"({_fmt(newest)}): recent periods will look empty (no orders, nobody active). "
        f"Use --as-of {_end_of_day(newest):%Y-%m-%d} for the end of the data."
    )
    return AsOf(time, newest, rule, warnings=[warning])


def _days(gap: _dt.timedelta) -> str:
    days = gap.total_seconds() / 86400
    return f"{days:,.0f} days" if days >= 2 else f"{days * 24:,.0f} hours"
