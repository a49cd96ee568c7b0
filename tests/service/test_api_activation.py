"""/api/campaigns, /api/triggers, /api/exports, /api/templates, /api/deliveries and the
erasure route against a real `segmentum serve`; messages go to a file outbox channel."""

from __future__ import annotations

import json

import pytest

from tests.service._api import AS_OF, api_workspace, copy_workspace, serve  # noqa: F401 - fixture

CAMPAIGN = {"name": "hello", "audience": {"segment": "buyers"}, "channel": "email",
            "content": {"subject": "Hi {{ first_name | default('there') }}", "text": "Hello"},
            "control_pct": 20, "schedule": {"at": "2026-11-01T09:00:00Z"}}


@pytest.fixture(scope="module")
def served(api_workspace, tmp_path_factory):  # noqa: F811
    folder = tmp_path_factory.mktemp("activation")
    ws = copy_workspace(api_workspace, folder)
    (folder / "segmentum.yaml").write_text("timezone: UTC\nchannels:\n  email:\n    type: outbox\n"
                                           "    path: outbox/mail.jsonl\n", encoding="utf-8")
    server, apis = serve(ws)
    w = apis["write"]
    assert w.post("/api/segments", {"name": "buyers", "rule": "count(orders, last 60 days) >= 1"}).status_code == 201
    assert w.post("/api/segments/buyers/refresh", as_of=AS_OF).status_code == 200
    yield folder, apis
    server.stop()


def test_campaign_from_json_and_yaml_with_located_errors(served):
    _, api = served
    w = api["write"]
    r = w.post("/api/campaigns", CAMPAIGN)
    assert r.status_code == 201 and r.json() == {"name": "hello", "action": "created"}
    assert w.post("/api/campaigns", CAMPAIGN).status_code == 400  # exists
    yaml_doc = "name: bad\naudience: {segment: buyers}\ncontent: {subject: x, text: y}\ncontrol_pct: 90\n"
    r = w.post("/api/campaigns", content=yaml_doc.encode(), content_type="application/yaml")
    body = r.json()
    assert r.status_code == 400 and (body["key"], body["line"]) == ("control_pct", 4)
    r = w.post("/api/campaigns", content=b'{"name": "x", "audience": {"segment": "buyers"}, "content": "t",\n'
               b' "contrl_pct": 1}', content_type="application/json")
    assert r.status_code == 400 and r.json()["line"] == 2 and "control_pct" in (r.json()["hint"] or "")
    r = w.post("/api/campaigns", {**CAMPAIGN, "name": "sneaky", "templates_dir": "/etc"})
    assert r.status_code == 400 and r.json()["field"] == "templates_dir"
    r = w.put("/api/campaigns/hello", {**CAMPAIGN, "control_pct": 10})
    assert r.json()["action"] == "updated"
    assert w.put("/api/campaigns/hello", {**CAMPAIGN, "name": "other"}).status_code == 400
    listed = api["read"].get("/api/campaigns").json()
    assert [c["name"] for c in listed["items"]] == ["hello"] and listed["items"][0]["control_pct"] == 10


def test_send_report_deliveries_and_outbox(served):
    folder, api = served
    w, rd = api["write"], api["read"]
    dry = w.post("/api/campaigns/hello/send", {"as_of": "2026-11-01T09:00:00Z", "dry_run": True}).json()
    assert dry["dry_run"] and not (folder / "outbox" / "mail.jsonl").exists()
    r = w.post("/api/campaigns/hello/send", {"as_of": "2026-11-01T09:00:00Z"})
    assert r.status_code == 200, r.text
    run = r.json()
    assert run["audience"] == sum(run["outcomes"].values()) > 0 and run["planned_now"]
    again = w.post("/api/campaigns/hello/send", {"as_of": "2026-11-01T09:00:00Z"}).json()
    assert not again["planned_now"]
    sent = run["outcomes"].get("sent", 0)
    lines = (folder / "outbox" / "mail.jsonl").read_text().splitlines()
    assert len(lines) == sent > 0  # each message once
    shown = rd.get("/api/campaigns/hello").json()
    assert shown["runs"][run["run"]] == rd.get("/api/campaigns/hello").json()["runs"][run["run"]]
    rows, cursor = [], None
    while True:
        page = rd.get("/api/campaigns/hello/deliveries", limit=200, **({"cursor": cursor} if cursor else {})).json()
        rows += page["items"]
        cursor = page["next"]
        if not cursor:
            break
    assert len(rows) == run["audience"] and sum(r["outcome"] == "sent" for r in rows) == sent
    rep = rd.get("/api/campaigns/hello/report", as_of="2026-11-15")
    assert rep.status_code == 200, rep.text
    assert set(rep.json()["arms"]) == {"treatment", "control"}
    assert any(x["name"] == "hello" for x in rd.get("/api/deliveries").json())
    assert rd.get("/api/campaigns/nope/report").status_code == 404


