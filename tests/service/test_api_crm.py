"""CRM sync over a real `segmentum serve`: records in with an answer per record, consent
changes and segment changes out after a cursor, and webhooks delivered to a real receiver
on loopback - signed, in order, each change once, retried while the receiver fails, and
resumed after the server is killed."""

from __future__ import annotations

import http.server
import json
import threading
import time

import pytest

from segmentum.activation.channels.webhook import SIGNATURE, TIMESTAMP, verify
from tests.service._api import AS_OF, api_workspace, copy_workspace, serve  # noqa: F401 - fixture
from tests.service._server import Server


class Receiver:
    """An http.server on 127.0.0.1 recording POSTs; answers from ``codes`` (then 200)."""

    def __init__(self) -> None:
        self.posts: list[dict] = []
        self.codes: list[int] = []
        sink = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers["Content-Length"]))
                code = sink.codes.pop(0) if sink.codes else 200
                sink.posts.append({"headers": dict(self.headers), "body": body, "code": code})
                self.send_response(code)
                self.end_headers()

            def log_message(self, *a):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def delivered(self) -> list[dict]:
        return [json.loads(p["body"]) for p in self.posts if p["code"] == 200]

    def close(self) -> None:
        self.server.shutdown()


@pytest.fixture(scope="module")
def served(api_workspace, tmp_path_factory):  # noqa: F811
    ws = copy_workspace(api_workspace, tmp_path_factory.mktemp("crm"))
    server, apis = serve(ws)
    yield server, apis, ws
    server.stop()


def test_records_in_are_answered_one_by_one(served):
    _, api, _ = served
    w = api["write"]
    r = w.post("/api/crm/contacts", {"records": [
        {"contact_id": "CRM-1", "email": "one@crm.example", "created_at": "2026-10-01", "tier": "gold"},
        {"contact_id": "CRM-2", "created_at": "last tuesday"},
        {"email": "no-id@crm.example", "created_at": "2026-10-01"},
        {"contact_id": "CRM-1", "email": "dup@crm.example", "created_at": "2026-10-01"},
    ]})
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["input"], body["accepted"] + body["quarantined"] + body["suppressed"]) == (4, 4)
    status = [a["status"] for a in body["records"]]
    assert status[0] in ("accepted", "quarantined") and status[1] == status[2] == "quarantined"
    assert body["records"][1]["field"] == "created_at" and "not a date-time" in body["records"][1]["reason"]
    assert body["records"][2]["field"] == "contact_id"
    assert body["source"] == "crm:write"
    q = api["read"].get("/api/contacts", q="crm-").json()
    assert [c["contact_id"] for c in q["items"]] == (["CRM-1"] if "accepted" in status else [])
    # a stage change is a deal row with the new stage
    ok = w.post("/api/crm/contacts", {"records": [{"contact_id": "CRM-9", "created_at": "2026-10-01"}]})
    assert ok.json()["records"] == [{"index": 0, "status": "accepted", "reason": None, "field": None}]
    deals = [{"deal_id": "D-9", "contact_id": "CRM-9", "stage": "lead", "updated_at": "2026-10-02"},
             {"deal_id": "D-9", "contact_id": "CRM-9", "stage": "proposal_sent", "updated_at": "2026-10-09"},
             {"deal_id": "D-10", "contact_id": "CRM-404", "stage": "lead", "updated_at": "2026-10-09"}]
    r = w.post("/api/crm/deals", {"records": deals}).json()
    assert [a["status"] for a in r["records"]] == ["accepted", "accepted", "quarantined"]
    r = w.post("/api/crm/deals", {"records": deals[2:], "create_contacts": True}).json()
    assert r["records"][0]["status"] == "accepted" and r["contacts_created"] == 1
    card = api["read"].get("/api/contacts/CRM-9", as_of="2026-10-10").json()
    assert [d["stage"] for d in card["deals"]] == ["proposal_sent"]
    assert w.post("/api/crm/contacts", {"records": []}).status_code == 400
    assert w.post("/api/crm/nonsense", {"records": [{}]}).status_code == 400
    assert api["read"].post("/api/crm/contacts", {"records": [{"contact_id": "x"}]}).status_code == 403


def test_consent_changes_after_a_cursor(served):
    from segmentum.activation import consent
    from segmentum.workspace import open_workspace

    server, api, ws_path = served
    first = api["read"].get("/api/crm/consent/changes").json()
    assert first["items"] == [] and first["next"]
    server.stop()
    with open_workspace(ws_path) as ws:
        consent.unsubscribe(ws, "C0000001", "email", source="footer-link")
        consent.unsubscribe(ws, "C0000002", "all", source="support", scope="all")
    server.start()
    got = api["read"].get("/api/crm/consent/changes", since=first["next"]).json()
    assert [(c["contact_id"], c["action"], c["source"]) for c in got["items"]] == [
        ("C0000001", "unsubscribe", "footer-link"), ("C0000002", "unsubscribe", "support")]
    assert got["items"][0]["email"]
    step = api["read"].get("/api/crm/consent/changes", since=first["next"], limit=1).json()
    rest = api["read"].get("/api/crm/consent/changes", since=step["next"]).json()
    assert step["has_more"] and [*step["items"], *rest["items"]] == got["items"]
    assert api["read"].get("/api/crm/consent/changes", since=got["next"]).json()["items"] == []


