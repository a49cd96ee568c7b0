"""Hostile requests against a real ``segmentum serve``: deep nesting, skewed and absurd clocks,
numbers JSON cannot carry, text that is not Unicode, type confusion, a BOM, duplicate keys,
trailing bytes. Every request is answered 200, 400 or 413 (never a 500), the server and its
consumer stay up, and every track event answered 200 ends exactly once in ``events`` or in
``_quarantine`` with its reason: nothing acknowledged is lost."""

from __future__ import annotations

import datetime as _dt
import json

import duckdb
import httpx
import pytest

from tests.service._server import Server, basic, new_key

NOW = _dt.datetime.now(_dt.UTC)


def _iso(t: _dt.datetime) -> str:
    return t.isoformat().replace("+00:00", "Z")


def _nested(depth: int) -> dict:
    value: dict = {"leaf": 1}
    for _ in range(depth):
        value = {"a": value}
    return value


def _track(mid: str, **fields) -> dict:
    return {"type": "track", "userId": "u-hostile", "event": "Hostile Probe", "messageId": mid, **fields}


# messageId -> body: each is one track event that a lenient reading can store
STORABLE = {
    "deep-250": _track("deep-250", properties=_nested(250)),
    "clock-ahead": _track("clock-ahead", originalTimestamp=_iso(NOW), sentAt=_iso(NOW + _dt.timedelta(days=365))),
    "clock-behind": _track("clock-behind", originalTimestamp="1970-01-01T00:00:00Z", sentAt="1970-01-01T00:00:05Z"),
    "far-future": _track("far-future", timestamp="9999-12-31T23:59:59Z"),
    "far-past": _track("far-past", timestamp="0001-01-01T00:00:00Z"),
    "bad-time-text": _track("bad-time-text", timestamp="yesterday-ish"),
    "big-numbers": _track("big-numbers", properties={"n": 2**64, "m": -(2**63) - 1, "f": 1e308, "z": -0.0}),
    "unicode": _track("unicode", event="Achat \u2764\ufe0f \u05e9\u05dc\u05d5\u05dd \u200b\u200d",
                      properties={"\u00e9t\u00e9": "\U0001f600", "rtl": "\u202e"}),
    "nul-in-name": _track("nul-in-name", event="ev\u0000il", properties={"k\u0000": "v"}),
    "long-name": _track("long-name", event="x" * 20_000),
    "odd-keys": _track("odd-keys", properties={"": 1, " ": 2, "a.b": 3, "'; DROP TABLE events; --": 4,
                                                "$where": 5, "\"q\"": 6}),
    "props-list": _track("props-list", properties=[1, 2, 3]),
    "props-text": _track("props-text", properties="not an object"),
    "context-number": _track("context-number", context=42),
    "user-number": _track("user-number", userId=12345),
    "long-message-id-" + "m" * 2_000: None,  # filled below
}
LONG_MID = next(k for k in STORABLE if k.startswith("long-message-id-"))
STORABLE[LONG_MID] = _track(LONG_MID)

# raw bodies no reading can store: each must be answered 400 or 413 and store nothing
UNREADABLE = {
    "deep-5000": b'{"type":"track","userId":"u","event":"e","messageId":"deep-5000","properties":'
    + b'{"a":' * 5_000 + b"1" + b"}" * 5_001,
    "lone-surrogate": b'{"type":"track","userId":"u","event":"e","messageId":"lone","properties":{"s":"\\ud800"}}',
    "nan": b'{"type":"track","userId":"u","event":"e","messageId":"nan","properties":{"x":NaN}}',
    "infinity": b'{"type":"track","userId":"u","event":"e","messageId":"inf","properties":{"x":1e400}}',
    "bom": b'\xef\xbb\xbf{"type":"track","userId":"u","event":"e","messageId":"bom"}',
    "latin-1": '{"type":"track","userId":"u","event":"caf\u00e9","messageId":"latin"}'.encode("latin-1"),
    "trailing": b'{"type":"track","userId":"u","event":"e","messageId":"trail"} {"again":1}',
    "empty": b"",
    "array": b"[1,2,3]",
}


