"""Life stage: child-age estimates and band demand vs. assortment, against plain pandas.

Seed 000: children of lapsed baby-food buyers have grown up; the assortment for older
children is thin. Data include orders at identical instants, returned / cancelled orders,
orders after ``as_of``, products with one age bound only, unknown SKUs, contacts who never
bought an age-targeted product.
"""

from __future__ import annotations

import datetime as dt
import json

import numpy as np
import pandas as pd
import pytest
import typer
from typer.testing import CliRunner

from segmentum.analytics.lifestage import (
    AGE_BANDS,
    DAYS_PER_MONTH,
    LIFESTAGE_TABLE,
    age_band_of,
    lifestage,
)

AS_OF = dt.datetime(2024, 6, 1, tzinfo=dt.UTC)

PRODUCTS = [
    {"sku": "BF1", "category": "baby food", "target_age_min_months": 0,
     "target_age_max_months": 6, "in_stock": True},
    {"sku": "BF2", "category": "baby food", "target_age_min_months": 6,
     "target_age_max_months": 12, "in_stock": True},
    {"sku": "DI1", "category": "diapers", "target_age_min_months": 0,
     "target_age_max_months": 24, "in_stock": True},
    {"sku": "TO1", "category": "toys", "target_age_min_months": 36,
     "target_age_max_months": 72, "in_stock": True},
    {"sku": "CL1", "category": "clothes", "target_age_min_months": 72,
     "target_age_max_months": 120, "in_stock": False},
    {"sku": "BK1", "category": "books", "target_age_min_months": 144, "in_stock": True},
    {"sku": "BK2", "category": "books", "target_age_max_months": 30, "in_stock": None},
    {"sku": "TO2", "category": "toys", "in_stock": True},  # not age-targeted
]


def _random_data(seed: int = 5):
    rng = np.random.default_rng(seed)
    skus = [p["sku"] for p in PRODUCTS] + ["GHOST"]
    contacts, orders, items = [], [], []
    for i in range(50):
        cid = f"c{i:02d}"
        contacts.append({"contact_id": cid, "created_at": "2020-01-01"})
        t = pd.Timestamp("2019-06-01", tz="UTC") + pd.Timedelta(days=int(rng.integers(0, 1500)))
        for j in range(int(rng.integers(0, 6))):
            oid = f"{cid}-{j}"
            orders.append({"order_id": oid, "contact_id": cid, "ordered_at": t, "total": 1,
                           "status": str(rng.choice(["completed"] * 4 + ["returned",
                                                                          "cancelled"]))})
            for sku in rng.choice(skus, size=int(rng.integers(1, 4)), replace=False):
                items.append({"order_id": oid, "sku": str(sku), "quantity": 1,
                              "unit_price": 1})
            if rng.random() > 0.25:  # else a tie: the next order at the same instant
                t = t + pd.Timedelta(days=int(rng.integers(1, 400)))
    return contacts, orders, items


def reference(orders, items, as_of, min_demand_share=0.05, thin_ratio=0.7, products=PRODUCTS):
    """Per-contact estimates and the band table, in plain pandas."""
    orders, items, products = pd.DataFrame(orders), pd.DataFrame(items), pd.DataFrame(products)
    if "status" not in orders:
        orders["status"] = None
    as_of = pd.Timestamp(as_of)
    products["lo"] = products.target_age_min_months.fillna(products.target_age_max_months)
    products["hi"] = products.target_age_max_months.fillna(products.target_age_min_months)
    aged = products[products.lo.notna()].copy()
    aged["mid"] = (aged.lo + aged.hi) / 2
    o = orders[(orders.status.fillna("completed") == "completed") & (orders.ordered_at < as_of)]
    lines = o.merge(items, on="order_id").merge(aged[["sku", "mid"]], on="sku")
    est = {}
    for cid, grp in lines.groupby("contact_id"):
        last = grp.ordered_at.max()
        mid = grp[grp.ordered_at == last].mid.mean()
        months = (as_of - last).total_seconds() / 86400 / DAYS_PER_MONTH
        est[cid] = (mid + months, last)
    n = len(est)
    aged_stock = aged[aged.in_stock.fillna(False).astype(bool)]
    def overlaps(df, low, high):
        return df[(df.hi >= low) & ((df.lo < high) if high is not None else True)]

    slots = sum(len(overlaps(aged_stock, low, high)) for _, low, high in AGE_BANDS)
    rows = []
    for label, low, high in AGE_BANDS:
        demand = sum(
            1 for age, _ in est.values()
            if (age >= low or low == 0) and (high is None or age < high)
        )
        in_stock = len(overlaps(aged_stock, low, high))
        demand_share = demand / n if n else 0.0
        sku_share = in_stock / slots if slots else 0.0
        rows.append({"age_band": label, "contacts": demand, "demand_share": demand_share,
                     "skus_in_stock": in_stock, "sku_share": sku_share,
                     "skus_total": len(overlaps(aged, low, high)),
                     "thin": demand > 0 and demand_share >= min_demand_share
                     and sku_share < thin_ratio * demand_share})
    return est, pd.DataFrame(rows)


