"""Segment drill-down: what a segment's recent purchases are made of, compared with the base.

    >>> df = drilldown(ws, "R1F3M3", by="category", last_orders=3)
    >>> df.head()      # key, segment_share, base_share, lift, segment_contacts, ...

This is the analysis of seed 000: in R1F3M3 ("bought often and for a lot, but long ago") the
last transactions are dominated by baby food - a category whose share in the segment is far
above its share in the whole base (lift > 1).

**The segment** is a saved segment (by its exact name: the members its last refresh
recorded, or at ``as_of`` from its history; never refreshed, or ``as_of`` before its first
refresh: its rule evaluated as of then), an RFM cell (``R1F3M3``, matching
``^R\\dF\\dM\\d$``) or an RFM segment name (``"Champions"``, case-insensitive) looked up in
the workspace table ``rfm`` (the latest snapshot at or before ``as_of``), or any Ibis table
with a ``contact_id`` column (a CSV list, ...). See :func:`resolve_segment`.

**Recent purchases.** Only ``completed`` orders dated before ``as_of`` are purchases (a null
status counts as completed); ``returned`` and ``cancelled`` orders are left out entirely, so
they are not among the "last K orders" either. Recent purchases are each contact's last K
completed orders (``last_orders``, default 3; ties on ``ordered_at`` are broken by
``order_id`` so the choice is reproducible) or every completed order in the ``window_days``
days before ``as_of``. The base is every contact's purchases under the same definition
(segment members included).

**Shares** are by item value (``quantity * unit_price`` of the order lines; ``measure=
"quantity"`` uses units instead). For a key (category, brand or SKU):
``segment_share`` = the key's value in the segment's recent purchases / all of their value;
``base_share`` the same over the base; ``lift = segment_share / base_share``;
``segment_contacts`` = segment members who bought the key; ``segment_contact_share`` =
that / segment members with recent purchases. Lines whose product is unknown or has no
value for ``by`` are grouped under ``"(unknown)"``.

**Support.** A key is shown only if at least ``min_contacts`` segment members bought it
**and** at least ``min_share`` of the segment's buyers did (defaults 5 and 1%), so one
eccentric customer cannot top the list. Rows are sorted by lift (descending), then by
segment share (descending), then by key.

The aggregation runs in the warehouse (the recent order lines kept in a temporary table for
its two passes); only one row per key comes out.
"""

from __future__ import annotations

import datetime as _dt
import re
import uuid
from dataclasses import dataclass
from decimal import Decimal

import ibis
import ibis.expr.types as ir
import pandas as pd

from segmentum.analytics.cohorts import _completed
from segmentum.clock import to_utc
from segmentum.errors import UsageError, WorkspaceError, did_you_mean

__all__ = [
    "BY",
    "MEASURES",
    "RFM_CELL",
    "UNKNOWN_KEY",
    "Segment",
    "resolve_segment",
    "recent_orders",
    "drilldown",
]

BY = ("category", "brand", "sku")
MEASURES = ("value", "quantity")
RFM_CELL = re.compile(r"^R\dF\dM\d$", re.IGNORECASE)
UNKNOWN_KEY = "(unknown)"
DEFAULT_LAST_ORDERS = 3

COLUMNS = [
    "key",
    "segment_share",
    "base_share",
    "lift",
    "segment_contacts",
    "segment_contact_share",
    "segment_value",
    "segment_quantity",
    "base_contacts",
    "base_value",
    "base_quantity",
]


@dataclass
class Segment:
    """A set of contacts: a display name, the members (Ibis table of contact_id), the time
    they are as of (the RFM snapshot's, the saved segment's refresh) and where they came
    from (``source``: "rfm"; "saved": recorded by the saved segment's refreshes;
    "saved_evaluated": its rule evaluated as of ``as_of``; "table")."""

    name: str
    members: ir.Table
    as_of: _dt.datetime | None = None
    source: str = "rfm"


