"""The contact card: what is known about one contact as of a time, from small per-contact queries.

    >>> card = contact_card(ws, "C0000042", as_of="2026-11-01", events=20, orders=5)
    >>> card.rfm["cell"], card.segments_now, card.timeline[:3]
    >>> card.to_dict()        # what ``segmentum contact ID --json`` prints

The contact is named by ``contact_id`` or by e-mail address (case-insensitive; an address
shared by several contacts is an error listing them). An unknown one is a NotFoundError
(HTTP 404) with the closest ids or addresses (edit distance, computed in the warehouse).

Every query filters on the contact in the warehouse (and on time <= as_of T); nothing
reads a whole table. The card holds:

* **profile** - the canonical contact columns; **consents** - ``email_opt_in``,
  ``sms_opt_in``, ``push_opt_in`` and every other ``*_opt_in`` column (null = unknown, which
  counts as no; text custom attributes such as "yes" / "nie" are read as booleans);
  **attributes** - every other extra column of ``contacts`` (custom attributes).
* **rfm** / **clv** - the contact's row of table ``rfm`` / ``clv`` with the latest
  ``as_of`` at or before T, or a note saying why there is none (not computed: run
  ``segmentum rfm`` / ``segmentum clv``; computed only after T; the contact has no row).
* **segments_now** / **segments_past** - from the saved segments' membership intervals
  (table ``segment_memberships``, see :mod:`segmentum.segments.store`): a stay
  [entered_at, exited_at) is current at T if it began at or before T and has not ended by
  T; past if it ended at or before T. They are as recorded by refreshes, so each current
  segment carries ``last_refresh``, the as-of time of its last refresh at or before T.
* **personas** - the templates (table ``persona_segments``: segment, template) whose
  segments the contact is in now, and the discovered persona (table ``personas``:
  contact_id, cluster, persona; the latest ``as_of`` <= T if it has that column). Either
  table may be absent: the card says so.
* **deals** - each of the contact's deals at its latest row up to T (ties by stage name,
  as in the segment language), with the time the current stage was entered and whether it
  is open, won or lost; ``current`` marks the most recently updated one, the deal that the
  rule ``deal.stage`` looks at.
* **orders** - the last K orders up to T (any status; ties by order_id) with their items
  (sku, product name, category, quantity, unit price); **order_summary** - all orders up
  to T: count, purchases (completed), revenue of purchases, first and last order.
* **timeline** - the N most recent activities up to T across events, orders and deal
  stage changes, newest first (ties: source, then id), each with time, source, type and a
  short description made from its properties.
"""

from __future__ import annotations

import dataclasses as dc
import datetime as _dt
import json
import math
from decimal import Decimal
from typing import Any

import ibis
import ibis.expr.types as ir
import pandas as pd

from segmentum.analytics.funnel import terminal_kind
from segmentum.data.schema import (
    EVENT_PROPERTY_COLUMNS,
    LINEAGE_COLUMNS,
    TABLES,
    TS,
    is_purchase,
)
from segmentum.errors import NotFoundError, UsageError
from segmentum.segments.engine import to_utc

__all__ = [
    "ContactCard",
    "contact_card",
    "find_contact",
    "read_consent",
    "describe_event",
    "describe_order",
    "deal_states",
    "build_timeline",
]

CONSENTS = ("email_opt_in", "sms_opt_in", "push_opt_in")
MEMBERSHIPS = "segment_memberships"  # the tables of segmentum.segments.store
REFRESHES = "segment_refreshes"
PERSONA_SEGMENTS = "persona_segments"
PERSONAS = "personas"
DEFAULT_EVENTS = 20
DEFAULT_ORDERS = 5
_TRUE = {"true", "t", "yes", "y", "1", "on", "tak", "da", "да", "ja", "oui", "si", "sí"}
_FALSE = {"false", "f", "no", "n", "0", "off", "nie", "net", "нет", "nein", "non"}
_DESCRIPTION_MAX = 100
_SOURCE_ORDER = {"event": 0, "order": 1, "deal": 2}


# -- the card --------------------------------------------------------------------------------
@dc.dataclass
class ContactCard:
    """One contact as of a time (see the module docstring)."""

    contact_id: str
    as_of: _dt.datetime
    matched_by: str  # "contact_id" or "email"
    profile: dict
    consents: dict
    attributes: dict
    record: dict
    rfm: dict | None
    clv: dict | None
    segments_now: list[dict]
    segments_past: list[dict]
    personas: dict
    deals: list[dict]
    orders: list[dict]
    order_summary: dict
    timeline: list[dict]
    notes: dict[str, str] = dc.field(default_factory=dict)

    def to_dict(self) -> dict:
        return dc.asdict(self)


