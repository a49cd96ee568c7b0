"""Segment drill-down, checked against an independent pandas computation, plus seed 000's story.

The random data set has orders at identical instants (so "last K orders" needs its tie-break),
returned and cancelled orders, orders after ``as_of``, an unknown SKU and a product without
brand; the RFM table has two snapshots.
"""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal

import ibis
import numpy as np
import pandas as pd
import pytest
import typer
from typer.testing import CliRunner

from segmentum.analytics.drilldown import UNKNOWN_KEY, drilldown, resolve_segment
from segmentum.errors import UsageError, WorkspaceError

AS_OF = dt.datetime(2024, 6, 1, tzinfo=dt.UTC)
OLD_AS_OF = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)

PRODUCTS = [
    {"sku": "BF1", "category": "baby food", "brand": "Gerber", "price": 2.5},
    {"sku": "BF2", "category": "baby food", "brand": "Hipp", "price": 3.1},
    {"sku": "DI1", "category": "diapers", "brand": "Pampers", "price": 12.99},
    {"sku": "DI2", "category": "diapers", "brand": "Huggies", "price": 11.5},
    {"sku": "TO1", "category": "toys", "brand": "Lego", "price": 29.99},
    {"sku": "TO2", "category": "toys", "brand": None, "price": 9.99},
    {"sku": "CL1", "category": "clothes", "brand": "Hipp", "price": 15.0},
]
RFM_COLUMNS = ["contact_id", "as_of", "recency_days", "frequency", "monetary", "r", "f", "m",
               "cell", "name", "r_label", "f_label", "m_label", "levels"]


def rfm_frame(rows, as_of) -> pd.DataFrame:
    """A small `rfm` table like the RFM engine writes: (contact_id, cell, name) rows."""
    recs = []
    for cid, cell, name in rows:
        r = f = m = None
        if cell:
            r, f, m = int(cell[1]), int(cell[3]), int(cell[5])
        recs.append({"contact_id": cid, "as_of": pd.Timestamp(as_of), "recency_days": 10,
                     "frequency": 1, "monetary": 1.0, "r": r, "f": f, "m": m, "cell": cell,
                     "name": name, "r_label": "r", "f_label": "f", "m_label": "m",
                     "levels": 3})
    df = pd.DataFrame(recs, columns=RFM_COLUMNS)
    for c in ("r", "f", "m"):
        df[c] = df[c].astype("Int64")
    for c in ("cell", "r_label", "f_label", "m_label"):
        df[c] = df[c].astype(object)
    return df


def _data(seed: int = 11):
    rng = np.random.default_rng(seed)
    skus = [p["sku"] for p in PRODUCTS] + ["GHOST"]  # GHOST is not in products
    contacts, orders, items, rfm_rows = [], [], [], []
    for i in range(60):
        cid = f"c{i:02d}"
        contacts.append({"contact_id": cid, "created_at": "2023-01-01"})
        cell = ["R1F3M3", "R3F3M3", "R2F1M1"][i % 3] if i % 10 else None
        name = {"R1F3M3": "Can't Lose Them", "R3F3M3": "Champions", "R2F1M1": "Others",
                None: "No orders"}[cell]
        rfm_rows.append((cid, cell, name))
        t = pd.Timestamp("2023-06-01", tz="UTC") + pd.Timedelta(days=int(rng.integers(0, 60)))
        for j in range(int(rng.integers(0, 8))):
            oid = f"o{i:02d}-{j}"
            orders.append({"order_id": oid, "contact_id": cid, "ordered_at": t,
                           "total": 1, "status": str(rng.choice(
                               ["completed"] * 5 + ["returned", "cancelled"]))})
            # segment R1F3M3 leans to baby food
            p = np.ones(len(skus))
            if cell == "R1F3M3":
                p[:2] = 6
            chosen = rng.choice(skus, size=int(rng.integers(1, 4)), replace=False, p=p / p.sum())
            for sku in chosen:
                items.append({"order_id": oid, "sku": str(sku),
                              "quantity": int(rng.integers(1, 5)),
                              "unit_price": round(float(rng.integers(99, 3000)) / 100, 2)})
            if rng.random() >= 0.3:  # else: the next order at the very same instant (a tie)
                t = t + pd.Timedelta(days=int(rng.integers(1, 80)))
    return contacts, orders, items, rfm_rows


@pytest.fixture(scope="module")
def data():
    return _data()


@pytest.fixture(scope="module")
def ws(ws_builder, data, tmp_path_factory):
    contacts, orders, items, rfm_rows = data
    old = [(c, "R3F3M3", "Champions") for c, _, _ in rfm_rows[:5]]  # an older snapshot
    rfm = pd.concat([rfm_frame(rfm_rows, AS_OF), rfm_frame(old, OLD_AS_OF)], ignore_index=True)
    ws = ws_builder(tmp_path_factory.mktemp("drill") / "ws.duckdb", contacts=contacts,
                    products=PRODUCTS, orders=orders, order_items=items, rfm=rfm)
    yield ws
    ws.close()