def _rfm_literal(rfm: ir.Table, as_of: _dt.datetime):
    if rfm.as_of.type().is_date():
        return ibis.literal(as_of.date())
    return ibis.literal(as_of)


def _to_utc(value) -> _dt.datetime | None:
    if value is None or (not isinstance(value, _dt.date) and pd.isna(value)):
        return None
    ts = pd.Timestamp(value)
    if ts.tzinfo is None:
        ts = ts.tz_localize("UTC")
    return ts.tz_convert("UTC").to_pydatetime()


def resolve_segment(ws, segment, as_of: _dt.datetime | None = None) -> Segment:
    """A :class:`Segment` from a saved segment's name, an RFM cell / name (table ``rfm``),
    an Ibis table, or a Segment (see the module doc).

    An RFM cell or name is looked up in the latest ``rfm`` snapshot at or before ``as_of``
    (the latest of all when ``as_of`` is None). An unknown name raises UsageError with a
    did-you-mean over saved segments and RFM names; a workspace with neither raises
    WorkspaceError.
    """
    if isinstance(segment, Segment):
        return segment
    if isinstance(segment, ir.Table):
        if "contact_id" not in segment.columns:
            raise UsageError("A segment table needs a contact_id column.")
        return Segment("custom segment", segment.select("contact_id").distinct(), source="table")
    if not isinstance(segment, str) or not segment.strip():
        raise UsageError("Name a segment: a saved segment, an RFM cell such as R1F3M3 or an "
                         "RFM segment name.")
    from segmentum.segments import SegmentEngine

    engine = SegmentEngine(ws)
    saved = engine.store.names()
    if segment.strip() in saved:
        return _saved_segment(engine, segment.strip(), as_of)
    if not ws.warehouse.has_table("rfm"):
        raise WorkspaceError(
            f"No saved segment {segment.strip()!r}{did_you_mean(segment.strip(), saved)} and "
            "no RFM scores to look it up in: run `segmentum rfm` first, or name a saved "
            f"segment ({', '.join(saved) or 'none yet'})."
        )
    return _rfm_segment(ws, segment.strip(), as_of, saved)


def _saved_segment(engine, name: str, as_of: _dt.datetime | None) -> Segment:
    """A saved segment's members: recorded by its refreshes when they cover ``as_of``, else
    its rule evaluated as of ``as_of`` (now when None)."""
    last = engine.store.last_refreshes([name]).get(name)
    first = engine.store.first_refresh(name)
    if last is not None and (as_of is None or as_of >= first):
        members = engine.current_members(name, as_of)
        return Segment(name, members.select("contact_id"), as_of or last,
                       "saved")
    when = as_of or to_utc(None)
    members = engine.members(engine.segments.check(name, ()), when)
    return Segment(name, members.select("contact_id"), when, "saved_evaluated")


def _rfm_segment(ws, text: str, as_of: _dt.datetime | None, saved: list[str]) -> Segment:
    """An RFM cell or named RFM segment from the latest snapshot at or before ``as_of``."""
    rfm = ws.table("rfm")
    snap = rfm
    if as_of is not None:
        snap = rfm.filter(rfm.as_of <= _rfm_literal(rfm, as_of))
    latest = snap.as_of.max().execute()
    if latest is None or pd.isna(latest):
        when = f" at or before {as_of.isoformat()}" if as_of is not None else ""
        raise WorkspaceError(f"No RFM snapshot{when}: run `segmentum rfm` first.")
    snap = rfm.filter(rfm.as_of == latest)
    if RFM_CELL.match(text):
        cell = text.upper()
        members = snap.filter(snap.cell == cell)
        name = cell
    else:
        names = sorted(
            n for n in snap.select("name").distinct().to_pandas()["name"].dropna().astype(str)
        )
        by_lower = {n.lower(): n for n in names}
        if text.lower() not in by_lower:
            raise UsageError(
                f"No saved segment, RFM segment or cell {text!r}."
                f"{did_you_mean(text, [*saved, *names])} Saved segments: "
                f"{', '.join(saved) or '(none)'}; RFM cells look like R1F3M3; RFM names are: "
                f"{', '.join(names) or '(none)'}."
            )
        name = by_lower[text.lower()]
        members = snap.filter(snap.name == name)
    return Segment(name, members.select("contact_id").distinct(), _to_utc(latest))


