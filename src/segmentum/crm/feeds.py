"""Change feeds: what changed after a cursor, in the order it was recorded.

``membership_changes(ws, segment, since)`` lists a saved segment's entries and exits
(from its membership intervals, :mod:`segmentum.segments.store`), ordered by the as-of time
of the refresh that recorded them, then entries before exits, then contact id.
``consent_changes(ws, since)`` lists the consent events (unsubscribes, resubscribes,
suppressions: table ``consent_events`` of :mod:`segmentum.activation.consent`) in the order
they were recorded.

A cursor (``next``) is the sort key of the last change given, made opaque; the next call
returns what sorts after it. The order is the order of recording because changes are
recorded in time order: a refresh as of a time before a segment's last refresh is refused,
and consent events are stamped when they are recorded, one at a time on the workspace. So a
reader that keeps ``next`` (across its own restarts or the server's) misses nothing and
gets nothing twice. ``since`` may also be an ISO 8601 time: the changes at or after it.
Every change has a stable ``id`` (a SHA-256 of what it is), the same in every read.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
from typing import Any

import ibis
import ibis.expr.types as ir

from segmentum.clock import to_utc
from segmentum.crm.cursors import after, decode_cursor, encode_cursor, key_value
from segmentum.errors import UsageError

__all__ = ["membership_changes", "membership_change_table", "consent_changes", "change_id",
           "feed_cursor"]

_VERSION = "v1"
_MEMBERSHIP_KEYS = ["at", "change", "contact_id"]
_CONSENT_KEYS = ["recorded_at", "contact_id", "channel", "scope", "action", "at"]


def change_id(*parts: Any) -> str:
    """A change's stable id: 32 hex digits of SHA-256 over what identifies it."""
    return hashlib.sha256("\x1f".join(str(p) for p in parts).encode()).hexdigest()[:32]


def feed_cursor(key: list[Any] | None) -> str:
    """The opaque cursor after ``key`` (None: before the first change)."""
    return encode_cursor([_VERSION, *(key or [])])


def _position(since: str | None, size: int) -> tuple[list[Any] | None, _dt.datetime | None]:
    """(sort key to read after, time to read from) for a ``since`` cursor or time."""
    if since is None or not since.strip():
        return None, None
    for n in (1, size + 1):
        try:
            key = decode_cursor(since, n, "since")
        except UsageError:
            continue
        if key[0] == _VERSION:
            return (key[1:] or None), None
    try:
        return None, to_utc(since)
    except UsageError:
        raise UsageError(
            f"`since` is neither a cursor this feed gave out nor a time: {since[:40]!r}.",
            hint="Pass the `next` of the previous answer unchanged, or an ISO 8601 time.",
            field="since",
        ) from None


def _read(t: ir.Table, keys: list[str], since: str | None, time_col: str, limit: int) -> tuple[list[dict], str, bool]:
    key, start = _position(since, len(keys))
    if key is not None:
        t = t.filter(after(t, keys, key, "since"))
    elif start is not None:
        t = t.filter(t[time_col] >= ibis.literal(start, type=t[time_col].type()))
    rows = t.order_by(keys).limit(limit + 1).to_pyarrow().to_pylist()
    more = len(rows) > limit
    rows = rows[:limit]
    if rows:
        last = rows[-1]
        nxt = feed_cursor([last[k] for k in keys])
    else:
        nxt = since if key is not None else feed_cursor(None) if start is None else since
    return rows, nxt, more


def membership_change_table(ws, segment: str) -> ir.Table:
    """Every entry and exit of a saved segment: at, change, contact_id, interval_id."""
    from segmentum.segments.store import SegmentStore

    store = SegmentStore(ws)
    store.require(segment)
    m = store.intervals(segment)
    entered = m.select(at=m.entered_at, change=ibis.literal("entered"), contact_id=m.contact_id,
                       interval_id=m.interval_id)
    left = m.filter(m.exited_at.notnull())
    exited = left.select(at=left.exited_at, change=ibis.literal("exited"),
                         contact_id=left.contact_id, interval_id=left.interval_id)
    return entered.union(exited)


def membership_changes(ws, segment: str, since: str | None = None, limit: int = 500) -> dict:
    """``{segment, items, next, has_more}``: entries and exits after ``since`` (module doc)."""
    if not isinstance(limit, int) or not 1 <= limit <= 100_000:
        raise UsageError("limit is a number of changes from 1 to 100000.", field="limit")
    t = membership_change_table(ws, segment)
    rows, nxt, more = _read(t, _MEMBERSHIP_KEYS, since, "at", limit)
    emails = _emails(ws, {r["contact_id"] for r in rows})
    items = [
        {"id": change_id(segment, r["interval_id"], r["change"]), "at": r["at"],
         "change": r["change"], "contact_id": r["contact_id"], "email": emails.get(r["contact_id"])}
        for r in rows
    ]
    return {"segment": segment, "items": items, "next": nxt, "has_more": more}


def _emails(ws, ids: set[str]) -> dict[str, str | None]:
    if not ids:
        return {}
    c = ws.warehouse.table("contacts")
    rows = c.filter(c.contact_id.isin(sorted(ids))).select("contact_id", "email").to_pyarrow()
    return dict(zip(rows.column(0).to_pylist(), rows.column(1).to_pylist(), strict=True))


def consent_changes(ws, since: str | None = None, limit: int = 500) -> dict:
    """``{items, next, has_more}``: consent events recorded after ``since`` (module doc)."""
    from segmentum.activation.consent import CONSENT_EVENTS

    if not isinstance(limit, int) or not 1 <= limit <= 100_000:
        raise UsageError("limit is a number of changes from 1 to 100000.", field="limit")
    wh = ws.warehouse
    if not wh.has_table(CONSENT_EVENTS):
        _position(since, len(_CONSENT_KEYS))  # a bad cursor is still an error
        return {"items": [], "next": since or feed_cursor(None), "has_more": False}
    t = wh.table(CONSENT_EVENTS)
    rows, nxt, more = _read(t, _CONSENT_KEYS, since, "recorded_at", limit)
    emails = _emails(ws, {r["contact_id"] for r in rows})
    items = [
        {"id": change_id(*(key_value(r[k]) for k in _CONSENT_KEYS)), **r,
         "email": emails.get(r["contact_id"])}
        for r in rows
    ]
    return {"items": items, "next": nxt, "has_more": more}