# -- the independent reference ---------------------------------------------------------------
def reference(data, members, by, as_of, *, last_orders=None, window_days=None,
              min_contacts=5, min_share=0.01, measure="value"):
    _, orders, items, _ = data
    orders, items = pd.DataFrame(orders), pd.DataFrame(items)
    products = pd.DataFrame(PRODUCTS)
    as_of = pd.Timestamp(as_of)
    o = orders[(orders.status == "completed") & (orders.ordered_at < as_of)]
    if window_days is not None:
        o = o[o.ordered_at >= as_of - pd.Timedelta(days=window_days)]
    else:
        k = last_orders or 3
        o = (o.sort_values(["contact_id", "ordered_at", "order_id"],
                           ascending=[True, False, False])
             .groupby("contact_id").head(k))
    li = o[["order_id", "contact_id"]].merge(items, on="order_id")
    if by == "sku":
        li["key"] = li.sku
    else:
        li = li.merge(products[["sku", by]], on="sku", how="left")
        li["key"] = li[by].fillna(UNKNOWN_KEY)
    li["value"] = [q * Decimal(str(p)) for q, p in zip(li.quantity, li.unit_price)]
    li["member"] = li.contact_id.isin(set(members))
    seg = li[li.member]
    seg_total = sum(seg[measure], Decimal(0)) if measure == "value" else seg[measure].sum()
    base_total = sum(li[measure], Decimal(0)) if measure == "value" else li[measure].sum()
    buyers = seg.contact_id.nunique()
    rows = []
    for key, grp in li.groupby("key"):
        sg = grp[grp.member]
        seg_m = sum(sg[measure], Decimal(0)) if measure == "value" else sg[measure].sum()
        base_m = sum(grp[measure], Decimal(0)) if measure == "value" else grp[measure].sum()
        n = sg.contact_id.nunique()
        if n < min_contacts or n < min_share * buyers or buyers == 0:
            continue
        s_share = float(seg_m) / float(seg_total)
        b_share = float(base_m) / float(base_total)
        rows.append({"key": key, "segment_share": s_share, "base_share": b_share,
                     "lift": s_share / b_share, "segment_contacts": n,
                     "segment_contact_share": n / buyers,
                     "segment_value": float(sum(sg.value, Decimal(0))),
                     "segment_quantity": int(sg.quantity.sum()),
                     "base_contacts": grp.contact_id.nunique(),
                     "base_value": float(sum(grp.value, Decimal(0))),
                     "base_quantity": int(grp.quantity.sum())})
    rows.sort(key=lambda r: (-r["lift"], -r["segment_share"], r["key"]))
    return pd.DataFrame(rows, columns=list(rows[0]) if rows else None)


def members_of(data, cell=None, name=None):
    return [c for c, ce, n in data[3] if (cell and ce == cell) or (name and n == name)]


def assert_same(got: pd.DataFrame, exp: pd.DataFrame):
    assert list(got.key) == list(exp.key)
    for col in exp.columns:
        if col == "key":
            continue
        np.testing.assert_allclose(got[col].astype(float), exp[col].astype(float),
                                   rtol=1e-12, err_msg=col)


# -- comparisons with the reference ----------------------------------------------------------
@pytest.mark.parametrize(
    "by,kwargs",
    [
        ("category", {}),
        ("brand", {"last_orders": 1}),
        ("sku", {"last_orders": 5, "min_contacts": 1, "min_share": 0.2}),
        ("category", {"window_days": 250, "min_contacts": 2}),
        ("brand", {"measure": "quantity", "min_contacts": 0, "min_share": 0}),
    ],
)
def test_matches_pandas(ws, data, by, kwargs):
    got = drilldown(ws, "R1F3M3", by=by, **kwargs)
    exp = reference(data, members_of(data, cell="R1F3M3"), by, AS_OF, **kwargs)
    assert not exp.empty
    assert_same(got, exp)
    assert got.attrs["as_of"] == AS_OF  # the RFM snapshot's date by default


def test_by_name_custom_table_and_explicit_as_of(ws, data):
    got = drilldown(ws, "champions", by="category")  # names are case-insensitive
    exp = reference(data, members_of(data, name="Champions"), "category", AS_OF)
    assert_same(got, exp)
    assert got.attrs["segment"] == "Champions"
    # any Ibis table of contact_ids is a segment
    ids = members_of(data, cell="R2F1M1")
    table = ibis.memtable({"contact_id": ids})
    as_of = dt.datetime(2023, 10, 1, tzinfo=dt.UTC)
    got = drilldown(ws, table, by="brand", as_of=as_of, min_contacts=2)
    exp = reference(data, ids, "brand", as_of, min_contacts=2)
    assert_same(got, exp)
    assert got.attrs["segment_members"] == len(ids)