def _wait(cond, timeout=60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(0.2)
    raise AssertionError("timed out")


@pytest.mark.slow
def test_webhooks_are_signed_in_order_once_and_retried(served):
    server, api, ws_path = served
    admin, w = api["admin"], api["write"]
    rx = Receiver()
    try:
        w.post("/api/segments", {"name": "recent", "rule": "count(orders, last 30 days) >= 1"})
        w.post("/api/segments/recent/refresh", as_of="2026-09-01")  # before the subscription
        r = admin.post("/api/crm/webhooks", {"url": rx.url, "segments": ["recent"]})
        assert r.status_code == 201, r.text
        hook, secret = r.json()["webhook_id"], r.json()["secret"]
        assert "secret" not in admin.get(f"/api/crm/webhooks/{hook}").json()
        assert w.post("/api/crm/webhooks", {"url": rx.url}).status_code == 403
        assert admin.post("/api/crm/webhooks", {"url": "ftp://x"}).status_code == 400
        rx.codes = [503]  # the first attempt fails
        w.post("/api/segments/recent/refresh", as_of="2026-10-01")
        w.post("/api/segments/recent/refresh", as_of=AS_OF)
        feed = api["read"].get("/api/segments/recent/changes", since="2026-09-02", limit=5000).json()
        expected = [c["id"] for c in feed["items"]]
        assert expected
        _wait(lambda: sum(len(b["events"]) for b in rx.delivered()) >= len(expected), 120)
        got = [e["id"] for b in rx.delivered() for e in b["events"]]
        assert got == expected  # in feed order, each once, nothing from before the subscription
        assert [p["code"] for p in rx.posts[:2]] == [503, 200]
        assert len({p["headers"]["Idempotency-Key"] for p in rx.posts[:2]}) == 1  # the same batch again
        for p in rx.posts:
            h = p["headers"]
            assert verify(secret, h[TIMESTAMP], p["body"], h[SIGNATURE])
        info = admin.get(f"/api/crm/webhooks/{hook}").json()
        assert (info["delivered"], info["pending"], info["failed"]) == (len(expected), 0, 0)
        q = admin.get(f"/api/crm/webhooks/{hook}/deliveries", status="delivered", limit=1000).json()
        assert [x["event_id"] for x in q["items"]] == expected and q["items"][0]["attempts"] == 2
        # killed mid-stream: what was queued is delivered after the restart, nothing twice
        sent = len(rx.posts)
        rx.codes = [500]
        w.post("/api/segments/recent/refresh", as_of="2026-11-15")
        _wait(lambda: len(rx.posts) > sent)
        server.kill()
        server.start()
        more = api["read"].get("/api/segments/recent/changes", since="2026-11-15", limit=5000).json()["items"]
        _wait(lambda: len({e["id"] for b in rx.delivered() for e in b["events"]}) >= len(expected) + len(more), 120)
        ids = [e["id"] for b in rx.delivered() for e in b["events"]]
        assert ids == expected + [c["id"] for c in more]
        assert admin.delete(f"/api/crm/webhooks/{hook}").status_code == 204
        assert admin.get(f"/api/crm/webhooks/{hook}").status_code == 404
    finally:
        rx.close()


def test_failed_batches_wait_for_a_retry(served):
    from segmentum.crm import webhooks as W
    from segmentum.workspace import open_workspace

    server, api, ws_path = served
    server.stop()
    with open_workspace(ws_path) as ws:
        from segmentum.segments import SegmentEngine

        SegmentEngine(ws).create("one", 'contact_id = "C0000001"')
        row, _ = W.create_webhook(ws, "http://127.0.0.1:9/none", segments=["one"], by="t")
        SegmentEngine(ws).refresh(["one"], AS_OF)
        assert W.enqueue(ws) == 1 and W.enqueue(ws) == 0  # queued once
        batch = W.due(ws)[0]
        for n in range(W.MAX_ATTEMPTS):
            status = W.record(ws, batch, "HTTP 500", now=None)
            batch = W.Batch(**{**batch.__dict__, "attempts": n + 1})
        assert status == "failed" and W.due(ws) == []
        assert W.retry(ws, row["webhook_id"]) == 1 and len(W.due(ws)) == 1
    server.start()