# -- pure helpers ----------------------------------------------------------------------------
def _plain(value: Any) -> Any:
    """Python values for one cell: None for nulls, float for Decimal, datetime for Timestamp."""
    if value is None or value is pd.NaT or value is pd.NA:
        return None
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, pd.Timestamp):
        return value.to_pydatetime()
    if hasattr(value, "item") and not isinstance(value, str | bytes):
        try:
            return value.item()
        except (ValueError, AttributeError):
            return value
    return value


def _records(df: pd.DataFrame) -> list[dict]:
    return [{k: _plain(v) for k, v in r.items()} for r in df.to_dict(orient="records")]


def read_consent(value: Any) -> bool | None:
    """A consent as True / False / None (unknown): booleans as they are, text in common
    spellings (yes / no / 1 / 0 / tak / nie ...); anything else is unknown."""
    value = _plain(value)
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return bool(value)
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    return None


def _properties(raw: Any) -> dict:
    if raw is None:
        return {}
    if isinstance(raw, dict):
        return raw
    try:
        obj = json.loads(raw)
    except (TypeError, ValueError):
        return {}
    return obj if isinstance(obj, dict) else {}


def _short(text: str) -> str:
    return text if len(text) <= _DESCRIPTION_MAX else text[: _DESCRIPTION_MAX - 1] + "…"


def describe_event(row: dict) -> str:
    """A short description of an event from its properties: the promoted columns first
    (query in quotes, device as "on iOS"), then the other properties as key=value."""
    parts: list[str] = []
    if row.get("query"):
        parts.append(f'"{row["query"]}"')
    for col in ("campaign_id", "category", "brand", "sku", "url"):
        if row.get(col):
            parts.append(f"{col}={row[col]}")
    for key, value in sorted(_properties(row.get("properties")).items()):
        if value is not None and value != "":
            parts.append(f"{key}={value}")
    if row.get("device_os"):
        parts.append(f"on {row['device_os']}")
    if row.get("source"):
        parts.append(f"via {row['source']}")
    return _short(", ".join(parts))


def describe_order(row: dict) -> str:
    """E.g. "O17: 120.50 EUR, online, store S1"."""
    total = row.get("total")
    money = "" if total is None else f"{float(total):,.2f}"
    if row.get("currency"):
        money += f" {row['currency']}"
    parts = [f"{row['order_id']}: {money.strip()}" if money else str(row["order_id"])]
    if row.get("channel"):
        parts.append(str(row["channel"]))
    if row.get("store_id"):
        parts.append(f"store {row['store_id']}")
    return _short(", ".join(parts))


def deal_states(rows: pd.DataFrame) -> list[dict]:
    """Each deal of one contact at its latest row (ties by stage name, the greater last, as
    ``deal.stage`` does), newest first; ``current`` is the deal ``deal.stage`` looks at
    (latest update, then greatest deal_id)."""
    if rows.empty:
        return []
    d = rows.sort_values(["deal_id", "updated_at", "stage"], kind="mergesort")
    out = []
    for deal_id, g in d.groupby("deal_id", sort=True):
        stages = list(g["stage"])
        times = list(g["updated_at"])
        k = len(stages) - 1
        while k > 0 and stages[k - 1] == stages[-1]:
            k -= 1
        path: list[str] = []
        for s in stages:
            if not path or path[-1] != s:
                path.append(s)
        last = g.iloc[-1]
        kind = terminal_kind(str(last["stage"]))
        out.append({
            "deal_id": str(deal_id),
            "stage": str(last["stage"]),
            "status": "open" if kind == "open" else kind,
            "pipeline": _plain(last.get("pipeline")),
            "amount": _plain(last.get("amount")),
            "stage_since": _plain(times[k]),
            "updated_at": _plain(times[-1]),
            "opened_at": _plain(times[0]),
            "path": path,
            "current": False,
        })
    out.sort(key=lambda r: (r["updated_at"], r["deal_id"]), reverse=True)
    out[0]["current"] = True
    return out


