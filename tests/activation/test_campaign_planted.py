"""The generator's planted campaign: arms by the campaign's own hash, a known lift, the
history untouched."""

from __future__ import annotations

import json

import pandas as pd
import pyarrow.parquet as pq
import pytest

from segmentum.activation.control_groups import bucket
from segmentum.data.generate import _campaign, _chunk, generate


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    out = tmp_path_factory.mktemp("planted")
    generate(out, contacts=3000, seed=4)
    return out


def test_arms_follow_the_control_group_hash(planted):
    truth = pq.read_table(planted / "campaign_truth.parquet").to_pylist()
    contacts = pq.read_table(planted / "contacts.parquet", columns=["contact_id", "email_opt_in"])
    opted = {c for c, o in zip(*contacts.to_pydict().values(), strict=True) if o}
    assert {r["contact_id"] for r in truth} == opted
    for r in truth:
        control = bucket(_campaign.SALT, r["contact_id"]) < _campaign.CONTROL_PCT * 100
        assert r["arm"] == ("control" if control else "treatment")
        if r["arm"] == "control":
            assert not r["planted_conversion"] and r["planted_revenue"] == 0


def test_manifest_totals_and_orders_after_the_history(planted):
    m = json.loads((planted / "manifest.json").read_text())
    p = m["planted_campaign"]
    truth = pq.read_table(planted / "campaign_truth.parquet").to_pandas()
    t = truth[truth.arm == "treatment"]
    assert p["arms"]["treatment"]["contacts"] == len(t)
    only = (t.planted_conversion & ~t.natural_conversion).sum()
    assert p["true_conversion_lift"] == pytest.approx(only / len(t))
    assert p["true_revenue_per_recipient_lift"] == pytest.approx(t.planted_revenue.sum() / len(t))
    assert 0.02 < p["true_conversion_lift"] < _campaign.LIFT
    orders = pq.read_table(planted / "campaign_orders.parquet").to_pandas()
    assert (
        orders.ordered_at.min() > pd.Timestamp(m["as_of"])
        and orders.order_id.str.startswith("O9").all()
    )
    history = pq.read_table(planted / "orders.parquet", columns=["order_id"]).to_pandas()
    assert not set(orders.order_id) & set(history.order_id)
    items = pq.read_table(planted / "campaign_order_items.parquet").to_pandas()
    assert set(items.order_id) == set(orders.order_id)


def test_history_is_the_same_without_the_planted_campaign(tmp_path, monkeypatch):
    generate(tmp_path / "with", contacts=1500, seed=2)
    empty = {name: schema.empty_table() for name, schema in _campaign.SCHEMAS_PLANTED.items()}
    monkeypatch.setattr(_chunk, "planted_tables", lambda *a: empty)
    generate(tmp_path / "without", contacts=1500, seed=2)
    for name in ("contacts", "orders", "order_items", "events", "deals", "ground_truth"):
        a = (tmp_path / "with" / f"{name}.parquet").read_bytes()
        assert a == (tmp_path / "without" / f"{name}.parquet").read_bytes(), name
    assert pq.read_table(tmp_path / "without" / "campaign_orders.parquet").num_rows == 0
