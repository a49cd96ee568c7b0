"""Live segments in a real `segmentum serve`: entries and triggers from tracked events, exactly
once across kill -9; freshness and /metrics; an evaluation made to fail raises the alarm on
the log, the metric and a real webhook receiver."""

from __future__ import annotations

import datetime as _dt
import hashlib
import hmac
import http.server
import json
import random
import threading
import time

import httpx
import orjson
import pytest

from segmentum import open_workspace
from segmentum.activation.triggers import TriggerStore, loads_trigger
from segmentum.segments.engine import SegmentEngine
from tests.service._server import Server, basic, new_key
from tests.workspaces import build_workspace

N = 60
TRIGGER = """
kind: trigger
name: welcome-openers
on: {enter: openers}
action:
  set_attribute: {name: welcomed, value: "yes"}
reentry: once
"""


def _workspace(path):
    long_ago = (_dt.datetime.now(_dt.UTC) - _dt.timedelta(days=400)).isoformat()
    contacts = [{"contact_id": f"C{i:03d}", "created_at": long_ago, "email_opt_in": True} for i in range(N)]
    events = [{"event_id": "E0", "contact_id": "C000", "type": "email_open", "occurred_at": long_ago}]
    ws = build_workspace(path, contacts=contacts, events=events, rfm=_rfm())
    eng = SegmentEngine(ws)
    eng.create("openers", "count(email_open, last 1 day) >= 1")
    eng.create("scored", "rfm.r = 3 and count(email_open, last 1 day) >= 1")
    TriggerStore(ws).save(loads_trigger(TRIGGER))
    ws.close()


def _rfm():
    import pandas as pd

    return pd.DataFrame({"contact_id": [f"C{i:03d}" for i in range(N)], "r": [3] * N})


def _open(i: int) -> dict:
    return {"type": "track", "userId": f"C{i:03d}", "event": "Email Opened", "messageId": f"open-{i}"}


@pytest.mark.slow
def test_entries_and_triggers_happen_once_across_kill_9(tmp_path):
    ws = tmp_path / "ws.duckdb"
    _workspace(ws)
    key = new_key(ws, "web", "track,read")
    server = Server(ws).start()
    todo, rng = list(range(N)), random.Random(3)
    killed = False
    with httpx.Client(timeout=5) as http:
        while todo:
            batch = todo[: rng.randint(1, 4)]
            try:
                r = http.post(server.url + "/v1/batch", content=orjson.dumps({"batch": [_open(i) for i in batch]}),
                              headers=basic(key))
                ok = r.status_code == 200
            except httpx.HTTPError:
                ok = False
            if ok:
                del todo[: len(batch)]
            if not killed and len(todo) < N // 2:
                time.sleep(rng.uniform(0.0, 0.3))  # somewhere in the middle of applying and evaluating
                server.kill()
                killed = True
                server = Server(ws).start()
    server.wait_applied()
    fresh = httpx.get(server.url + "/api/live/freshness", headers=basic(key)).json()
    assert {r["segment"] for r in fresh} == {"openers", "scored"}
    assert all(r["lag_seconds"] == 0 and r["last_error"] is None for r in fresh)
    assert server.stop() in (0, -15)
    with open_workspace(ws) as w:
        m = w.to_pandas(w.table("segment_memberships"))
        occ = w.to_pandas(w.table("trigger_occurrences"))
        welcomed = w.to_pandas(w.table("contacts").select("contact_id", "welcomed"))
    for segment in ("openers", "scored"):
        rows = m[m.segment == segment]
        assert sorted(rows.contact_id) == [f"C{i:03d}" for i in range(N)]  # each entered once
        assert rows.exited_at.isna().all()
    assert len(occ) == N and occ.contact_id.is_unique and (occ.status == "done").all()
    assert set(occ.detail) == set(m[m.segment == "openers"].interval_id)
    assert (welcomed.welcomed == "yes").all()


class _Receiver(http.server.BaseHTTPRequestHandler):
    got: list = []

    def do_POST(self):  # noqa: N802 - http.server's name
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).got.append((dict(self.headers), json.loads(body)))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


def test_a_failing_evaluation_raises_the_alarm_everywhere(tmp_path, caplog):
    from fastapi.testclient import TestClient

    from segmentum.service.app import create_app
    from segmentum.service.settings import ServeSettings
    from segmentum.service.state import ServiceState

    ws = tmp_path / "ws.duckdb"
    _workspace(ws)
    key = new_key(ws, "web", "track,read")
    receiver = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    settings = ServeSettings(workspace=str(ws), fsync=False, live_alarm_secret="s3cret",
                             live_alarm_webhook=f"http://127.0.0.1:{receiver.server_address[1]}/alarms")
    state = ServiceState.open(settings)
    try:
        with TestClient(create_app(settings, state)) as client:
            assert client.post("/v1/batch", json={"batch": [_open(1)]}, headers=basic(key)).status_code == 200
            _applied(client, key)
            metrics = client.get("/metrics", headers=basic(key)).text
            assert 'segmentum_live_membership_changes_total{change="entered"} 2.0' in metrics
            assert "segmentum_live_evaluation_lag_seconds_count 1.0" in metrics
            # the scores table disappears under the service: "scored" can't be evaluated
            state.access.call(lambda w: w.warehouse.raw.execute("DROP TABLE rfm"))
            assert client.post("/v1/batch", json={"batch": [_open(2)]}, headers=basic(key)).status_code == 200
            _applied(client, key)
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline and not _Receiver.got:
                time.sleep(0.1)
            fresh = {f["segment"]: f for f in client.get("/api/live/freshness", headers=basic(key)).json()}
            metrics = client.get("/metrics", headers=basic(key)).text
            alarms = client.get("/api/live/alarms", headers=basic(key)).json()
            members = state.access.call(lambda w: SegmentEngine(w).store.members("openers").to_pandas())
    finally:
        receiver.shutdown()
    assert fresh["scored"]["last_error"] and fresh["scored"]["failing_since"] and fresh["scored"]["lag_seconds"] > 0
    assert fresh["openers"]["last_error"] is None  # the other segment went on
    assert sorted(members.contact_id) == ["C001", "C002"]
    assert 'segmentum_alarms_total{kind="evaluation_failed"} 1.0' in metrics
    assert 'segmentum_live_errors_total{kind="evaluation"} 1.0' in metrics
    assert [a["segment"] for a in alarms if a["alarm"] == "evaluation_failed"] == ["scored"]
    headers, body = _Receiver.got[0]
    assert body["alarm"] == "evaluation_failed" and body["segment"] == "scored"
    assert "rfm" in body["details"]["error"]
    signed = hmac.new(b"s3cret", orjson.dumps(body), hashlib.sha256).hexdigest()
    assert headers["X-Segmentum-Signature"] == f"sha256={signed}"
    assert any("alarm evaluation_failed for scored" in r.getMessage() for r in caplog.records)


def _applied(client, key, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if client.get("/health").json()["consumer"]["backlog"] == 0:
            return
        time.sleep(0.05)
    raise AssertionError("the consumer did not catch up")
