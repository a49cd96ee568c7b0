"""Erasure: nothing of an erased contact is left in any table or file the workspace owns,
and its identifiers stay out of later loads and tracked events until it is readmitted.

The workspace gets the contact everywhere first (orders, events, deals, memberships, RFM,
CLV, personas, life stage, an export in two formats, a campaign's delivery log and
outbox, control assignments, trigger occurrences, consent events, a CRM webhook queue,
quarantined records, tracked identifies and events with an anonymous id, in the intake
log), and the same scan that must find nothing afterwards finds it there before."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import duckdb
import httpx
import pytest

from segmentum.workspace import open_workspace
from tests.service._api import AS_OF, api_workspace, copy_workspace  # noqa: F401 - fixture
from tests.service._server import Server, basic, new_key

BIN = Path(sys.executable).parent / "segmentum"
OWN = {"_erased", "_erasure_salt", "erasures"}  # hashes and counts only


def table_hits(path: Path, needles: list[str]) -> dict[str, int]:
    """table.column -> rows whose text holds a needle, over every column of every table."""
    con = duckdb.connect(str(path), read_only=True)
    try:
        cols = con.execute("SELECT table_name, column_name FROM information_schema.columns "
                           "WHERE table_schema = 'main'").fetchall()
        hits = {}
        for table, col in cols:
            if table in OWN:
                continue
            cond = " OR ".join(f'contains(lower("{col}"::VARCHAR), ${i + 1})' for i in range(len(needles)))
            n = con.execute(f'SELECT count(*) FROM "{table}" WHERE {cond}', needles).fetchone()[0]
            if n:
                hits[f"{table}.{col}"] = n
        return hits
    finally:
        con.close()


def file_hits(folder: Path, needles: list[str]) -> dict[str, int]:
    """file -> occurrences of the needles in its bytes (lower-cased), for every file."""
    out = {}
    for f in sorted(p for p in folder.rglob("*") if p.is_file()):
        data = f.read_bytes().lower()
        n = sum(data.count(x.encode()) for x in needles)
        if n:
            out[str(f.relative_to(folder))] = n
    return out


def cli(*args, check=True) -> subprocess.CompletedProcess:
    r = subprocess.run([str(BIN), *args], capture_output=True, text=True)
    if check and r.returncode:
        raise AssertionError(r.stdout + r.stderr)
    return r


def _person(ws) -> dict:
    c, o, d = ws.table("contacts"), ws.table("orders"), ws.table("deals")
    buyers = o.select("contact_id").distinct()
    dealers = d.select("contact_id").distinct()
    rows = (c.filter(c.email.notnull() & c.phone.notnull() & c.email_opt_in & c.ads_opt_in)
            .semi_join(buyers, "contact_id").semi_join(dealers, "contact_id")
            .order_by("contact_id").limit(1).to_pyarrow().to_pylist())
    return rows[0]


def _enrich(ws, wsdir: Path, p: dict) -> None:
    """Put the contact in every place the workspace keeps something."""
    from segmentum.activation import consent
    from segmentum.activation.campaigns import CampaignStore, loads_campaign
    from segmentum.activation.exports import export_segment
    from segmentum.activation.runs import send_campaign
    from segmentum.activation.triggers import TriggerStore, fire, loads_trigger
    from segmentum.analytics.lifestage import lifestage
    from segmentum.crm.webhooks import create_webhook, enqueue
    from segmentum.data.ingest import load_records
    from segmentum.personas.model import save_personas
    from segmentum.personas.run import discover_personas
    from segmentum.segments import SegmentEngine
    from segmentum.clock import to_utc

    eng = SegmentEngine(ws)
    eng.create("buyers", "count(orders) >= 1")
    create_webhook(ws, "http://127.0.0.1:9/hook", segments=["buyers"], by="test")
    TriggerStore(ws).save(loads_trigger(
        "kind: trigger\nname: welcome\non: {enter: buyers}\naction: {set_attribute: {name: tagged, value: yes}}\n"))
    fire(ws, "2026-10-01")
    eng.refresh(["buyers"], AS_OF)
    fire(ws, AS_OF)
    enqueue(ws)
    lifestage(ws, AS_OF, write=True)
    save_personas(ws, discover_personas(ws, to_utc(AS_OF), k=3, sample=2000))
    exports = wsdir / "exports"
    exports.mkdir()
    export_segment(ws, "buyers", "csv", exports / "buyers.csv", fields=["contact_id", "email", "phone"])
    export_segment(ws, "buyers", "meta", exports / "buyers-meta.csv")
    (wsdir / "segmentum.yaml").write_text("timezone: UTC\nchannels:\n  email:\n    type: outbox\n"
                                          "    path: outbox/mail.jsonl\n", encoding="utf-8")
    campaign = loads_campaign("name: hello\naudience: {segment: buyers}\nchannel: email\n"
                              "content: {subject: 'Hi {{ first_name }}', text: 'Hello {{ email }}'}\n"
                              "control_pct: 10\n")
    CampaignStore(ws).save(campaign)
    send_campaign(ws, campaign, "2026-11-01T10:00:00Z")
    consent.unsubscribe(ws, p["contact_id"], "email", source="test")
    load_records(ws, "contacts", [{"contact_id": p["contact_id"], "email": p["email"],
                                   "created_at": "not a date"}], source="crm:test")


def _track(wsdir: Path, workspace: Path, p: dict) -> None:
    key = new_key(workspace, "web", "track")
    with Server(workspace, env={"SEGMENTUM_SERVE_FSYNC": "false"}) as server:
        batch = {"batch": [
            {"type": "track", "anonymousId": "anon-erase-1", "event": "Product Viewed",
             "messageId": "m1", "properties": {"sku": "X"}},
            {"type": "identify", "userId": p["contact_id"], "anonymousId": "anon-erase-1",
             "messageId": "m2", "traits": {"email": p["email"], "phone": p["phone"]}},
            {"type": "track", "userId": p["contact_id"], "event": "Email Opened", "messageId": "m3"},
            {"type": "track", "userId": "C0000001", "event": "Email Opened", "messageId": "m4"},
        ]}
        r = httpx.post(server.url + "/v1/batch", json=batch, headers=basic(key), timeout=30)
        assert r.status_code == 200, r.text
        server.wait_applied()


@pytest.mark.slow
def test_nothing_of_an_erased_contact_is_left_and_it_stays_out(api_workspace, tmp_path):  # noqa: F811
    wsdir = tmp_path / "workspace"
    workspace = copy_workspace(api_workspace, wsdir)
    with open_workspace(workspace) as ws:
        p = _person(ws)
        _enrich(ws, wsdir, p)
    _track(wsdir, workspace, p)
    cid, email, phone = p["contact_id"], p["email"].lower(), p["phone"]
    needles = [cid.lower(), email, phone.lower(), "anon-erase-1"]
    hashed = [hashlib.sha256(email.encode()).hexdigest()]
    before_tables = table_hits(workspace, needles)
    for where in ("contacts.email", "events.contact_id", "orders.contact_id", "deals.contact_id",
                  "segment_memberships.contact_id", "_rfm_rows.contact_id", "clv.contact_id",
                  "personas.contact_id", "export_members.contact_id", "deliveries.contact_id",
                  "delivery_messages.to", "consent_events.contact_id", "_identities.contact_id",
                  "_quarantine.raw", "trigger_occurrences.contact_id", "crm_webhook_deliveries.contact_id",
                  "order_items._contact_id"):
        assert where in before_tables, (where, before_tables)
    # (control_assignments and lifestage hold it only when it was drawn into a control group
    # or bought age-targeted products; the scan after covers them either way)
    before_files = file_hits(wsdir, needles + hashed)
    assert any(f.startswith("ws.duckdb.intake") for f in before_files), before_files
    assert {"exports/buyers.csv", "exports/buyers-meta.csv", "outbox/mail.jsonl"} <= set(before_files)

    r = cli("-w", str(workspace), "contact", "erase", cid, "--yes", "--by", "dpo", "--json")
    audit = json.loads(r.stdout)
    assert audit["compacted"] and audit["by"] == "dpo" and audit["warnings"] == []
    assert audit["tables"]["contacts"] == 1 and audit["tables"]["events"] > 0
    assert audit["files"]["intake log"] >= 3 and audit["tombstones"] >= 3
    assert audit["exports_affected"]

    assert table_hits(workspace, needles) == {}
    assert file_hits(wsdir, needles + hashed) == {}
    with open_workspace(workspace) as ws:
        d = ws.table("deliveries")
        assert d.filter(d.contact_id.startswith("erased:")).count().execute() >= 1  # reports keep the arm
        rows = ws.table("erasures").to_pyarrow().to_pylist()
        assert [r["action"] for r in rows] == ["erase"] and cid not in json.dumps(rows, default=str)

    # a later load or tracking call with its identifiers is suppressed ...
    from segmentum.data.ingest import load_records

    with open_workspace(workspace) as ws:
        r1 = load_records(ws, "contacts", [
            {"contact_id": "NEW-1", "email": f"  {p['email'].upper()} ", "created_at": "2026-11-02"},
            {"contact_id": "NEW-2", "phone": phone, "country": p["country"], "created_at": "2026-11-02"},
            {"contact_id": cid, "created_at": "2026-11-02"},
            {"contact_id": "NEW-3", "created_at": "2026-11-02"},
        ], source="crm:test")
        assert (r1.input, r1.accepted, r1.quarantined, r1.suppressed) == (4, 1, 0, 3)
        r2 = load_records(ws, "events", [{"contact_id": cid, "type": "page_view", "occurred_at": "2026-11-02"}],
                          source="test", create_contacts=True)
        assert (r2.accepted, r2.suppressed) == (0, 1)
    key = new_key(workspace, "web2", "track")
    with Server(workspace, env={"SEGMENTUM_SERVE_FSYNC": "false"}) as server:
        again = {"batch": [{"type": "identify", "userId": cid, "messageId": "m9", "traits": {"email": email}},
                           {"type": "track", "userId": "NEW-3", "event": "Email Opened", "messageId": "m10"}]}
        assert httpx.post(server.url + "/v1/batch", json=again, headers=basic(key), timeout=30).status_code == 200
        server.wait_applied()
    assert table_hits(workspace, needles) == {}

    # ... until it is readmitted
    r = cli("-w", str(workspace), "contact", "readmit", "--id", cid, "--email", p["email"],
            "--reason", "signed up again", "--json")
    assert json.loads(r.stdout)["lifted"] >= 2
    with open_workspace(workspace) as ws:
        r3 = load_records(ws, "contacts", [{"contact_id": cid, "email": p["email"], "created_at": "2026-11-03"}],
                          source="crm:test")
        assert (r3.accepted, r3.suppressed) == (1, 0)
        assert [r["action"] for r in ws.table("erasures").order_by("at").to_pyarrow().to_pylist()] == ["erase", "readmit"]
    r = cli("-w", str(workspace), "contact", "erase", "NOPE-1", "--yes", check=False)
    assert r.returncode == 2 and "No contact" in r.stderr
