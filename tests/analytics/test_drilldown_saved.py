"""Drill-down of any saved segment: its recorded members, or its rule evaluated when it has
no refresh covering the time; the same figures as the drill-down of those contacts."""

from __future__ import annotations

import ibis
import pytest

from segmentum.analytics.drilldown import drilldown
from segmentum.errors import UsageError, WorkspaceError
from segmentum.segments import SegmentEngine

PRODUCTS = [{"sku": "B1", "name": "Formula", "category": "Baby", "brand": "X"},
            {"sku": "G1", "name": "Rake", "category": "Garden", "brand": "Y"}]


def _shop(make_ws):
    contacts = [{"contact_id": f"C{i}", "created_at": "2024-01-01T00:00:00Z"} for i in range(8)]
    orders, items = [], []
    for i in range(8):
        for j in range(2):
            oid = f"O{i}-{j}"
            orders.append({"order_id": oid, "contact_id": f"C{i}", "status": "completed",
                           "ordered_at": f"2024-0{2 + j}-1{i}T10:00:00Z", "total": 20.0})
            sku = "B1" if (i < 4 or j == 0) else "G1"
            items.append({"order_id": oid, "sku": sku, "quantity": 1, "unit_price": 20.0})
    return make_ws(contacts=contacts, products=PRODUCTS, orders=orders, order_items=items)


def _figures(df):
    return df[["key", "segment_share", "lift", "segment_contacts"]].to_dict(orient="records")


def test_a_saved_segment_is_drilled_down_without_rfm(make_ws):
    ws = _shop(make_ws)
    SegmentEngine(ws).create("garden", 'purchased(category = "Garden")')
    T = "2024-05-01"
    df = drilldown(ws, "garden", as_of=T, min_contacts=1)
    assert df.attrs["segment_source"] == "saved_evaluated" and df.attrs["segment_members"] == 4
    same = drilldown(ws, ibis.memtable({"contact_id": ["C4", "C5", "C6", "C7"]}), as_of=T,
                     min_contacts=1)
    assert _figures(df) == _figures(same)
    assert {r["key"]: r["segment_contacts"] for r in _figures(df)} == {"Garden": 4, "Baby": 4}


def test_a_refreshed_segment_uses_its_recorded_members(make_ws):
    ws = _shop(make_ws)
    eng = SegmentEngine(ws)
    eng.create("babies", 'purchased(category = "Baby", last 10 days)')
    SegmentEngine(ws).refresh(["babies"], "2024-03-20")  # C0..C3 bought baby food in March
    df = drilldown(ws, "babies", min_contacts=1)
    assert df.attrs["segment_source"] == "saved"
    assert df.attrs["segment_members"] == 4
    assert df.attrs["as_of"].isoformat().startswith("2024-03-20")
    # before the first refresh the rule is evaluated as of then: no one bought in the window
    early = drilldown(ws, "babies", as_of="2024-01-05", min_contacts=1)
    assert early.attrs["segment_source"] == "saved_evaluated"
    assert early.attrs["segment_members"] == 0


def test_an_unknown_name_suggests_saved_segments(make_ws):
    ws = _shop(make_ws)
    SegmentEngine(ws).create("garden", 'purchased(category = "Garden")')
    with pytest.raises(WorkspaceError, match='Did you mean "garden"'):
        drilldown(ws, "gardn")
    from segmentum.analytics.rfm import compute_rfm

    compute_rfm(ws, as_of="2024-05-01")
    with pytest.raises(UsageError, match='Did you mean "garden".*Saved segments: garden'):
        drilldown(ws, "gardn")
    assert drilldown(ws, "R1F1M1", min_contacts=1).attrs["segment_source"] == "rfm"
