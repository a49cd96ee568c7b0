"""The per-contact purchase totals loads keep: RFM from them equals RFM from the orders, and
they are only used while they describe the tables, for a date after the latest purchase."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from segmentum.analytics.rfm import RFM, compute_rfm
from segmentum.data.order_totals import (
    STATE_TABLE,
    TOTALS_TABLE,
    current_order_totals,
    refresh_order_totals,
)
from tests.workspaces import LOADED_AT, canonical_frame

UTC = dt.UTC
AS_OF = dt.datetime(2024, 7, 1, tzinfo=UTC)


def _data(seed: int = 3, n: int = 120):
    """Ties, a skewed order count, returns and cancellations, contacts without orders, one
    created after the as-of date, one with no created_at, buyers without a contact row (one
    of them only ever returned)."""
    rng = np.random.default_rng(seed)
    contacts = [{"contact_id": f"c{i:03d}", "created_at": "2022-01-01"} for i in range(n)]
    contacts[0]["created_at"] = "2024-08-01"  # a contact only after AS_OF, who bought before
    contacts[1]["created_at"] = "2024-08-01"  # ... and one who never bought
    contacts[2]["created_at"] = None
    orders = []
    for i in [*range(n - 10), 0]:
        for k in range(int(rng.choice([1, 1, 1, 2, 2, 3, 6]))):
            orders.append(
                {
                    "order_id": f"o{i}_{k}_{len(orders)}",
                    "contact_id": f"c{i:03d}" if i != 1 else "c000",
                    "ordered_at": AS_OF - dt.timedelta(days=int(rng.choice([1, 9, 9, 50, 300])),
                                                       minutes=int(rng.integers(1, 600))),
                    "total": float(rng.choice([5, 19.99, 19.99, 120, 0.01])),
                    "status": str(rng.choice(["completed"] * 6 + ["returned", "cancelled", None])),
                }
            )
    orders += [
        {"order_id": "ghost1", "contact_id": "ghost", "ordered_at": "2024-05-01T10:00:00Z",
         "total": 40.0, "status": "completed"},
        {"order_id": "ghost2", "contact_id": "ghost_returned", "ordered_at": "2024-05-01T10:00:00Z",
         "total": 40.0, "status": "returned"},
    ]
    return contacts, orders


def _frame(t) -> pd.DataFrame:
    return t.to_pandas().sort_values("contact_id").reset_index(drop=True)


@pytest.mark.parametrize(("levels", "monetary"), [(3, "sum"), (5, "mean")])
def test_rfm_from_the_totals_equals_rfm_from_the_orders(make_ws, levels, monetary):
    contacts, orders = _data()
    ws = make_ws(contacts=contacts, orders=orders)
    assert current_order_totals(ws.warehouse, AS_OF) is None  # not built: rows written directly
    refresh_order_totals(ws.warehouse)
    assert current_order_totals(ws.warehouse, AS_OF) is not None

    fast = RFM(levels=levels, monetary=monetary).fit(ws, as_of=AS_OF)
    assert fast.metrics_source_ == "order totals"
    # an orders table (with its contacts) never reads the totals: the reference
    slow = RFM(levels=levels, monetary=monetary).fit(
        ws.table("orders"), as_of=AS_OF, contacts=ws.table("contacts")
    )
    assert slow.metrics_source_ == "orders"
    assert fast.edges_ == slow.edges_ and fast.n_contacts_ == slow.n_contacts_
    got, ref = _frame(fast.transform()), _frame(slow.transform())
    pd.testing.assert_frame_equal(got, ref)
    ids = set(got.contact_id)
    assert {"c000", "c002", "ghost"} <= ids  # bought / no created_at / buyer without a row
    assert not {"c001", "ghost_returned"} & ids  # not yet a contact / never bought
    pd.testing.assert_frame_equal(fast.bins_, slow.bins_)


def test_totals_are_used_only_when_current_and_after_the_latest_purchase(make_ws):
    contacts, orders = _data()
    ws = make_ws(contacts=contacts, orders=orders)
    refresh_order_totals(ws.warehouse)
    wh = ws.warehouse
    last = max(pd.Timestamp(o["ordered_at"]) for o in orders if o["status"] in ("completed", None))
    # a date before the latest purchase leaves purchases out: the orders are grouped
    assert current_order_totals(wh, last.to_pydatetime()) is None
    just_after = (last + pd.Timedelta(microseconds=1)).to_pydatetime()
    assert current_order_totals(wh, just_after) is not None
    assert RFM().fit(ws, as_of=last.to_pydatetime()).metrics_source_ == "orders"

    # an order written after the totals (its own load stamp) makes them stale ...
    before = compute_rfm(ws, as_of=AS_OF)
    late = canonical_frame(
        "orders",
        [{"order_id": "new", "contact_id": "c005", "ordered_at": "2024-06-30T12:00:00Z",
          "total": 1000.0, "status": "completed"}],
    )
    late["_loaded_at"] = LOADED_AT + pd.Timedelta(days=1)
    wh.insert("orders", late)
    assert current_order_totals(wh, AS_OF) is None
    res = compute_rfm(ws, as_of=AS_OF)
    assert res.model.metrics_source_ == "orders"
    row = ws.table("rfm").filter(ws.table("rfm").contact_id == "c005").to_pandas().iloc[0]
    assert row.recency_days == 1 and row.revenue >= 1000
    assert res.contacts_with_orders == before.contacts_with_orders
    # ... until they are rebuilt, and then they give the same table
    expected = _frame(ws.table("rfm"))
    refresh_order_totals(wh)
    again = compute_rfm(ws, as_of=AS_OF)
    assert again.model.metrics_source_ == "order totals"
    pd.testing.assert_frame_equal(_frame(ws.table("rfm")), expected)
    # a contact removed outside a load changes the row count: stale again
    wh.raw.execute("DELETE FROM contacts WHERE contact_id = 'c007'")
    assert current_order_totals(wh, AS_OF) is None


def test_loads_keep_the_totals(ws, tmp_path):
    (tmp_path / "contacts.csv").write_text(
        "contact_id,created_at\na,2024-01-01\nb,2024-01-01\nc,2024-01-01\n"
    )
    (tmp_path / "orders.csv").write_text(
        "order_id,contact_id,ordered_at,total,status\n"
        "1,a,2024-05-01T10:00:00Z,10.00,completed\n"
        "2,a,2024-06-01T10:00:00Z,15.50,\n"
        "3,b,2024-06-10T10:00:00Z,99.99,completed\n"
        "4,b,2024-06-20T10:00:00Z,5.00,returned\n"
    )
    ws.load("contacts", tmp_path / "contacts.csv")
    assert ws.warehouse.has_table(TOTALS_TABLE)  # no orders yet: every contact with 0
    ws.load("orders", tmp_path / "orders.csv")
    totals = _frame(ws.table(TOTALS_TABLE)).set_index("contact_id")
    assert totals.orders.to_dict() == {"a": 2, "b": 1, "c": 0}
    assert totals.revenue_cents.tolist() == [2550, 9999, 0]
    state = ws.table(STATE_TABLE).to_pandas().iloc[0]
    assert state.orders_rows == 4 and state.last_purchase_at == pd.Timestamp(
        "2024-06-10T10:00:00Z"
    )
    res = compute_rfm(ws, as_of=AS_OF)
    assert res.model.metrics_source_ == res.to_dict()["metrics_from"] == "order totals"

    # order 3 is returned after all: the load rebuilds the totals with its status
    (tmp_path / "orders2.csv").write_text(
        "order_id,contact_id,ordered_at,total,status\n3,b,2024-06-10T10:00:00Z,99.99,returned\n"
    )
    ws.load("orders", tmp_path / "orders2.csv")
    res = compute_rfm(ws, as_of=AS_OF)
    assert res.model.metrics_source_ == "order totals"
    rfm = _frame(ws.table("rfm")).set_index("contact_id")
    assert rfm.loc["b", "frequency"] == 0 and rfm.loc["b", "name"] == "No orders"
    assert rfm.loc["a", "frequency"] == 2 and rfm.loc["a", "revenue"] == 25.5