def check(res, ws, est, bands):
    got = ws.table(LIFESTAGE_TABLE).to_pandas().set_index("contact_id").sort_index()
    assert list(got.index) == sorted(est)
    for cid, (age, last) in est.items():
        assert got.loc[cid, "child_age_months"] == pytest.approx(age, abs=1e-6)
        assert got.loc[cid, "last_age_targeted_purchase_at"] == last
        assert got.loc[cid, "age_band"] == age_band_of(age)
        assert got.loc[cid, "as_of"] == pd.Timestamp(AS_OF)
    cols = ["age_band", "contacts", "skus_in_stock", "skus_total", "thin"]
    assert res.bands[cols].to_dict("records") == bands[cols].to_dict("records")
    np.testing.assert_allclose(res.bands.demand_share, bands.demand_share)
    np.testing.assert_allclose(res.bands.sku_share, bands.sku_share)


def test_random_data_matches_pandas(make_ws):
    contacts, orders, items = _random_data()
    ws = make_ws(contacts=contacts, products=PRODUCTS, orders=orders, order_items=items)
    res = lifestage(ws, AS_OF)
    est, bands = reference(orders, items, AS_OF)
    assert len(est) > 20
    check(res, ws, est, bands)
    assert res.n_contacts == len(est)
    # a stricter rule, an earlier as_of
    res = lifestage(ws, dt.datetime(2022, 1, 1, tzinfo=dt.UTC), min_demand_share=0.2,
                    thin_ratio=1.0)
    est, bands = reference(orders, items, dt.datetime(2022, 1, 1, tzinfo=dt.UTC), 0.2, 1.0)
    got = ws.table(LIFESTAGE_TABLE).to_pandas()
    assert sorted(got.contact_id) == sorted(est)  # the table was replaced
    cols = ["age_band", "contacts", "skus_in_stock", "thin"]
    assert res.bands[cols].to_dict("records") == bands[cols].to_dict("records")


def test_hand_checked_estimates(make_ws):
    ts = pd.Timestamp
    orders = [
        # a: baby food for 0-6 months, then for 6-12 months: the latest counts
        {"order_id": "a1", "contact_id": "a", "ordered_at": ts("2022-06-01", tz="UTC")},
        {"order_id": "a2", "contact_id": "a", "ordered_at": ts("2023-06-01", tz="UTC")},
        # b: one basket with 0-6 food and 0-24 diapers -> mean of 3 and 12
        {"order_id": "b1", "contact_id": "b", "ordered_at": ts("2024-05-01", tz="UTC")},
        # c: the later age-targeted order was returned, the later one is after as_of
        {"order_id": "c1", "contact_id": "c", "ordered_at": ts("2020-06-01", tz="UTC")},
        {"order_id": "c2", "contact_id": "c", "ordered_at": ts("2023-01-01", tz="UTC"),
         "status": "returned"},
        {"order_id": "c3", "contact_id": "c", "ordered_at": ts("2024-07-01", tz="UTC")},
        # d: two orders at the same latest instant -> both count
        {"order_id": "d1", "contact_id": "d", "ordered_at": ts("2024-01-01", tz="UTC")},
        {"order_id": "d2", "contact_id": "d", "ordered_at": ts("2024-01-01", tz="UTC")},
        # e: never buys anything age-targeted
        {"order_id": "e1", "contact_id": "e", "ordered_at": ts("2024-01-01", tz="UTC")},
    ]
    for o in orders:
        o["total"] = 1
    items = [
        ("a1", "BF1"), ("a2", "BF2"), ("b1", "BF1"), ("b1", "DI1"), ("b1", "TO2"),
        ("c1", "TO1"), ("c2", "BF1"), ("c3", "BF1"), ("d1", "TO1"), ("d2", "BF1"),
        ("e1", "TO2"), ("e1", "GHOST"),
    ]
    items = [{"order_id": o, "sku": s, "quantity": 2, "unit_price": 1} for o, s in items]
    contacts = [{"contact_id": c, "created_at": "2020-01-01"} for c in "abcdef"]
    ws = make_ws(contacts=contacts, products=PRODUCTS, orders=orders, order_items=items)
    res = lifestage(ws, AS_OF)
    got = ws.table(LIFESTAGE_TABLE).to_pandas().set_index("contact_id")
    assert sorted(got.index) == ["a", "b", "c", "d"]
    days = (AS_OF - dt.datetime(2023, 6, 1, tzinfo=dt.UTC)).days
    assert got.loc["a", "child_age_months"] == pytest.approx(9 + days / DAYS_PER_MONTH)
    assert got.loc["a", "age_band"] == "12-36"
    assert got.loc["b", "child_age_months"] == pytest.approx(7.5 + 31 / DAYS_PER_MONTH)
    assert got.loc["b", "age_band"] == "0-12"
    days = (AS_OF - dt.datetime(2020, 6, 1, tzinfo=dt.UTC)).days
    assert got.loc["c", "child_age_months"] == pytest.approx(54 + days / DAYS_PER_MONTH)
    assert got.loc["c", "age_band"] == "72-144"
    assert got.loc["d", "child_age_months"] == pytest.approx(28.5 + 152 / DAYS_PER_MONTH)
    assert got.loc["d", "age_band"] == "12-36"
    # bands: 0-12: b; 12-36: a, d; 72-144: c
    b = res.bands.set_index("age_band")
    assert b.contacts.to_dict() == {"0-12": 1, "12-36": 2, "36-72": 0, "72-144": 1, ">144": 0}
    # in stock: BF1, BF2, DI1, TO1, BK1 (CL1 is out, BK2's stock is unknown, TO2 not aged)
    assert res.skus_in_stock == 5
    # ranges are inclusive: BF2 (6-12) serves 12-36 too, TO1 (36-72) serves 72-144 too
    assert b.skus_in_stock.to_dict() == {"0-12": 3, "12-36": 2, "36-72": 1, "72-144": 1,
                                         ">144": 1}
    assert b.skus_total["72-144"] == 2  # + CL1 out of stock
    skus = res.assortment.groupby("age_band", sort=False).sku.apply(list).to_dict()
    assert skus == {"0-12": ["BF1", "BF2", "DI1"], "12-36": ["BF2", "DI1"], "36-72": ["TO1"],
                    "72-144": ["TO1"], ">144": ["BK1"]}
    # 72-144: 25% of demand, 1 of 8 band-SKU slots (12.5%): 0.125 < 0.7 x 0.25 -> thin;
    # 12-36: 50% of demand, 2 of 8 slots: 0.25 < 0.35 -> thin; 0-12: 25% vs 37.5% -> ok
    assert res.thin_bands == ["12-36", "72-144"]
    assert b.coverage["72-144"] == 0.5
    # at ratio 0.5 neither is strictly below: 0.125 = 0.5 x 0.25, 0.25 = 0.5 x 0.5
    assert lifestage(ws, AS_OF, thin_ratio=0.5, write=False).thin_bands == []


