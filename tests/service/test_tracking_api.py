"""The tracking API over HTTP against a real `segmentum serve`: answers, keys, limits, gzip."""

from __future__ import annotations

import gzip
import json

import httpx
import pytest

from segmentum.service.keys import KeyStore, keys_path
from tests.service._server import Server, basic, new_key


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    ws = tmp_path_factory.mktemp("api") / "ws.duckdb"
    keys = {"web": new_key(ws, "web"), "app": new_key(ws, "app"), "reader": new_key(ws, "reader", "read"),
            "doomed": new_key(ws, "doomed")}
    with Server(ws) as server:
        server.keys = keys
        yield server


def post(served, path, body, key="web", headers=None, raw=None):
    h = {"Content-Type": "application/json", **(basic(served.keys[key]) if key else {}), **(headers or {})}
    content = raw if raw is not None else json.dumps(body).encode()
    return httpx.post(served.url + path, content=content, headers=h, timeout=30)


def end(served) -> int:
    return served.health()["log"]["end"]


@pytest.mark.parametrize("endpoint", ["identify", "track", "page", "screen", "group", "alias"])
def test_each_call_is_acknowledged_once_stored(served, endpoint):
    event = {"userId": "u1", "event": "Clicked", "groupId": "g1", "previousId": "a1",
             "messageId": f"call-{endpoint}"}
    before = end(served)
    r = post(served, f"/v1/{endpoint}", event)
    assert (r.status_code, r.json()) == (200, {"success": True})
    assert end(served) == before + 1


def test_batch_and_import(served):
    before = end(served)
    for path in ("/v1/batch", "/v1/import"):
        batch = [{"type": "track", "userId": "u2", "event": "Viewed", "messageId": f"{path}-{i}"} for i in range(50)]
        assert post(served, path, {"batch": batch}).status_code == 200
    assert end(served) == before + 100


def test_a_replayed_message_id_is_acknowledged_and_not_stored_again(served):
    batch = {"batch": [{"type": "track", "userId": "u3", "event": "Viewed", "messageId": "replay-1"}]}
    assert post(served, "/v1/batch", batch).status_code == 200
    before = end(served)
    for _ in range(3):
        assert post(served, "/v1/batch", batch).status_code == 200
    assert end(served) == before
    assert post(served, "/v1/batch", batch, key="app").status_code == 200  # another source
    assert end(served) == before + 1


def test_keys(served):
    event = {"userId": "u1", "event": "Clicked"}
    r = post(served, "/v1/track", event, key=None)
    assert r.status_code == 401 and r.json()["code"] == "unauthorized"
    r = post(served, "/v1/track", event, key=None, headers=basic("sgm_00000000_" + "x" * 43))
    assert (r.status_code, r.json()["message"]) == (401, "Unknown API key.")
    r = post(served, "/v1/track", event, key=None, headers={"Authorization": "Basic !!!"})
    assert r.status_code == 401
    r = post(served, "/v1/track", event, key="reader")
    assert r.status_code == 403 and r.json()["code"] == "forbidden"
    # writeKey in the body (segment-analytics-python 2.3.x) and a Bearer token
    assert post(served, "/v1/track", {**event, "writeKey": served.keys["web"]}, key=None).status_code == 200
    assert post(served, "/v1/track", event, key=None,
                headers={"Authorization": f"Bearer {served.keys['web']}"}).status_code == 200
    # revoked while the server runs: refused from the next request on
    assert post(served, "/v1/track", event, key="doomed").status_code == 200
    KeyStore(keys_path(served.workspace)).revoke("doomed")
    r = post(served, "/v1/track", event, key="doomed")
    assert r.status_code == 401 and "revoked" in r.json()["message"]


def test_invalid_events_are_listed_and_the_valid_ones_stored(served):
    before = end(served)
    batch = [{"type": "track", "userId": "u4", "event": "Viewed", "messageId": "ok-1"},
             {"type": "track", "userId": "u4", "messageId": "no-event"},
             {"type": "identify", "messageId": "no-user"},
             {"type": "track", "userId": "u4", "event": "Viewed", "messageId": "ok-2"}]
    r = post(served, "/v1/batch", {"batch": batch})
    body = r.json()
    assert r.status_code == 400 and body["code"] == "invalid_payload" and body["accepted"] == 2
    assert [(p["index"], p["messageId"], p["field"]) for p in body["rejected"]] == [
        (1, "no-event", "event"), (2, "no-user", "userId")]
    assert body["message"].startswith("2 of 4 events were rejected (2 others are stored); event 1 (messageId no-event)")
    assert end(served) == before + 2


def test_bad_bodies(served):
    r = post(served, "/v1/batch", None, raw=b'{"batch": [}')
    assert r.status_code == 400 and (r.json()["line"], r.json()["column"]) == (1, 12)
    r = post(served, "/v1/batch", {"batch": "x"})
    assert r.status_code == 400 and r.json()["field"] == "batch"
    r = post(served, "/v1/track", None, raw=b"[1]")
    assert r.status_code == 400 and "not an object" in r.json()["message"]


def test_limits_answer_413(served):
    big = {"userId": "u1", "event": "e", "properties": {"x": "a" * 40_000}}
    r = post(served, "/v1/track", big)
    assert r.status_code == 413 and r.json()["code"] == "payload_too_large"
    r = post(served, "/v1/batch", {"batch": [{"type": "track", "userId": "u", "event": "e"}] * 2501})
    assert r.status_code == 413
    r = post(served, "/v1/batch", {"batch": [{"type": "track", "userId": "u", "event": "e" * 200, "messageId": str(i)}
                                             for i in range(2400)]})
    assert r.status_code == 413 and "500" in r.json()["hint"]
    bomb = gzip.compress(json.dumps({"batch": [], "pad": " " * 20_000_000}).encode())
    r = post(served, "/v1/batch", None, raw=bomb, headers={"Content-Encoding": "gzip"})
    assert r.status_code == 413


def test_gzip_bodies(served):
    before = end(served)
    body = gzip.compress(json.dumps({"batch": [{"type": "page", "anonymousId": "a7", "messageId": "gz-1"}]}).encode())
    assert post(served, "/v1/batch", None, raw=body, headers={"Content-Encoding": "gzip"}).status_code == 200
    assert end(served) == before + 1
    r = post(served, "/v1/batch", None, raw=b"not gzip", headers={"Content-Encoding": "gzip"})
    assert r.status_code == 400


def test_errors_have_one_shape(served):
    r = httpx.get(served.url + "/v1/nothing", timeout=10)
    assert r.status_code == 404 and r.json()["code"] == "not_found"
    r = httpx.get(served.url + "/v1/track", timeout=10)
    assert r.status_code == 405 and r.json()["code"] == "method_not_allowed"