def recent_orders(
    ws,
    as_of: _dt.datetime,
    *,
    last_orders: int | None = None,
    window_days: int | None = None,
) -> ir.Table:
    """Every contact's recent completed orders (order_id, contact_id, ordered_at)."""
    if last_orders is not None and window_days is not None:
        raise UsageError("Give either last_orders or window_days, not both.")
    if last_orders is None and window_days is None:
        last_orders = DEFAULT_LAST_ORDERS
    orders = ws.table("orders")
    lit = ibis.literal(as_of)
    o = orders.filter(_completed(orders), orders.ordered_at < lit)
    if window_days is not None:
        if window_days < 1:
            raise UsageError(f"The window must be at least 1 day. Got {window_days} instead.")
        o = o.filter(o.ordered_at >= ibis.literal(as_of - _dt.timedelta(days=window_days)))
    else:
        if last_orders < 1:
            raise UsageError(f"last_orders must be at least 1. Got {last_orders} instead.")
        rn = ibis.row_number().over(
            group_by=o.contact_id, order_by=[ibis.desc(o.ordered_at), ibis.desc(o.order_id)]
        )
        o = o.mutate(_rn=rn)
        o = o.filter(o._rn < last_orders)
    return o.select("order_id", "contact_id", "ordered_at")


def _exact(v) -> Decimal:
    """A sum from the warehouse as an exact Decimal (null -> 0)."""
    if v is None or pd.isna(v):
        return Decimal(0)
    if isinstance(v, Decimal):
        return v
    return Decimal(int(v)) if float(v).is_integer() else Decimal(repr(float(v)))


def _num(v) -> float:
    return float(_exact(v))


