"""As-of times: the one rule that turns what a person or a caller gives into an aware UTC time.

Every computation takes an explicit as-of time; this is how it is read, everywhere:
``None`` and the word ``now`` are now (to the second); a date is its midnight UTC; a naive
date-time is UTC; an ISO 8601 string (``2024-06-30``, ``2024-06-30T12:00:00Z``, with an
offset) is parsed; an aware time is converted to UTC.

What a command takes when it is given no as-of (now, or the end of the newest data's day
when the data stop more than a day before now) is decided with the data in view, by
:func:`segmentum.analytics.freshness.resolve_as_of`.
"""

from __future__ import annotations

import datetime as _dt
import sys
from typing import Any

from segmentum.errors import UsageError

__all__ = ["to_utc"]


def to_utc(value: Any) -> _dt.datetime:
    """An as-of time as an aware UTC datetime (see the module doc)."""
    if value is None or (isinstance(value, str) and value.strip().lower() == "now"):
        return _dt.datetime.now(_dt.UTC).replace(microsecond=0)
    pd = sys.modules.get("pandas")  # a pandas Timestamp exists only once pandas is loaded
    if pd is not None and isinstance(value, pd.Timestamp):
        value = value.to_pydatetime()
    if isinstance(value, str):
        try:
            value = _dt.datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            raise UsageError(
                f"Cannot read {value!r} as a date: use ISO 8601, e.g. 2024-06-30 or "
                "2024-06-30T12:00:00Z."
            ) from None
    if isinstance(value, _dt.date) and not isinstance(value, _dt.datetime):
        value = _dt.datetime(value.year, value.month, value.day)
    if not isinstance(value, _dt.datetime):
        raise UsageError(f"An as-of time is a date or a date-time, not {value!r}.")
    if value.tzinfo is None:
        value = value.replace(tzinfo=_dt.UTC)
    return value.astimezone(_dt.UTC)
