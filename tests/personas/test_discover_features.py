"""Persona discovery features, computed in the warehouse, against plain pandas on the same rows.

The hand-made shop has the edge cases: an order exactly at the as-of time and a returned one
(neither counts), an order with no channel and a line of an unknown product (counts as online
and as "other categories"), an order without lines, a contact with no orders, one created
after the as-of time (left out) and one created after it that ordered before it (kept, like
RFM), a contact with no created_at (tenure from the first order), events exactly on the window
borders and at the as-of time.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from segmentum.errors import WorkspaceError
from segmentum.personas.features import CATEGORY_OTHER, persona_features

T = pd.Timestamp("2024-06-30T12:00:00Z")
AS_OF = T.to_pydatetime()
D = pd.Timedelta(days=1)
S = pd.Timedelta(seconds=1)


def iso(ts: pd.Timestamp) -> str:
    return ts.isoformat()


def shop_rows() -> dict[str, list[dict]]:
    contacts = [
        {"contact_id": "A", "created_at": "2023-01-01T00:00:00Z"},
        {"contact_id": "B", "created_at": "2022-05-05T08:00:00Z"},
        {"contact_id": "C", "created_at": "2024-01-10T00:00:00Z"},
        {"contact_id": "D", "created_at": "2024-07-15T00:00:00Z"},  # after T, no orders
        {"contact_id": "E", "created_at": None},
        {"contact_id": "F", "created_at": "2023-06-01T00:00:00Z"},
        {"contact_id": "G", "created_at": "2024-07-01T00:00:00Z"},  # after T, ordered before
    ]
    products = [
        {"sku": "H1", "category": "Home & Garden", "price": 30},
        {"sku": "H2", "category": "Home & Garden", "price": 12},
        {"sku": "F1", "category": "Fashion", "price": 40},
        {"sku": "P1", "category": "Car care", "price": 40},
    ]
    orders = [
        # A: one order in the last 90 days, one in the 90 before, a returned one, one at T
        {
            "order_id": "o1",
            "contact_id": "A",
            "ordered_at": iso(T - 29 * D),
            "total": 100,
            "channel": "online",
            "status": "completed",
        },
        {
            "order_id": "o2",
            "contact_id": "A",
            "ordered_at": iso(T - 90 * D - S),
            "total": 50,
            "channel": "offline",
            "status": "completed",
        },
        {
            "order_id": "o3",
            "contact_id": "A",
            "ordered_at": iso(T - 60 * D),
            "total": 999,
            "channel": "offline",
            "status": "returned",
        },
        {
            "order_id": "o4",
            "contact_id": "A",
            "ordered_at": iso(T),
            "total": 70,
            "channel": "offline",
            "status": "completed",
        },
        # B: no channel, an unknown product; a cancelled order
        {
            "order_id": "o5",
            "contact_id": "B",
            "ordered_at": "2023-12-01T10:00:00Z",
            "total": 20,
            "channel": None,
            "status": "completed",
        },
        {
            "order_id": "o6",
            "contact_id": "B",
            "ordered_at": iso(T - 10 * D),
            "total": 20,
            "channel": "online",
            "status": "cancelled",
        },
        # E: no created_at; F: an order without lines; G: created after T
        {
            "order_id": "o7",
            "contact_id": "E",
            "ordered_at": "2024-02-10T00:00:00Z",
            "total": 80,
            "channel": "offline",
            "status": None,
        },
        {
            "order_id": "o8",
            "contact_id": "F",
            "ordered_at": iso(T - 20 * D),
            "total": 15,
            "channel": "online",
            "status": "completed",
        },
        {
            "order_id": "o9",
            "contact_id": "G",
            "ordered_at": iso(T - 5 * D),
            "total": 12,
            "channel": "offline",
            "status": "completed",
        },
    ]
    items = [
        {"order_id": "o1", "sku": "H1", "quantity": 2, "unit_price": 30},
        {"order_id": "o1", "sku": "F1", "quantity": 1, "unit_price": 40},
        {"order_id": "o2", "sku": "H1", "quantity": 1, "unit_price": 50},
        {"order_id": "o3", "sku": "P1", "quantity": 9, "unit_price": 111},
        {"order_id": "o4", "sku": "P1", "quantity": 1, "unit_price": 70},
        {"order_id": "o5", "sku": "X9", "quantity": 1, "unit_price": 20},
        {"order_id": "o7", "sku": "P1", "quantity": 2, "unit_price": 40},
        {"order_id": "o9", "sku": "H2", "quantity": 1, "unit_price": 12},
    ]
    ev = []

    def add(cid, type_, when):
        ev.append(
            {"event_id": f"e{len(ev)}", "contact_id": cid, "type": type_, "occurred_at": iso(when)}
        )

    for k in range(4):
        add("A", "email_send", T - (10 + 30 * k) * D)
    add("A", "email_open", T - 365 * D)  # on the 365-day border: in
    add("A", "email_open", T - 365 * D - S)  # just outside
    add("A", "email_open", T - 9 * D)
    add("A", "email_open", T)  # at the as-of time: out
    add("A", "email_click", T - 9 * D)
    add("A", "product_view", T - 90 * D)  # on the 90-day border: in
    add("A", "product_view", T - 90 * D - S)  # just outside
    add("A", "search", T - 3 * D)
    add("A", "app_session", T - 2 * D)
    add("A", "category_view", T - 200 * D)  # too old for the 90-day window
    add("A", "page_view", T - 2 * D)  # not a feature
    add("C", "email_send", T - 40 * D)
    add("C", "email_send", T - 20 * D)
    add("C", "product_view", T - 1 * D)
    add("C", "product_view", T + 1 * D)  # after T
    add("D", "product_view", T - 1 * D)  # D is not a contact yet
    add("G", "category_view", T - 4 * D)
    return {
        "contacts": contacts,
        "products": products,
        "orders": orders,
        "order_items": items,
        "events": ev,
    }


def expected_features(rows: dict[str, list[dict]]) -> tuple[list[str], pd.DataFrame]:
    """The definitions of segmentum.personas.features, in plain pandas."""
    c = pd.DataFrame(rows["contacts"])
    c["created_at"] = pd.to_datetime(c["created_at"], utc=True)
    o = pd.DataFrame(rows["orders"])
    o["ordered_at"] = pd.to_datetime(o["ordered_at"], utc=True)
    o = o[(o.ordered_at < T) & (o.status.isna() | (o.status == "completed"))]
    it = pd.DataFrame(rows["order_items"]).merge(o[["order_id", "contact_id"]], on="order_id")
    it = it.merge(pd.DataFrame(rows["products"])[["sku", "category"]], on="sku", how="left")
    it["value"] = it.quantity * it.unit_price
    by_cat = it.dropna(subset=["category"]).groupby("category")["value"].sum()
    cats = sorted(by_cat.index, key=lambda k: (-by_cat[k], k))
    e = pd.DataFrame(rows["events"])
    e["occurred_at"] = pd.to_datetime(e["occurred_at"], utc=True)
    e = e[e.occurred_at < T]

    people = set(c[c.created_at.isna() | (c.created_at < T)].contact_id) | set(o.contact_id)
    out = []
    for cid in sorted(people):
        mine = o[o.contact_id == cid]
        lines = it[it.contact_id == cid]
        ev = e[e.contact_id == cid]
        row = {"contact_id": cid, "has_orders": len(mine) > 0}
        if len(mine):
            n = len(mine)
            money = float(mine.total.sum())
            last = mine.ordered_at.max()
            row.update(
                recency_days=float((T.normalize() - last.normalize()).days),
                frequency=float(n),
                monetary=money,
                avg_basket=money / n,
                offline_share=float((mine.channel == "offline").sum()) / n,
            )
            a = (mine.ordered_at >= T - 90 * D).sum()
            b = ((mine.ordered_at >= T - 180 * D) & (mine.ordered_at < T - 90 * D)).sum()
            row["trend"] = float((a - b) / (a + b)) if a + b else 0.0
            total = float(lines.value.sum())
            for i, cat in enumerate(cats):
                v = float(lines[lines.category == cat].value.sum())
                row[f"cat_{i:02d}"] = v / total if total else 0.0
            known = sum(row[f"cat_{i:02d}"] for i in range(len(cats)))
            row[CATEGORY_OTHER] = (1.0 - known) if total else 0.0
        else:
            for col in (
                "recency_days",
                "frequency",
                "monetary",
                "avg_basket",
                "offline_share",
                "trend",
                *[f"cat_{i:02d}" for i in range(len(cats))],
                CATEGORY_OTHER,
            ):
                row[col] = np.nan
        year = ev[ev.occurred_at >= T - 365 * D]
        sends = int((year.type == "email_send").sum())
        opens = int((year.type == "email_open").sum())
        clicks = int((year.type == "email_click").sum())
        row.update(
            email_sends=sends,
            email_opens=opens,
            email_clicks=clicks,
            open_rate=opens / sends if sends else 0.0,
            click_rate=clicks / sends if sends else 0.0,
        )
        q = ev[ev.occurred_at >= T - 90 * D]
        for col, t in (
            ("product_views", "product_view"),
            ("category_views", "category_view"),
            ("searches", "search"),
            ("app_sessions", "app_session"),
        ):
            row[col] = float((q.type == t).sum())
        created = c.set_index("contact_id").created_at.get(cid)
        start = created if pd.notna(created) else (mine.ordered_at.min() if len(mine) else None)
        row["tenure_days"] = (
            0.0 if start is None else float(max((T.normalize() - start.normalize()).days, 0))
        )
        out.append(row)
    return cats, pd.DataFrame(out)


@pytest.fixture
def shop(make_ws):
    rows = shop_rows()
    return make_ws(**rows), rows


def test_features_match_an_independent_pandas_computation(shop):
    ws, rows = shop
    spec, table = persona_features(ws, AS_OF)
    got = table.order_by("contact_id").to_pandas()
    cats, want = expected_features(rows)
    assert list(spec.categories) == cats == ["Home & Garden", "Car care", "Fashion"]
    assert list(got.contact_id) == list(want.contact_id) == ["A", "B", "C", "E", "F", "G"]
    assert list(got.has_orders) == list(want.has_orders)
    for col in want.columns.drop(["contact_id", "has_orders"]):
        np.testing.assert_allclose(
            got[col].to_numpy(dtype=float),
            want[col].to_numpy(dtype=float),
            rtol=1e-9,
            atol=1e-9,
            err_msg=col,
        )
    # spot checks of the edge cases, in words
    a = got.set_index("contact_id").loc["A"]
    assert a.frequency == 2 and a.monetary == 150 and a.offline_share == 0.5 and a.trend == 0
    assert a.email_opens == 2 and a.product_views == 1 and a.category_views == 0
    b = got.set_index("contact_id").loc["B"]
    assert b.offline_share == 0 and b[CATEGORY_OTHER] == 1.0
    assert got.set_index("contact_id").loc["F", "cat_00"] == 0  # no lines: no shares
    assert got.set_index("contact_id").loc["G", "tenure_days"] == 0


def test_every_feature_column_is_described(shop):
    ws, _ = shop
    spec, table = persona_features(ws, AS_OF)
    described = {f.column for f in spec.features}
    counts = {"email_sends", "email_opens", "email_clicks"}
    assert set(table.columns) == {"contact_id", "has_orders"} | described | counts
    assert [spec.category_of(c) for c in spec.category_columns] == [*spec.categories, None]


def test_no_contacts_yet_is_a_clear_error(make_ws):
    ws = make_ws(contacts=shop_rows()["contacts"][:3])
    with pytest.raises(WorkspaceError, match="No contact exists before 2020-01-01"):
        persona_features(ws, dt.datetime(2020, 1, 1, tzinfo=dt.UTC))
