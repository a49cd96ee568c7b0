"""The campaign report on a generated shop, each figure recomputed here from the delivery
log and the orders with plain pandas / numpy / scipy, and the planted lift inside its CI."""

from __future__ import annotations

import math
import shutil

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from segmentum.activation.apply import apply
from segmentum.activation.campaigns import CampaignStore, loads_campaign
from segmentum.activation.report import campaign_report
from segmentum.activation.runs import send_campaign
from segmentum.errors import NotFoundError
from tests.activation.test_report_uplift import wilson
from tests.conftest import REPO
from tests.workspaces import generated_workspace

RUN = "2026-11-01T09:00:00Z"
AS_OF = "2026-11-16T00:00:00Z"


@pytest.fixture(scope="module")
def shop(tmp_path_factory):
    root = tmp_path_factory.mktemp("report")
    ws, manifest, data = generated_workspace(root, contacts=4000, seed=3)
    (root / "segmentum.yaml").write_text("channels:\n  email: {type: outbox, path: outbox.jsonl}\n")
    folder = root / "campaigns"
    shutil.copytree(REPO / "examples" / "campaigns", folder)
    apply(ws, folder)
    campaign = CampaignStore(ws).require("november-newsletter")
    result = send_campaign(ws, campaign, RUN)
    ws.load("orders", data / "campaign_orders.parquet")
    ws.load("order_items", data / "campaign_order_items.parquet")
    yield ws, manifest, result, root
    ws.close()


def independent(ws, window_days=14.0, pre_days=90):
    d = ws.table("deliveries").to_pandas()
    d = d[(d.origin_name == "november-newsletter") & (d.occurrence == RUN)]
    a = ws.table("control_assignments").to_pandas()
    d = d.merge(a[["contact_id", "assigned_at"]], on="contact_id", how="left")
    blocked = {"no_consent", "unsubscribed", "suppressed", "no_address", "global_control"}
    keep = ((d.arm == "treatment") & ~d.outcome.isin(blocked)) | (
        (d.arm == "control") & d.reason.isna()
    )
    d = d[keep].copy()
    d["start"] = d.send_at.fillna(d.assigned_at)
    d["stop"] = np.minimum(d.start + pd.Timedelta(days=window_days), pd.Timestamp(AS_OF))
    o = ws.table("orders").to_pandas()
    o = o[o.status == "completed"]
    o["total"] = o.total.astype(float)
    j = d[["contact_id", "start", "stop"]].merge(
        o[["contact_id", "ordered_at", "total"]], on="contact_id"
    )
    inside = j[(j.ordered_at > j.start) & (j.ordered_at <= j.stop)]
    before = j[(j.ordered_at <= j.start) & (j.ordered_at > j.start - pd.Timedelta(days=pre_days))]
    d = d.set_index("contact_id")
    d["converted"] = d.index.isin(inside.contact_id)
    d["revenue"] = inside.groupby("contact_id").total.sum().reindex(d.index).fillna(0.0)
    d["pre"] = before.groupby("contact_id").total.sum().reindex(d.index).fillna(0.0)
    return d