def build_timeline(
    events: pd.DataFrame, orders: pd.DataFrame, deals: pd.DataFrame, n: int
) -> list[dict]:
    """The ``n`` most recent activities, newest first (ties: source, then id descending):
    each source's frame holds its newest rows (at least ``n`` of them if it has them)."""
    items: list[dict] = []
    for r in _records(events):
        items.append({"time": r["occurred_at"], "source": "event", "type": r["type"],
                      "id": r.get("event_id"), "description": describe_event(r)})
    for r in _records(orders):
        items.append({"time": r["ordered_at"], "source": "order",
                      "type": f"order {r.get('status') or 'completed'}",
                      "id": r["order_id"], "description": describe_order(r)})
    if not deals.empty:
        d = deals.sort_values(["deal_id", "updated_at", "stage"], kind="mergesort")
        prev: dict[str, str] = {}
        for r in _records(d):
            before = prev.get(r["deal_id"])
            move = f"{before} -> {r['stage']}" if before else f"opened at {r['stage']}"
            bits = [f"{r['deal_id']}: {move}"]
            if r.get("pipeline"):
                bits.append(str(r["pipeline"]))
            if r.get("amount") is not None:
                bits.append(f"{r['amount']:,.2f}")
            items.append({"time": r["updated_at"], "source": "deal", "type": "deal stage",
                          "id": r["deal_id"], "description": _short(", ".join(bits))})
            prev[r["deal_id"]] = r["stage"]
    # newest first; among equal times by source, then id (descending), so never arbitrary
    items.sort(key=lambda x: (str(x["id"] or "")), reverse=True)
    items.sort(key=lambda x: _SOURCE_ORDER[x["source"]])
    items.sort(key=lambda x: x["time"], reverse=True)
    return items[:n]


# -- queries ---------------------------------------------------------------------------------
def _lit(s: str) -> ir.Value:
    return ibis.literal(s, type="string")


def _le(col: ir.Value, T: _dt.datetime) -> ir.BooleanValue:
    """``col <= T`` for a timestamp or a date column."""
    if col.type().is_date():
        return col <= ibis.literal(T.date())
    return col <= ibis.literal(T, type=TS)


