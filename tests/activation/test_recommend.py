"""Recommendations on a real DuckDB workspace: what is never recommended, co-purchase and
category signals, and hit rate @k on a time-based holdout of the generated retailer
against the best-sellers baseline."""

from __future__ import annotations

import datetime as dt

import pytest

from segmentum.activation.recommend import Recommender, evaluate, product_details, recommend
from segmentum.errors import NotFittedError, UsageError
from tests.workspaces import generated_workspace

T = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)

PRODUCTS = [
    dict(sku="A1", category="toys", in_stock=True, name="Ball", price=5.0),
    dict(sku="A2", category="toys", in_stock=True, name="Kite"),
    dict(sku="A3", category="toys", in_stock=False, name="Drone"),
    dict(sku="B1", category="books", in_stock=True),
    dict(sku="B2", category="books", in_stock=True),
    dict(sku="B3", category="books", in_stock=None),  # unknown stock counts as in stock
]


def shop(make_ws):
    # A1 and A2 are bought together by many; B2 sells best in the last 90 days
    baskets = {f"P{i}": ["A1", "A2"] for i in range(6)} | {f"Q{i}": ["B2"] for i in range(8)}
    baskets |= {"N": ["A1"], "R": ["B1"], "S": ["A3"]}
    contacts, orders, items = [], [], []
    for k, (cid, skus) in enumerate(baskets.items()):
        contacts.append(dict(contact_id=cid, created_at="2025-01-01T00:00:00Z"))
        orders.append(dict(order_id=f"O{k}", contact_id=cid, total=10.0, status="completed",
                           ordered_at=(T - dt.timedelta(days=10 + k)).isoformat()))
        items += [dict(order_id=f"O{k}", sku=s, quantity=1, unit_price=5.0) for s in skus]
    contacts.append(dict(contact_id="NEW", created_at="2026-10-01T00:00:00Z"))
    return make_ws(contacts=contacts, products=PRODUCTS, orders=orders, order_items=items)


def test_copurchase_and_exclusions(make_ws):
    ws = shop(make_ws)
    got = recommend(ws, ["N", "R", "NEW", "S"], T, k=3)
    assert got["N"][0] == "A2"  # bought with A1 by everyone who bought A1
    assert "A1" not in got["N"]  # never what the contact already bought
    assert all("A3" not in v for v in got.values())  # never out of stock
    assert got["NEW"][0] == "B2"  # no history: the best-seller
    assert got["R"][0] in ("B2", "B3")  # category affinity: books first
    # the trigger's product is left out, for one contact or for everyone
    assert "A2" not in recommend(ws, ["N"], T, k=3, exclude_skus={"N": ["A2"]})["N"]
    assert "B2" not in recommend(ws, ["NEW"], T, k=3, exclude_skus=["B2"])["NEW"]


def test_only_orders_before_the_time_count(make_ws):
    ws = shop(make_ws)
    early = T - dt.timedelta(days=20)  # before most orders
    model = Recommender().fit(ws, early)
    assert model.bought_.nnz < Recommender().fit(ws, T).bought_.nnz


def test_details_and_errors(make_ws):
    ws = shop(make_ws)
    assert product_details(ws, ["A1", "ZZ"]) == {
        "A1": {"sku": "A1", "name": "Ball", "category": "toys", "price": 5.0}}
    with pytest.raises(NotFittedError):
        Recommender().recommend(["N"])
    with pytest.raises(UsageError):
        recommend(ws, ["N"], T, k=-1)


@pytest.fixture(scope="module")
def retailer(tmp_path_factory):
    ws, manifest, data = generated_workspace(tmp_path_factory.mktemp("rec"), contacts=3000, seed=3)
    yield ws
    ws.close()


def test_hit_rate_beats_best_sellers_on_a_time_holdout(retailer):
    r = evaluate(retailer, "2026-08-03", window_days=90, k=4)
    assert r["contacts"] > 300
    assert r["recommender"] > 1.5 * r["best_sellers"], r
    assert r["recommender"] >= max(r["copurchase"], r["category"]) - 0.02, r