def test_every_figure_matches_an_independent_computation(shop):
    ws, manifest, result, _ = shop
    r = campaign_report(ws, "november-newsletter", as_of=AS_OF, cuped=True)
    d = independent(ws)
    t, c = d[d.arm == "treatment"], d[d.arm == "control"]
    n1, n0, x1, x0 = len(t), len(c), int(t.converted.sum()), int(c.converted.sum())
    assert (r["arms"]["treatment"]["contacts"], r["arms"]["control"]["contacts"]) == (n1, n0)
    assert (r["arms"]["treatment"]["conversions"], r["arms"]["control"]["conversions"]) == (x1, x0)
    assert r["arms"]["treatment"]["sent"] == result.outcomes["sent"] == (t.outcome == "sent").sum()
    assert r["arms"]["treatment"]["revenue_per_recipient"] == pytest.approx(t.revenue.mean())
    assert r["arms"]["control"]["revenue"] == pytest.approx(c.revenue.sum())
    # Newcombe's hybrid score interval, written out
    z = stats.norm.ppf(0.975)
    p1, p0 = x1 / n1, x0 / n0
    (l1, u1), (l0, u0) = wilson(x1, n1, z), wilson(x0, n0, z)
    lift = r["conversion_lift"]
    assert lift["difference"] == pytest.approx(p1 - p0)
    assert lift["ci_low"] == pytest.approx(p1 - p0 - math.hypot(p1 - l1, u0 - p0))
    assert lift["ci_high"] == pytest.approx(p1 - p0 + math.hypot(u1 - p1, p0 - l0))
    # Welch
    v1, v0 = t.revenue.var(ddof=1) / n1, c.revenue.var(ddof=1) / n0
    df = (v1 + v0) ** 2 / (v1**2 / (n1 - 1) + v0**2 / (n0 - 1))
    diff = t.revenue.mean() - c.revenue.mean()
    half = stats.t.ppf(0.975, df) * math.sqrt(v1 + v0)
    rev = r["revenue_lift"]
    assert (rev["ci_low"], rev["ci_high"]) == pytest.approx((diff - half, diff + half))
    assert rev["p_value"] == pytest.approx(2 * stats.t.sf(abs(diff) / math.sqrt(v1 + v0), df))
    # CUPED: theta from the pooled covariance of pre-period and window revenue
    theta = np.cov(d.pre, d.revenue, ddof=1)[0, 1] / d.pre.var(ddof=1)
    adj = d.revenue - theta * (d.pre - d.pre.mean())
    assert r["cuped"]["theta"] == pytest.approx(theta)
    assert r["cuped"]["difference"] == pytest.approx(
        adj[d.arm == "treatment"].mean() - adj[d.arm == "control"].mean()
    )
    assert r["window_complete"] and r["verdict"] in ("lift", "no significant difference")


def test_the_planted_lift_is_inside_the_interval(shop):
    ws, manifest, _, _ = shop
    r = campaign_report(ws, "november-newsletter", as_of=AS_OF)
    truth = manifest["planted_campaign"]
    lift, rev = r["conversion_lift"], r["revenue_lift"]
    assert lift["ci_low"] <= truth["true_conversion_lift"] <= lift["ci_high"]
    assert rev["ci_low"] <= truth["true_revenue_per_recipient_lift"] <= rev["ci_high"]
    # the arms are the generator's, less the global control
    arms = pd.read_parquet(shop[3] / "data" / "campaign_truth.parquet").set_index("contact_id").arm
    d = independent(ws)
    assert (arms.reindex(d.index) == d.arm).all()


def test_open_windows_and_errors(shop):
    ws, *_ = shop
    early = campaign_report(ws, "november-newsletter", as_of="2026-11-05")
    assert not early["window_complete"]
    late = campaign_report(ws, "november-newsletter", as_of=AS_OF)
    assert early["arms"]["treatment"]["conversions"] < late["arms"]["treatment"]["conversions"]
    with pytest.raises(NotFoundError, match="no run"):
        campaign_report(ws, "november-newsletter", run="2026-01-01T00:00:00Z")
    with pytest.raises(NotFoundError, match="No campaign named"):
        campaign_report(ws, "nope")


def test_small_arms_say_not_enough_data(shop):
    ws, *_ = shop
    small = loads_campaign(
        "name: tiny\naudience: {rule: 'city = \"Lyon\"'}\ncontent: {text: 'Hi {{ first_name }}'}\n"
        "control_pct: 10\n"
    )
    CampaignStore(ws).save(small)
    send_campaign(ws, small, "2026-11-01T10:00:00Z")
    r = campaign_report(ws, "tiny", as_of=AS_OF)
    assert r["arms"]["control"]["contacts"] < 100 and r["verdict"] == "not enough data"