def _suggestions(c: ir.Table, key: str) -> list[str]:
    """Up to 5 contacts whose id or e-mail is close to ``key`` (in the warehouse)."""
    low = key.strip().lower()
    limit = max(2, len(low) // 4)
    cid = c.contact_id.lower()
    email = c.email.lower().fill_null("")
    dist = ibis.least(cid.levenshtein(_lit(low)), email.levenshtein(_lit(low)))
    near = c.filter((dist <= limit) | cid.startswith(_lit(low)))
    near = near.select("contact_id", "email", _d=dist).order_by(["_d", "contact_id"]).limit(5)
    out = []
    for r in near.to_pyarrow().to_pylist():
        out.append(f"{r['contact_id']} ({r['email']})" if r["email"] else r["contact_id"])
    return out


def find_contact(ws, key: str) -> tuple[dict, str]:
    """The contact's row (canonical + custom + lineage columns) by id or e-mail, and how it
    matched; a NotFoundError with the closest ids / addresses when there is none."""
    if not isinstance(key, str) or not key.strip():
        raise UsageError("Name a contact: its contact_id (e.g. C0000042) or its e-mail address.")
    key = key.strip()
    c = ws.table("contacts")
    rows = c.filter(c.contact_id == _lit(key)).limit(2).to_pandas()
    how = "contact_id"
    if rows.empty and "@" in key:
        rows = c.filter(c.email.lower() == _lit(key.lower())).order_by("contact_id").limit(11)
        rows = rows.to_pandas()
        how = "email"
        if len(rows) > 1:
            ids = ", ".join(rows["contact_id"].astype(str).head(10))
            raise UsageError(
                f"{len(rows) if len(rows) <= 10 else 'More than 10'} contacts have the e-mail "
                f"{key!r}: {ids}. Name one by its contact_id."
            )
    if rows.empty:
        near = _suggestions(c, key)
        what = "e-mail address" if "@" in key else "contact_id"
        hint = (f" Did you mean: {', '.join(near)}?" if near
                else " Give a contact_id from `segmentum segment preview` or an e-mail address.")
        raise NotFoundError(f"No contact with {what} {key!r} in this workspace.{hint}", field="contact_id")
    return _records(rows)[0], how


def _scores(ws, have: set[str], table: str, cid: str, T: _dt.datetime, command: str,
            notes: dict) -> dict | None:
    """The contact's row of a score table (``rfm`` / ``clv``): the latest as_of <= T."""
    if table not in have:
        notes[table] = f"not computed: run `segmentum {command}`"
        return None
    t = ws.table(table)
    mine = t.filter(t.contact_id == _lit(cid))
    if "as_of" in t.columns:
        mine = mine.filter(_le(mine.as_of, T)).order_by(ibis.desc("as_of"))
    rows = _records(mine.limit(1).to_pandas())
    if rows:
        return rows[0]
    if "as_of" in t.columns:
        snap = t.aggregate(before=t.as_of.max(where=_le(t.as_of, T)), first=t.as_of.min())
        s = _records(snap.to_pandas())[0]
        if s["before"] is None and s["first"] is not None:
            notes[table] = (f"not computed as of {T:%Y-%m-%d} (first computed as of "
                            f"{s['first']:%Y-%m-%d}): run `segmentum {command} --as-of "
                            f"{T:%Y-%m-%d}`")
            return None
        if s["first"] is None:
            notes[table] = f"not computed: run `segmentum {command}`"
            return None
    notes[table] = ("no row for this contact: no completed order before the as-of date"
                    if table == "clv" else "no row for this contact in the computed scores")
    return None


def _segments(ws, have: set[str], cid: str, T: _dt.datetime, notes: dict):
    """The saved segments the contact is in at T, and those it has left by T."""
    if MEMBERSHIPS not in have:
        notes["segments"] = "no saved segment has been refreshed yet"
        return [], []
    m = ws.table(MEMBERSHIPS)
    t = ibis.literal(T, type=TS)
    m = m.filter((m.contact_id == _lit(cid)) & (m.entered_at <= t))
    rows = _records(m.select("segment", "entered_at", "exited_at")
                    .order_by([ibis.desc("entered_at"), "segment"]).to_pandas())
    now = [r for r in rows if r["exited_at"] is None or r["exited_at"] > T]
    past = [r for r in rows if r["exited_at"] is not None and r["exited_at"] <= T]
    last: dict[str, Any] = {}
    if now and REFRESHES in have:
        r = ws.table(REFRESHES)
        r = r.filter(r.segment.isin([_lit(x["segment"]) for x in now]) & (r.as_of <= t))
        last = {x["segment"]: _plain(x["last"]) for x in
                _records(r.group_by("segment").agg(last=r.as_of.max()).to_pandas())}
    now = [{"segment": r["segment"], "entered_at": r["entered_at"],
            "last_refresh": last.get(r["segment"])} for r in now]
    past.sort(key=lambda r: (r["exited_at"], r["segment"]), reverse=True)
    if not rows:
        notes["segments"] = "in no saved segment up to the as-of date (as last refreshed)"
    return now, past


def _personas(ws, have: set[str], cid: str, T: _dt.datetime, current: list[str]) -> dict:
    """Persona templates of the current segments and the discovered persona, if computed."""
    out: dict[str, Any] = {"templates": [], "discovered": None, "notes": []}
    if PERSONA_SEGMENTS in have:
        p = ws.table(PERSONA_SEGMENTS)
        if {"segment", "template"} <= set(p.columns):
            if current:
                hit = p.filter(p.segment.isin([_lit(s) for s in current]))
                out["templates"] = _records(hit.order_by(["template", "segment"]).to_pandas())
        else:
            out["notes"].append(f"table {PERSONA_SEGMENTS} lacks the columns segment, template")
    else:
        out["notes"].append("no persona templates applied (`segmentum persona apply`)")
    if PERSONAS in have:
        p = ws.table(PERSONAS)
        if {"contact_id", "cluster", "persona"} <= set(p.columns):
            mine = p.filter(p.contact_id == _lit(cid))
            if "as_of" in p.columns:
                mine = mine.filter(_le(mine.as_of, T)).order_by(ibis.desc("as_of"))
            rows = _records(mine.limit(1).to_pandas())
            out["discovered"] = rows[0] if rows else None
            if not rows:
                out["notes"].append("not in the discovered personas (as of the as-of date)")
        else:
            out["notes"].append(f"table {PERSONAS} lacks the columns contact_id, cluster, persona")
    else:
        out["notes"].append("no discovered personas (`segmentum persona discover --save`)")
    return out


def _orders(ws, cid: str, T: _dt.datetime, k: int) -> tuple[list[dict], dict]:
    o = ws.table("orders")
    mine = o.filter((o.contact_id == _lit(cid)) & (o.ordered_at <= ibis.literal(T, type=TS)))
    purchase = is_purchase(mine.status)
    summary = _records(mine.aggregate(
        orders=mine.count(),
        purchases=purchase.sum(),
        revenue=mine.total.sum(where=purchase).cast("float64"),
        first_order=mine.ordered_at.min(),
        last_order=mine.ordered_at.max(),
        last_purchase=mine.ordered_at.max(where=purchase),
    ).to_pandas())[0]
    summary["purchases"] = int(summary["purchases"] or 0)
    cols = ["order_id", "ordered_at", "status", "channel", "store_id", "currency", "total"]
    last = _records(mine.select(*cols).order_by([ibis.desc("ordered_at"), ibis.desc("order_id")])
                    .limit(k).to_pandas()) if k > 0 else []
    if last:
        i, p = ws.table("order_items"), ws.table("products")
        ids = [_lit(r["order_id"]) for r in last]
        j = i.filter(i.order_id.isin(ids)).left_join(p, i.sku == p.sku)
        items = _records(j.select(
            i.order_id, i.sku, name=p.name, category=p.category, quantity=i.quantity,
            unit_price=i.unit_price.cast("float64"),
        ).order_by(["order_id", "sku"]).to_pandas())
        by_order: dict[str, list] = {}
        for it in items:
            by_order.setdefault(it.pop("order_id"), []).append(it)
        for r in last:
            r["items"] = by_order.get(r["order_id"], [])
    return last, summary


def _timeline_frames(ws, cid: str, T: _dt.datetime, n: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    t = ibis.literal(T, type=TS)
    e = ws.table("events")
    ev = e.filter((e.contact_id == _lit(cid)) & (e.occurred_at <= t))
    ev = ev.select("event_id", "type", "occurred_at", "source", *EVENT_PROPERTY_COLUMNS,
                   "properties")
    ev = ev.order_by([ibis.desc("occurred_at"), ibis.desc("event_id")]).limit(n)
    o = ws.table("orders")
    od = o.filter((o.contact_id == _lit(cid)) & (o.ordered_at <= t))
    od = od.select("order_id", "ordered_at", "status", "channel", "store_id", "currency",
                   total=od.total.cast("float64"))
    od = od.order_by([ibis.desc("ordered_at"), ibis.desc("order_id")]).limit(n)
    return ev.to_pandas(), od.to_pandas()


def contact_card(
    ws, contact: str, as_of: Any, *, events: int = DEFAULT_EVENTS, orders: int = DEFAULT_ORDERS
) -> ContactCard:
    """Assemble one contact's card as of ``as_of`` (None = now) from per-contact queries."""
    if events < 0 or orders < 0:
        raise UsageError("--events and --orders count rows: give 0 or more.")
    T = to_utc(as_of)
    row, how = find_contact(ws, contact)
    cid = str(row["contact_id"])
    spec = TABLES["contacts"]
    notes: dict[str, str] = {}
    consent_cols = [*CONSENTS, *sorted(c for c in row if c.endswith("_opt_in")
                                       and c not in CONSENTS)]
    profile = {c: row.get(c) for c in spec.names if c not in CONSENTS}
    for col in spec.columns:  # date columns come back as midnight timestamps
        if col.dtype.is_date() and isinstance(profile.get(col.name), _dt.datetime):
            profile[col.name] = profile[col.name].date()
    consents = {c: read_consent(row.get(c)) for c in consent_cols}
    attributes = {c: v for c, v in row.items()
                  if c not in spec.names and c not in LINEAGE_COLUMNS and c not in consent_cols}
    record = {c: row.get(c) for c in LINEAGE_COLUMNS}
    created = profile.get("created_at")
    if created is not None and created > T:
        notes["contact"] = (f"created {created:%Y-%m-%d %H:%M} UTC, after the as-of date: "
                            "the card shows nothing before it")

    have = set(ws.tables())
    rfm = _scores(ws, have, "rfm", cid, T, "rfm", notes)
    clv = _scores(ws, have, "clv", cid, T, "clv", notes)
    now, past = _segments(ws, have, cid, T, notes)
    personas = _personas(ws, have, cid, T, [s["segment"] for s in now])

    d = ws.table("deals")
    deal_rows = d.filter((d.contact_id == _lit(cid)) & (d.updated_at <= ibis.literal(T, type=TS)))
    deal_rows = deal_rows.select("deal_id", "stage", "updated_at", "pipeline",
                                 amount=deal_rows.amount.cast("float64")).to_pandas()
    deals = deal_states(deal_rows)
    last_orders, summary = _orders(ws, cid, T, orders)
    ev, od = _timeline_frames(ws, cid, T, events)
    timeline = build_timeline(ev, od, deal_rows, events)
    return ContactCard(
        contact_id=cid, as_of=T, matched_by=how, profile=profile, consents=consents,
        attributes=attributes, record=record, rfm=rfm, clv=clv, segments_now=now,
        segments_past=past, personas=personas, deals=deals, orders=last_orders,
        order_summary=summary, timeline=timeline, notes=notes,
    )
