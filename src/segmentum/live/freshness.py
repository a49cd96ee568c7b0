"""Freshness: per saved segment, how up to date its live membership is, in table ``_live_segments``.

    segment              the saved segment
    watermark            as-of time of its latest evaluation: everything stored before the
                         evaluation started is reflected in its membership
    evaluated_at         wall-clock time of that evaluation
    last_full_refresh    as-of time of the latest full refresh (the safety net)
    agreed               whether that refresh found the live membership right (no entry, no exit)
    disagreements        how many contacts it had to move in or out
    last_error           why the latest evaluation failed (null when it did not)
    failing_since        when the failures started (null: healthy)

:func:`freshness` reads it with the lag now: zero when nothing stored waits and no timer of
the segment is overdue, otherwise how long the oldest such thing has waited (a failing
segment: since it started failing).
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Iterable

import ibis
import pyarrow as pa

from segmentum.data.schema import BOOL, I64, STR, TS

__all__ = ["FreshnessTable", "FRESHNESS", "FRESHNESS_SCHEMA"]

FRESHNESS = "_live_segments"
FRESHNESS_SCHEMA = {
    "segment": STR, "watermark": TS, "evaluated_at": TS, "last_full_refresh": TS, "agreed": BOOL,
    "disagreements": I64, "last_error": STR, "failing_since": TS,
}
_ARROW = pa.schema([(c, pa.timestamp("us", tz="UTC") if t.is_timestamp() else pa.bool_() if t.is_boolean()
                     else pa.int64() if t.is_integer() else pa.string()) for c, t in FRESHNESS_SCHEMA.items()])


class FreshnessTable:
    """Reads and writes ``_live_segments`` (inside the caller's transaction)."""

    def __init__(self, wh) -> None:
        self.wh = wh
        wh.create_table(FRESHNESS, FRESHNESS_SCHEMA)

    def rows(self) -> dict[str, dict]:
        return {r["segment"]: r for r in self.wh.table(FRESHNESS).to_pyarrow().to_pylist()}

    def _write(self, rows: list[dict]) -> None:
        if not rows:
            return
        self.wh.delete_where(FRESHNESS, "segment", [r["segment"] for r in rows])
        self.wh.insert(FRESHNESS, ibis.memtable(pa.Table.from_pylist(rows, schema=_ARROW)))

    def _update(self, names: Iterable[str], **values) -> None:
        old = self.rows()
        self._write([{**old.get(n, {"segment": n}), "segment": n, **values} for n in names])

    def evaluated(self, names: Iterable[str], as_of: _dt.datetime, failed: dict[str, str] | None = None) -> None:
        """An evaluation as of ``as_of`` covered ``names``; ``failed`` (name -> why) did not."""
        failed = failed or {}
        now = _dt.datetime.now(_dt.UTC)
        old = self.rows()
        rows = []
        for n in names:
            row = {**old.get(n, {}), "segment": n}
            if n in failed:
                row.update(last_error=failed[n], failing_since=row.get("failing_since") or now)
            else:
                row.update(watermark=as_of, evaluated_at=now, last_error=None, failing_since=None)
            rows.append(row)
        self._write(rows)

    def refreshed(self, results: dict[str, int], as_of: _dt.datetime) -> None:
        """A full refresh as of ``as_of`` moved ``results[name]`` contacts of each segment."""
        old = self.rows()
        now = _dt.datetime.now(_dt.UTC)
        self._write([{**old.get(n, {}), "segment": n, "watermark": as_of, "evaluated_at": now,
                      "last_full_refresh": as_of, "agreed": moved == 0, "disagreements": moved,
                      "last_error": None, "failing_since": None} for n, moved in results.items()])

    def forget(self, names: Iterable[str]) -> None:
        self.wh.delete_where(FRESHNESS, "segment", list(names))

    def failing(self) -> dict[str, dict]:
        return {n: r for n, r in self.rows().items() if r["failing_since"] is not None}