def test_template_preview_and_global_control(served):
    folder, api = served
    (folder / "templates").mkdir(exist_ok=True)
    (folder / "templates" / "welcome.yaml").write_text(
        'subject: "Welcome {{ first_name }}"\ntext: "Hello {{ first_name }} from {{ city }}"\n', encoding="utf-8")
    r = api["read"].post("/api/templates/welcome/preview", {"contact_id": "C0000001"})
    assert r.status_code == 200, r.text
    assert r.json()["subject"].startswith("Welcome ")
    assert api["read"].post("/api/templates/welcome/preview", {"contact_id": "NOPE"}).status_code == 404
    r = api["write"].post("/api/campaigns/global-control", {"pct": 5, "salt": "s1"}).json()
    assert [e["pct"] for e in r["epochs"]] == [5]
    assert api["read"].get("/api/campaigns/global-control").json() == r


def test_triggers(served):
    _, api = served
    w = api["write"]
    doc = ("kind: trigger\nname: tag-buyers\non: {enter: buyers}\n"
           "action: {set_attribute: {name: buyer_tag, value: yes}}\nsince: 2026-10-01T00:00:00Z\n")
    assert w.post("/api/triggers", content=doc.encode(), content_type="application/yaml").status_code == 201
    bad = w.post("/api/triggers", {"kind": "trigger", "name": "t2", "on": {"enter": "buyers", "exit": "buyers"},
                                   "action": {"set_attribute": {"name": "x", "value": 1}}})
    assert bad.status_code == 400 and "exactly one" in bad.json()["message"]
    fired = w.post("/api/triggers/fire", {"as_of": "2026-11-02", "names": ["tag-buyers"]}).json()
    assert fired[0]["fired"] > 0
    again = w.post("/api/triggers/fire", {"as_of": "2026-11-02"}).json()
    assert sum(r["fired"] for r in again) == 0  # never twice for one occurrence
    t = api["read"].get("/api/triggers/tag-buyers").json()
    assert t["occurrences"].get("done", 0) == fired[0]["fired"]
    occ = api["read"].get("/api/triggers/tag-buyers/occurrences", limit=1000).json()
    assert occ["total"] == fired[0]["fired"] == len(occ["items"])
    assert w.delete("/api/triggers/tag-buyers").json()["action"] == "deleted"
    assert api["read"].get("/api/triggers/tag-buyers").status_code == 404


def test_exports_and_their_files(served):
    folder, api = served
    w, rd = api["write"], api["read"]
    r = w.post("/api/exports", {"segment": "buyers", "format": "csv", "fields": ["contact_id", "email"]})
    assert r.status_code == 201, r.text
    e = r.json()
    assert e["file"].startswith(str(folder / "exports"))
    f = rd.get(f"/api/exports/{e['export_id']}/file")
    assert f.status_code == 200 and f.text.splitlines()[0] == "contact_id,email"
    assert len(f.text.splitlines()) == e["rows"] + 1
    r = w.post("/api/exports", {"segment": "buyers", "format": "meta", "changes_since_last": True}).json()
    assert r["incremental"] and r["added"] == r["audience"]
    assert rd.get(f"/api/exports/{r['export_id']}/removals").status_code in (200, 404)
    hist = rd.get("/api/exports", segment="buyers").json()
    assert [x["format"] for x in hist["items"]] == ["csv", "meta"] and hist["items"][0]["counts"]
    assert rd.get("/api/exports/999").status_code == 404
    assert w.post("/api/exports", {"segment": "nope"}).status_code == 404


def test_erasure_over_rest_needs_admin_and_leaves_an_audit(served):
    _, api = served
    cid = api["read"].get("/api/segments/buyers/members", limit=1).json()["items"][0]["contact_id"]
    assert api["write"].delete(f"/api/contacts/{cid}").status_code == 403
    r = api["admin"].delete(f"/api/contacts/{cid}", compact="false")
    assert r.status_code == 200, r.text
    audit = r.json()
    assert audit["by"] == "admin" and audit["tables"]["contacts"] == 1 and not audit["compacted"]
    assert api["read"].get(f"/api/contacts/{cid}").status_code == 404
    members = api["read"].get("/api/segments/buyers/members", limit=1000).json()["items"]
    assert cid not in {m["contact_id"] for m in members}
    again = api["admin"].delete(f"/api/contacts/{cid}")
    assert again.status_code == 404 and "was erased on" in again.json()["message"]
    sync = api["write"].post("/api/crm/contacts", {"records": [{"contact_id": cid, "created_at": "2026-11-02"}]}).json()
    assert sync["records"][0]["status"] == "suppressed" and sync["suppressed"] == 1
    log = api["admin"].get("/api/privacy/erasures").json()
    assert [x["erasure_id"] for x in log] == [audit["erasure_id"]] and cid not in json.dumps(log)
    r = api["admin"].post("/api/privacy/readmit", {"contact_id": cid, "reason": "asked to rejoin"})
    assert r.status_code == 200 and r.json()["lifted"] == 1
    again = api["write"].post("/api/crm/contacts", {"records": [{"contact_id": cid, "created_at": "2026-11-02"}]}).json()
    assert again["records"][0]["status"] == "accepted"
