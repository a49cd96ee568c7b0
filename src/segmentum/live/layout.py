"""The source, contact and score tables kept in contact order, so that one contact's rows are cheap to read.

The live path reads the rows of the few contacts a batch touched (:mod:`.contact_eval`).
In load order a contact's events are spread over the whole table, and reading them is a
scan of every row group (about 60-180 ms for one contact among 43.8M events at 1M
contacts). Rewritten in contact order, each row group holds a narrow range of contact ids
and DuckDB's zone maps skip the others: the same query reads one or two row groups
(about 2-3 ms; numbers in benchmarks/README.md). It is the same table, rewritten in
place: no copy can go stale, and nothing else reads it differently.

Rows appended later (the service's batches, later loads) go to the end, in their own row
groups: they are read on every lookup, which costs little while they are few.
:func:`keep_ordered` rewrites a table again once its appended rows pass a share of it
(``_live_layout`` keeps each table's oid and row count when it was last ordered; a table
missing, or a view, is left alone). DuckDB only; another
warehouse is left as it is.
"""

from __future__ import annotations

import datetime as _dt
import logging
import time

from segmentum.warehouse.duckdb import quote as _q

__all__ = ["ORDER", "keep_ordered", "order_table", "unordered_rows"]

log = logging.getLogger("segmentum.live")
STATE = "_live_layout"
# table -> its sort keys: the contact column first (the source tables: a contact's rows in
# time order), then the tables of a contact's profile and scores read beside them
ORDER = {
    "events": ("contact_id", "occurred_at"),
    "orders": ("contact_id", "ordered_at"),
    "order_items": ("_contact_id", "_ordered_at"),
    "deals": ("contact_id", "updated_at"),
    "contacts": ("contact_id",),
    "clv": ("contact_id",),
    "_rfm_rows": ("contact_id",),  # behind the rfm view
}
SHARE = 0.2  # rewrite when the rows appended since the last ordering pass this share
MINIMUM = 100_000  # ... and this many (a small table costs little to scan)


def _state(raw) -> dict[str, tuple[int, int]]:
    """table -> (its oid, its row count) when it was last ordered."""
    raw.execute(f"CREATE TABLE IF NOT EXISTS {STATE} (tbl VARCHAR, oid BIGINT, rows BIGINT, ordered_at TIMESTAMPTZ)")
    return {t: (oid, rows) for t, oid, rows in raw.execute(f"SELECT tbl, oid, rows FROM {STATE}").fetchall()}


def _now(raw, table: str) -> tuple[int, int]:
    """(oid, row count) of ``table`` now: a table created anew (replaced) has another oid."""
    found = raw.execute("SELECT table_oid FROM duckdb_tables() WHERE table_name = ? AND schema_name = 'main'",
                        [table]).fetchone()
    if found is None:  # no such table (or a view)
        return None, 0
    return found[0], raw.execute(f"SELECT count(*) FROM {_q(table)}").fetchone()[0]


def unordered_rows(wh, table: str) -> int:
    """How many rows of ``table`` are not known to be in contact order: those appended since
    it was last ordered, or all of them if it never was (or was created anew since)."""
    raw = wh.raw
    (oid, total), (was_oid, was_rows) = _now(raw, table), _state(raw).get(table, (None, 0))
    return total if oid != was_oid else max(0, total - was_rows)


def order_table(wh, table: str) -> float:
    """Rewrite ``table`` in contact order (same name, columns and rows), in one
    transaction; the seconds it took."""
    started = time.perf_counter()
    raw, keys = wh.raw, ", ".join(_q(k) for k in ORDER[table])
    new = _q(f"_{table}_ordered")
    with wh.transaction():
        _state(raw)
        raw.execute(f"DROP TABLE IF EXISTS {new}")
        raw.execute("SET preserve_insertion_order = true")  # the warehouse turns it off
        try:
            raw.execute(f"CREATE TABLE {new} AS SELECT * FROM {_q(table)} ORDER BY {keys}")
        finally:
            raw.execute("SET preserve_insertion_order = false")
        raw.execute(f"DROP TABLE {_q(table)}")
        raw.execute(f"ALTER TABLE {new} RENAME TO {_q(table)}")
        oid, rows = _now(raw, table)
        raw.execute(f"DELETE FROM {STATE} WHERE tbl = ?", [table])
        raw.execute(f"INSERT INTO {STATE} VALUES (?, ?, ?, ?)", [table, oid, rows, _dt.datetime.now(_dt.UTC)])
    seconds = time.perf_counter() - started
    log.info("table %s rewritten in contact order (%d rows) in %.1f s", table, rows, seconds)
    return seconds


def keep_ordered(wh, *, share: float = SHARE, minimum: int = MINIMUM) -> dict[str, float]:
    """Rewrite each source table whose rows appended since it was last ordered pass
    ``share`` of it and ``minimum``; table -> seconds, for those rewritten."""
    if wh.name != "duckdb":
        return {}
    done = {}
    for table in ORDER:
        appended, total = unordered_rows(wh, table), _now(wh.raw, table)[1]
        if total and appended >= minimum and appended >= share * total:
            done[table] = order_table(wh, table)
    return done