@pytest.fixture(scope="module")
def outcome(tmp_path_factory):
    """Send everything to one server, let its consumer apply it, stop it; the answers and the
    workspace afterwards."""
    ws = tmp_path_factory.mktemp("hostile") / "ws.duckdb"
    key = new_key(ws, "web")
    headers = {"Content-Type": "application/json", **basic(key)}
    answers: dict[str, httpx.Response] = {}
    with Server(ws) as server, httpx.Client(base_url=server.url, headers=headers, timeout=30) as client:
        for mid, body in STORABLE.items():
            answers[mid] = client.post("/v1/track", content=json.dumps(body).encode())
        answers["deep-300"] = client.post("/v1/track", content=json.dumps(_track("deep-300", properties=_nested(300))).encode())
        dup = json.dumps({"type": "track", "userId": "u", "event": "first", "event ": "x",
                          "messageId": "dup-keys"}).replace('"event ": "x"', '"event": "second"')
        answers["dup-keys"] = client.post("/v1/track", content=dup.encode())
        for name, raw in UNREADABLE.items():
            answers[name] = client.post("/v1/track", content=raw)
        batch = [_track(f"b-{i}") if i % 3 else {"type": "track", "messageId": f"b-{i}"} for i in range(2_500)]
        answers["batch"] = client.post("/v1/batch", content=json.dumps({"batch": batch}).encode())
        health = server.wait_applied()
        alive = client.get("/health").status_code
    con = duckdb.connect(str(ws), read_only=True)
    try:
        events = dict(con.execute("SELECT event_id, type FROM events").fetchall())
        times = dict(con.execute("SELECT event_id, occurred_at FROM events").fetchall())
        quarantined = [dict(json.loads(raw), _reason=reason)
                       for raw, reason in con.execute("SELECT raw, reason FROM _quarantine").fetchall()]
    finally:
        con.close()
    return answers, health, alive, events, quarantined, times


def test_every_request_is_answered_without_a_server_error(outcome):
    answers, health, alive, *_ = outcome
    assert {name: r.status_code for name, r in answers.items() if r.status_code not in (200, 400, 413)} == {}
    assert alive == 200 and health["consumer"]["last_error"] is None, health


def test_unreadable_bodies_are_refused_with_a_reason(outcome):
    answers, *_ = outcome
    for name in UNREADABLE:
        r = answers[name]
        assert r.status_code in (400, 413), (name, r.text)
        body = r.json()
        assert body["code"] and body["message"], (name, body)


def test_a_body_that_is_not_utf8_is_located_by_byte(outcome):
    answers, *_ = outcome
    body = answers["latin-1"].json()
    assert "not UTF-8: byte 0xE9 at offset" in body["message"] and body["line"] == 1, body


def test_every_acknowledged_event_is_stored_or_quarantined_once(outcome):
    answers, _, _, events, quarantined, _ = outcome
    acked = [mid for mid in (*STORABLE, "dup-keys") if answers[mid].status_code == 200]
    assert len(acked) >= len(STORABLE) - 6, {m: answers[m].text for m in STORABLE if m not in acked}
    assert all(q["_reason"] for q in quarantined)
    in_quarantine = [q.get("event_id", "") for q in quarantined]
    for mid in acked:
        stored = f"web:{mid}" in events
        held = sum(eid == f"web:{mid}" for eid in in_quarantine)
        assert stored + held == 1, (mid, stored, held)


def test_refused_events_leave_nothing_behind(outcome):
    answers, _, _, events, *_ = outcome
    for mid in STORABLE:
        if answers[mid].status_code != 200:
            assert f"web:{mid}" not in events
            assert answers[mid].json()["rejected"], answers[mid].text
    assert not any(eid.endswith((":deep-5000", ":lone", ":nan", ":inf", ":bom", ":latin", ":trail")) for eid in events)


def test_a_batch_with_invalid_events_lists_them_and_stores_the_rest(outcome):
    answers, _, _, events, *_ = outcome
    r = answers["batch"]
    assert r.status_code == 400
    body = r.json()
    rejected = {p["index"] for p in body["rejected"]}
    assert rejected == {i for i in range(2_500) if i % 3 == 0}
    assert body["accepted"] == 2_500 - len(rejected)
    assert sum(eid.startswith("web:b-") for eid in events) == body["accepted"]


def test_an_event_nested_past_what_can_be_stored_is_refused_by_name(outcome):
    answers, *_ = outcome
    r = answers["deep-300"]
    assert r.status_code == 400, r.text
    [problem] = r.json()["rejected"]
    assert problem["messageId"] == "deep-300" and "254 levels" in problem["reason"]


def test_duplicate_keys_keep_the_last_value(outcome):
    answers, _, _, events, *_ = outcome
    assert answers["dup-keys"].status_code == 200
    assert events["web:dup-keys"] == "second"


def test_client_clocks_are_corrected_by_their_skew(outcome):
    """timestamp = receivedAt - (sentAt - originalTimestamp): a client a year ahead, or one
    whose clock says 1970, both land at about the moment the server received them."""
    answers, *_, times = outcome
    for mid in ("clock-ahead", "clock-behind"):
        assert answers[mid].status_code == 200
        at = times[f"web:{mid}"].astimezone(_dt.UTC)
        expected = NOW - _dt.timedelta(days=365) if mid == "clock-ahead" else NOW
        assert abs((at - expected).total_seconds()) < 600, (mid, at)
