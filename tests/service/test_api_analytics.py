"""/api/analytics, /api/models, /api/catalog, /api/contacts and /api/personas against a real
`segmentum serve`, each figure checked against the library or an independent pandas count."""

from __future__ import annotations

import pandas as pd
import pytest

from segmentum.workspace import open_workspace
from tests.service._api import AS_OF, api_workspace, copy_workspace, serve  # noqa: F401 - fixture


@pytest.fixture(scope="module")
def api(api_workspace, tmp_path_factory):  # noqa: F811
    ws = copy_workspace(api_workspace, tmp_path_factory.mktemp("analytics"))
    server, apis = serve(ws)
    yield apis
    server.stop()


@pytest.fixture(scope="module")
def frames(api_workspace):  # noqa: F811
    with open_workspace(api_workspace) as ws:
        return {k: ws.to_pandas(k) for k in ("contacts", "orders", "rfm")}


def test_kpis_agree_with_pandas(api, frames):
    r = api["read"].get("/api/analytics/kpis", as_of=AS_OF)
    assert r.status_code == 200, r.text
    k = r.json()
    o = frames["orders"]
    done = o[(o.status.fillna("completed") == "completed") & (o.ordered_at < pd.Timestamp(AS_OF))]
    per = done.groupby("contact_id").size()
    assert k["buyers"] == len(per) and k["orders"] == len(done)
    assert k["revenue"] == pytest.approx(float(done.total.astype(float).sum()))
    assert k["repeat_rate"] == pytest.approx((per >= 2).mean())
    assert k["as_of"] == AS_OF and k["as_of_rule"] == "given"
    late = api["read"].get("/api/analytics/kpis", as_of="2031-01-01").json()
    assert late["warnings"] and "after the newest data" in late["warnings"][0]


def test_rfm_grid_cells_and_members(api, frames):
    r = api["read"].get("/api/analytics/rfm", chart="revenue")
    assert r.status_code == 200, r.text
    body = r.json()
    rfm = frames["rfm"]
    counts = rfm[rfm.cell.notna()].groupby("cell").size()
    assert {c["cell"]: c["contacts"] for c in body["cells"] if c["contacts"]} == counts.to_dict()
    assert body["buyers"] == int(counts.sum()) and body["source"] == "table"
    assert sum(c["share_of_buyers"] for c in body["cells"]) == pytest.approx(1)
    assert body["chart"]["$schema"].startswith("https://vega.github.io/schema/vega-lite/")
    cell = counts.idxmax()
    one = api["read"].get(f"/api/analytics/rfm/cells/{cell}").json()
    assert one["summary"]["contacts"] == counts[cell] and one["drilldown"]
    ids, cursor = [], None
    while True:
        page = api["read"].get(f"/api/analytics/rfm/cells/{cell}/members", limit=100,
                               **({"cursor": cursor} if cursor else {})).json()
        ids += [m["contact_id"] for m in page["items"]]
        cursor = page["next"]
        if not cursor:
            break
    assert sorted(ids) == sorted(rfm.loc[rfm.cell == cell, "contact_id"])
    assert api["read"].get("/api/analytics/rfm/cells/R0F1M1").status_code == 400
    computed = api["read"].get("/api/analytics/rfm", as_of="2026-06-01").json()
    assert computed["source"] == "computed" and computed["as_of"] == "2026-06-01T00:00:00Z"


def test_rfm_compute_writes_a_model_and_refuses_a_meaning_change(api):
    w = api["write"]
    r = w.post("/api/analytics/rfm", {"as_of": AS_OF, "levels": 5, "name": "rfm5"})
    assert r.status_code == 200, r.text
    assert r.json()["levels"] == 5
    models = {m["name"]: m for m in w.get("/api/models").json()}
    assert models["rfm5"]["meaning"]["levels"] == 5 and models["rfm5"]["readers"] == []
    w.post("/api/segments", {"name": "top5", "rule": 'rfm5.cell = "R5F5M5"'})
    r = w.post("/api/analytics/rfm", {"as_of": AS_OF, "levels": 3, "name": "rfm5"})
    assert r.status_code == 409 and r.json()["code"] == "model_conflict"
    assert api["read"].post("/api/analytics/rfm", {"levels": 3}).status_code == 403


