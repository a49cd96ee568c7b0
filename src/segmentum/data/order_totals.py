"""Per-contact purchase totals, rebuilt by every load of orders or contacts.

RFM as of a date after the last purchase reads these totals (one row per contact) instead of
grouping every order again: at 1M contacts and 9.6M orders that is the larger part of its
time. Loads pay for it once (about a second at that size), inside their own transaction.

``_order_totals`` has one row per contact or buyer:
    contact_id, is_contact (has a row in contacts), created_at (null for a buyer without
    one), last_ordered_at (latest purchase), orders (purchases), revenue_cents (their total,
    the exact sum of ``orders.total`` in whole cents). A purchase is a completed order or one
    with no status (:func:`segmentum.data.schema.is_purchase`); contacts who never bought
    have 0 orders.
``_order_totals_state`` has one row: what they were built from - the number of rows and the
newest ``_loaded_at`` of orders and of contacts, the latest purchase, and when.

:func:`current_order_totals` hands the totals out only while they still describe both tables
(the same row counts and newest load stamps: a load stamps every row it inserts or changes)
and only for an as-of date after the latest purchase, when "ordered before the as-of date"
leaves every purchase in. Anything else - a past date, a table changed outside ``segmentum
load`` so that its stamps moved, a workspace from before the totals - gets ``None``, and the
caller groups the orders itself. An edit made with SQL that keeps both the row count and the
stamps (an UPDATE that leaves ``_loaded_at``) cannot be seen: call
:func:`refresh_order_totals` after one.
"""

from __future__ import annotations

import datetime as _dt

import ibis
import ibis.expr.datatypes as dt
import ibis.expr.types as ir

from segmentum.data.schema import cents, is_purchase

__all__ = ["STATE_TABLE", "TOTALS_TABLE", "current_order_totals", "refresh_order_totals"]

TOTALS_TABLE = "_order_totals"
STATE_TABLE = "_order_totals_state"
_NEEDED = {  # the tables the totals are built from, and the columns they read
    "orders": ("contact_id", "ordered_at", "total", "status", "_loaded_at"),
    "contacts": ("contact_id", "created_at", "_loaded_at"),
}


def _sources(wh, tables: set[str]) -> dict[str, ir.Table] | None:
    """The orders and contacts tables, if both are in ``tables`` (the warehouse's) with the
    columns the totals need."""
    if not all(name in tables for name in _NEEDED):
        return None
    out = {name: wh.table(name) for name in _NEEDED}
    if any(not set(_NEEDED[name]) <= set(t.columns) for name, t in out.items()):
        return None
    return out


def _fingerprint(sources: dict[str, ir.Table]) -> dict:
    """Row count and newest ``_loaded_at`` of orders and of contacts, in one small query."""
    parts = []
    for name, t in sources.items():
        parts.append(
            t.aggregate(**{f"{name}_rows": t.count(), f"{name}_loaded_at": t._loaded_at.max()})
        )
    (row,) = parts[0].cross_join(parts[1]).to_pyarrow().to_pylist()
    return {k: int(v) if k.endswith("_rows") else v for k, v in row.items()}


def refresh_order_totals(wh) -> None:
    """Rebuild the totals from the orders and contacts as they are now (a no-op on a warehouse
    without both tables). Call it inside the transaction that changed them."""
    sources = _sources(wh, set(wh.list_tables()))
    if sources is None:
        return
    orders, contacts = sources["orders"], sources["contacts"]
    bought = (
        orders.filter(is_purchase(orders.status))
        .group_by("contact_id")
        .agg(
            last_ordered_at=lambda t: t.ordered_at.max(),
            orders=lambda t: t.count(),
            revenue=lambda t: t.total.sum(),
        )
    )
    people = contacts.select("contact_id", "created_at", is_contact=ibis.literal(True))
    j = people.outer_join(bought, people.contact_id == bought.contact_id)
    totals = j.select(
        contact_id=ibis.coalesce(j.contact_id, j.contact_id_right),
        is_contact=j.is_contact.fill_null(False),
        created_at=j.created_at,
        last_ordered_at=j.last_ordered_at,
        orders=j.orders.fill_null(0).cast("int64"),
        revenue_cents=cents(j.revenue).fill_null(0),
    )
    ts = dt.Timestamp(timezone="UTC")
    with wh.transaction():
        wh.rewrite_table(TOTALS_TABLE, totals)
        last = wh.table(TOTALS_TABLE).last_ordered_at.max().to_pyarrow().as_py()
        state = {
            **_fingerprint(sources),
            "last_purchase_at": last,
            "built_at": _dt.datetime.now(_dt.UTC),
        }
        schema = ibis.schema(
            {
                "orders_rows": "int64",
                "orders_loaded_at": ts,
                "contacts_rows": "int64",
                "contacts_loaded_at": ts,
                "last_purchase_at": ts,
                "built_at": ts,
            }
        )
        wh.replace_table(STATE_TABLE, ibis.memtable([state], schema=schema))


def current_order_totals(wh, as_of: _dt.datetime) -> ir.Table | None:
    """The totals table if it describes the orders and contacts as they are now and every
    purchase is before ``as_of`` (an aware UTC datetime); otherwise None."""
    tables = set(wh.list_tables())
    if not {TOTALS_TABLE, STATE_TABLE} <= tables:
        return None
    sources = _sources(wh, tables)
    if sources is None:
        return None
    rows = wh.table(STATE_TABLE).to_pyarrow().to_pylist()
    if len(rows) != 1:
        return None
    state = rows[0]
    if any(state[k] != v for k, v in _fingerprint(sources).items()):
        return None
    last = state["last_purchase_at"]
    if last is not None and last >= as_of:
        return None
    return wh.table(TOTALS_TABLE)