def test_seed_000_older_children_lack_assortment(make_ws):
    """Many children have grown past the baby range; the shop stocks baby goods only."""
    contacts, orders, items = [], [], []
    for i in range(20):
        cid = f"c{i}"
        contacts.append({"contact_id": cid, "created_at": "2018-01-01"})
        when = pd.Timestamp("2019-01-01", tz="UTC") + pd.Timedelta(days=30 * (i % 3))
        if i >= 15:
            when = pd.Timestamp("2024-03-01", tz="UTC")
        orders.append({"order_id": f"o{i}", "contact_id": cid, "ordered_at": when, "total": 1})
        items.append({"order_id": f"o{i}", "sku": "BF1", "quantity": 1, "unit_price": 1})
    products = [p for p in PRODUCTS if p["sku"] in ("BF1", "BF2", "DI1")] + [
        {"sku": "TO9", "category": "toys", "target_age_min_months": 48,
         "target_age_max_months": 60, "in_stock": True}]
    ws = make_ws(contacts=contacts, products=products, orders=orders, order_items=items)
    res = lifestage(ws, AS_OF)
    est, bands = reference(orders, items, AS_OF, products=products)
    assert res.n_contacts == len(est) == 20
    check(res, ws, est, bands)
    b = res.bands.set_index("age_band")
    assert b.contacts["36-72"] + b.contacts["72-144"] == 15
    assert "72-144" in res.thin_bands or "36-72" in res.thin_bands
    assert "0-12" not in res.thin_bands


def test_empty_workspace(make_ws):
    ws = make_ws()
    res = lifestage(ws, AS_OF)
    assert res.n_contacts == 0 and not res.bands.thin.any()
    assert ws.table(LIFESTAGE_TABLE).count().execute() == 0
    assert set(ws.table(LIFESTAGE_TABLE).columns) == {
        "contact_id", "as_of", "child_age_months", "age_band", "last_age_targeted_purchase_at"}


def test_cli_lifestage(make_ws):
    from segmentum.cli.drilldown import app as drilldown_app

    contacts, orders, items = _random_data()
    ws = make_ws(contacts=contacts, products=PRODUCTS, orders=orders, order_items=items)
    path = str(ws.config.path)
    ws.close()
    app = typer.Typer()
    app.add_typer(drilldown_app)
    runner = CliRunner()
    r = runner.invoke(app, ["lifestage", "-w", path, "--as-of", "2024-06-01"])
    assert r.exit_code == 0, r.output
    assert "72-144" in r.output
    r = runner.invoke(app, ["lifestage", "-w", path, "--as-of", "2024-06-01", "--json",
                            "--no-write"])
    assert r.exit_code == 0, r.output
    payload = json.loads(r.output)
    assert [b["age_band"] for b in payload["bands"]] == [b[0] for b in AGE_BANDS]