def drilldown(
    ws,
    segment,
    by: str = "category",
    *,
    last_orders: int | None = None,
    window_days: int | None = None,
    min_contacts: int = 5,
    min_share: float = 0.01,
    measure: str = "value",
    as_of: _dt.datetime | None = None,
) -> pd.DataFrame:
    """What the segment's recent purchases are made of, vs. the whole base, sorted by lift.

    ``segment``: an RFM cell or name, an Ibis table of ``contact_id``, or a :class:`Segment`.
    ``as_of`` defaults to the RFM snapshot's ``as_of`` for an RFM segment, else now.
    Returns columns ``key, segment_share, base_share, lift, segment_contacts,
    segment_contact_share, segment_value, segment_quantity, base_contacts, base_value,
    base_quantity``; ``df.attrs`` holds the settings and the segment's counts.
    """
    if by not in BY:
        raise UsageError(
            f"Cannot drill down by {by!r}.{did_you_mean(by, BY)} Use one of: {', '.join(BY)}."
        )
    if measure not in MEASURES:
        raise UsageError(
            f"Unknown measure {measure!r}.{did_you_mean(measure, MEASURES)} "
            f"Use one of: {', '.join(MEASURES)}."
        )
    if min_contacts < 0 or not 0 <= min_share <= 1:
        raise UsageError("min_contacts must be >= 0 and min_share between 0 and 1.")
    requested = None if as_of is None else to_utc(as_of)
    seg = resolve_segment(ws, segment, requested)
    as_of = requested or seg.as_of or to_utc(None)
    if last_orders is None and window_days is None:
        last_orders = DEFAULT_LAST_ORDERS
    recent = recent_orders(ws, as_of, last_orders=last_orders, window_days=window_days)

    items = ws.table("order_items")
    lines = recent.join(items.select("order_id", "sku", "quantity", "unit_price"), "order_id")
    if by == "sku":
        lines = lines.mutate(key=lines.sku)
    else:
        products = ws.table("products")
        prod = products.select(_psku=products.sku, _key=products[by].cast("string"))
        lines = lines.left_join(prod, lines.sku == prod._psku)
        lines = lines.mutate(key=lines._key)
    members = seg.members.select(_mid="contact_id").distinct().mutate(_in=ibis.literal(True))
    lines = lines.left_join(members, lines.contact_id == members._mid)
    lines = lines.select(
        key=lines.key.fill_null(UNKNOWN_KEY),
        contact_id=lines.contact_id,
        quantity=lines.quantity,
        value=lines.quantity * lines.unit_price,
        member=lines._in.fill_null(False),
    )
    # the recent lines are read twice (per key, then distinct buyers overall): ranking every
    # contact's orders is most of the work (2 s of 2.5 s at 1M contacts), so it runs once
    wh, temp = ws.warehouse, f"_drilldown_{uuid.uuid4().hex[:12]}"
    lines = wh.temp_table(temp, lines)
    try:
        per_key = (
            lines.group_by("key")
            .agg(
                segment_value=lines.value.sum(where=lines.member),
                segment_quantity=lines.quantity.sum(where=lines.member),
                segment_contacts=lines.contact_id.nunique(where=lines.member),
                base_value=lines.value.sum(),
                base_quantity=lines.quantity.sum(),
                base_contacts=lines.contact_id.nunique(),
            )
            .to_pandas()
        )
        counts = lines.aggregate(
            segment_buyers=lines.contact_id.nunique(where=lines.member),
            base_buyers=lines.contact_id.nunique(),
        ).to_pandas()
    finally:
        wh.drop_temp(temp)
    n_members = int(seg.members.count().execute())
    segment_buyers = int(counts["segment_buyers"].iloc[0] or 0) if len(counts) else 0
    base_buyers = int(counts["base_buyers"].iloc[0] or 0) if len(counts) else 0

    df = per_key
    # totals from the exact (decimal) sums, so equal shares stay exactly equal
    seg_col, base_col = f"segment_{measure}", f"base_{measure}"
    seg_total = float(sum((_exact(v) for v in df[seg_col]), Decimal(0)))
    base_total = float(sum((_exact(v) for v in df[base_col]), Decimal(0)))
    for c in ("segment_value", "base_value"):
        df[c] = df[c].map(_num).astype("float64")
    for c in ("segment_quantity", "base_quantity", "segment_contacts", "base_contacts"):
        df[c] = df[c].map(_num).astype("int64")
    df["segment_share"] = df[seg_col] / seg_total if seg_total else float("nan")
    df["base_share"] = df[base_col] / base_total if base_total else float("nan")
    df["lift"] = df["segment_share"] / df["base_share"].where(df["base_share"] > 0)
    df["segment_contact_share"] = (
        df["segment_contacts"] / segment_buyers if segment_buyers else float("nan")
    )
    supported = (df["segment_contacts"] >= min_contacts) & (
        df["segment_contacts"] >= min_share * segment_buyers
    )
    if segment_buyers == 0:
        supported &= False
    hidden = int((~supported & (df["segment_contacts"] > 0)).sum())
    df = df[supported].sort_values(
        ["lift", "segment_share", "key"], ascending=[False, False, True], kind="stable"
    )
    df = df[COLUMNS].reset_index(drop=True)
    df["key"] = df["key"].astype(str)
    recent_text = (
        f"last {window_days} days" if window_days is not None
        else f"last {last_orders} order{'s' if last_orders != 1 else ''}"
    )
    df.attrs.update(
        {
            "segment": seg.name,
            "by": by,
            "measure": measure,
            "recent": recent_text,
            "last_orders": last_orders if window_days is None else None,
            "window_days": window_days,
            "as_of": as_of,
            "rfm_as_of": seg.as_of if seg.source == "rfm" else None,
            "segment_source": seg.source,
            "segment_as_of": seg.as_of,
            "segment_members": n_members,
            "segment_buyers": segment_buyers,
            "base_buyers": base_buyers,
            "min_contacts": min_contacts,
            "min_share": min_share,
            "hidden_keys": hidden,
        }
    )
    return df