def test_cohorts_clv_funnel_drilldown_lifestage_migration(api, frames):
    rd = api["read"]
    c = rd.get("/api/analytics/cohorts", by="acquisition_channel", metric="retention", chart="true").json()
    sizes = frames["contacts"].groupby("acquisition_channel").size()
    assert set(c["sizes"]) <= set(sizes.index) and c["chart"] and c["rows"]
    clv = rd.get("/api/analytics/clv").json()
    assert clv["contacts"] == len(frames["rfm"][frames["rfm"].frequency > 0])
    assert {g["group"] for g in clv["by_buyer_type"]} == {"one-time buyers", "repeat buyers"}
    f = rd.get("/api/analytics/funnel", as_of=AS_OF)
    assert f.status_code == 200 and f.json()["stages"]
    d = rd.get("/api/analytics/drilldown", segment="Champions", by="brand", as_of=AS_OF)
    assert d.status_code == 200 and d.json()["segment_source"]
    assert rd.get("/api/analytics/drilldown", segment="no-such").status_code == 400
    assert rd.get("/api/analytics/lifestage", as_of=AS_OF).json()["bands"]
    m = rd.get("/api/analytics/rfm/migration", **{"from": "2026-06-01", "to": AS_OF}).json()
    assert len(m["matrix"]) == len(m["groups"]) and m["flows"]
    assert rd.get("/api/analytics/cohorts", metric="nope").status_code == 400


def test_catalog_offers_names_that_check(api):
    rd = api["read"]
    cat = rd.get("/api/catalog").json()
    names = {f["name"] for f in cat["profile"]}
    assert {"city", "email_opt_in", "rfm.cell", "clv.p_alive"} <= names
    sources = {s["name"]: s for s in cat["sources"]}
    assert {"orders", "order_items", "email_open"} <= set(sources)
    field = next(f["name"] for f in sources["email_open"]["fields"] if f["name"] == "device_os")
    assert rd.post("/api/segments/check", {"rule": f'count(email_open where {field} = "iOS") > 0'}).status_code == 200
    v = rd.get("/api/catalog/values", source="contacts", field="city").json()
    assert "London" in v["values"]
    assert rd.get("/api/catalog/values", source="email_open", field="device_os").json()["values"]
    assert rd.get("/api/catalog/values", source="nope", field="x").status_code == 400


def test_contacts_search_and_card(api, frames):
    rd = api["read"]
    c = frames["contacts"]
    one = c[c.first_name.notna()].iloc[0]
    r = rd.get("/api/contacts", q=one.first_name.lower(), limit=1000).json()
    expect = c[c.first_name.fillna("").str.lower().str.contains(one.first_name.lower(), regex=False)
               | c.email.fillna("").str.lower().str.contains(one.first_name.lower(), regex=False)
               | c.last_name.fillna("").str.lower().str.contains(one.first_name.lower(), regex=False)
               | c.contact_id.str.lower().str.startswith(one.first_name.lower())]
    assert sorted(x["contact_id"] for x in r["items"]) == sorted(expect.contact_id) and r["total"] == len(expect)
    card = rd.get(f"/api/contacts/{one.contact_id}", as_of=AS_OF, events=3).json()
    assert card["contact_id"] == one.contact_id and len(card["timeline"]) <= 3
    assert card["profile"]["email"] == one.email
    by_mail = rd.get(f"/api/contacts/{one.email.upper()}").json()
    assert by_mail["matched_by"] == "email"
    missing = rd.get("/api/contacts/C000001")
    assert missing.status_code == 404 and "Did you mean: C0000001" in missing.json()["message"]
    assert missing.json()["code"] == "not_found" and missing.json()["field"] == "contact_id"


def test_personas_templates_and_apply(api):
    rd, w = api["read"], api["write"]
    p = rd.get("/api/personas").json()
    assert any(t["name"] == "high_value_buyer" for t in p["templates"])
    t = rd.get("/api/personas/templates/high_value_buyer").json()
    assert t["params"] and t["rule"]
    r = w.post("/api/personas/templates/high_value_buyer/apply", {"params": {"min_spend": 300}, "segment": "hv"})
    assert r.status_code == 201 and "300" in r.json()["rule"]
    bad = w.post("/api/personas/templates/high_value_buyer/apply", {"params": {"min_spend": "lots"}})
    assert bad.status_code == 400 and "min_spend" in bad.json()["message"]
    assert rd.get("/api/personas/templates/nope").status_code in (400, 404)