def test_older_rfm_snapshot_is_used_for_an_earlier_as_of(ws, data):
    seg = resolve_segment(ws, "R3F3M3", dt.datetime(2024, 2, 1, tzinfo=dt.UTC))
    assert seg.as_of == OLD_AS_OF
    assert sorted(seg.members.to_pandas().contact_id) == [c for c, _, _ in data[3][:5]]
    latest = resolve_segment(ws, "R3F3M3")
    assert latest.as_of == AS_OF
    with pytest.raises(WorkspaceError):
        resolve_segment(ws, "R3F3M3", dt.datetime(2020, 1, 1, tzinfo=dt.UTC))


def test_errors(ws, make_ws):
    with pytest.raises(UsageError, match='Did you mean "Champions"'):
        drilldown(ws, "Champion")
    with pytest.raises(UsageError, match="category"):
        drilldown(ws, "R1F3M3", by="categories")
    with pytest.raises(UsageError, match="not both"):
        drilldown(ws, "R1F3M3", last_orders=2, window_days=30)
    with pytest.raises(WorkspaceError, match="rfm"):
        drilldown(make_ws(), "R1F3M3")


def test_cell_without_members_gives_empty_result(ws):
    got = drilldown(ws, "R5F5M5")
    assert got.empty and got.attrs["segment_members"] == 0


# -- seed 000 --------------------------------------------------------------------------------
def test_seed_000_baby_food_dominates_r1f3m3_last_orders(make_ws):
    """Lapsed high-value buyers' last orders are mostly baby food; the base buys broadly."""
    contacts, orders, items, rfm_rows = [], [], [], []
    t0 = pd.Timestamp("2023-01-02", tz="UTC")
    for i in range(30):
        cid = f"c{i}"
        lapsed = i < 10
        contacts.append({"contact_id": cid, "created_at": "2022-01-01"})
        rfm_rows.append((cid, "R1F3M3" if lapsed else "R3F2M2",
                         "Can't Lose Them" if lapsed else "Loyal"))
        for j in range(6):
            oid = f"{cid}-{j}"
            when = t0 + pd.Timedelta(days=20 * j + i)
            orders.append({"order_id": oid, "contact_id": cid, "ordered_at": when, "total": 1})
            if lapsed and j >= 3:  # the last 3 orders
                items.append({"order_id": oid, "sku": "BF1", "quantity": 4, "unit_price": 2.5})
                items.append({"order_id": oid, "sku": "TO2", "quantity": 1, "unit_price": 1})
            else:
                sku = ["DI1", "TO1", "CL1", "BF2"][(i + j) % 4]
                items.append({"order_id": oid, "sku": sku, "quantity": 1, "unit_price": 10})
        # a returned baby-food order must not count
        orders.append({"order_id": f"{cid}-r", "contact_id": cid, "status": "returned",
                       "ordered_at": t0 + pd.Timedelta(days=200), "total": 1})
        items.append({"order_id": f"{cid}-r", "sku": "CL1", "quantity": 50, "unit_price": 10})
    ws = make_ws(contacts=contacts, products=PRODUCTS, orders=orders, order_items=items,
                 rfm=rfm_frame(rfm_rows, AS_OF))
    got = drilldown(ws, "R1F3M3", by="category")
    assert got.key.iloc[0] == "baby food"
    top = got.iloc[0]
    assert top.segment_contacts == 10
    assert top.lift == pytest.approx((300 / 330) / (450 / 930))  # base: 330 + 20 x 30
    assert top.segment_share == pytest.approx(300 / 330)
    # ties: Lego's and Pampers' shares and lifts are exactly equal here -> sorted by key
    tied = drilldown(ws, "Loyal", by="brand", min_contacts=1)
    shares = dict(zip(tied.key, tied.segment_share))
    assert shares["Lego"] == shares["Pampers"]
    lifts = list(tied.lift)
    assert lifts == sorted(lifts, reverse=True)
    for a, b in zip(tied.itertuples(), tied.iloc[1:].itertuples()):
        if a.lift == b.lift and a.segment_share == b.segment_share:
            assert a.key < b.key


# -- CLI -------------------------------------------------------------------------------------
def test_cli_drilldown(ws):
    from segmentum.cli.drilldown import app as drilldown_app

    path = str(ws.config.path)  # the CLI opens (and closes) its own connection
    app = typer.Typer()
    app.add_typer(drilldown_app)
    runner = CliRunner()
    r = runner.invoke(app, ["drilldown", "-w", path, "--segment", "R1F3M3"])
    assert r.exit_code == 0, r.output
    assert "baby food" in r.output
    r = runner.invoke(app, ["drilldown", "-w", path, "--segment", "R1F3M3", "--by", "brand",
                            "--window", "250", "--json"])
    assert r.exit_code == 0, r.output
    payload = json.loads(r.output)
    assert payload["segment"] == "R1F3M3" and payload["rows"]
    assert payload["rows"][0]["lift"] >= payload["rows"][-1]["lift"]
