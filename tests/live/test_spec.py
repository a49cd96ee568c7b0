"""The Segment Spec at the door: limits, per-event problems, clock-skew correction, gzip."""

from __future__ import annotations

import datetime as dt
import gzip

import orjson
import pytest

from segmentum.errors import PayloadError, PayloadTooLargeError
from segmentum.live.spec import Limits, decode_body, messages_of, parse_json

RECEIVED = dt.datetime(2026, 11, 1, 12, 0, 0, tzinfo=dt.UTC)


def parse(body, endpoint="batch", limits=Limits()):
    return messages_of(body, endpoint, source="web", received_at=RECEIVED, limits=limits)


def record(body, endpoint="batch") -> dict:
    p = parse(body, endpoint)
    assert not p.problems, p.problems
    return orjson.loads(p.messages[0].record)


@pytest.mark.parametrize(
    ("event", "field", "reason"),
    [
        ({"type": "track", "event": "x"}, "userId", "needs `userId` or `anonymousId`"),
        ({"type": "track", "userId": "u"}, "event", "needs `event`"),
        ({"type": "track", "userId": "u", "event": "  "}, "event", "needs `event`"),
        ({"type": "nope", "userId": "u"}, "type", "unknown type 'nope'"),
        ({"userId": "u"}, "type", "unknown type None"),
        ({"type": "alias", "userId": "u"}, "previousId", "needs `previousId`"),
        ({"type": "alias", "previousId": "a"}, "userId", "needs `userId`"),
        ({"type": "group", "userId": "u"}, "groupId", "needs `groupId`"),
        ({"type": "identify", "userId": {"a": 1}}, "userId", "must be text or a number"),
        ({"type": "identify", "userId": True}, "userId", "must be text or a number"),
        ({"type": "identify", "userId": "u" * 256}, "userId", "at most 255"),
        ({"type": "identify", "userId": "u", "traits": [1]}, "traits", "must be an object"),
        ({"type": "track", "userId": "u", "event": "e", "properties": "x"}, "properties", "must be an object"),
        ({"type": "track", "userId": "u", "event": "e", "timestamp": "yesterday"}, "timestamp", "not an ISO 8601"),
        ({"type": "track", "userId": "u", "event": "e", "timestamp": 1700000000}, "timestamp", "must be an ISO 8601"),
        ("not an object", "", "not an object"),
    ],
)
def test_each_invalid_event_is_named_with_its_field_and_reason(event, field, reason):
    ok = {"type": "track", "userId": "u", "event": "Viewed", "messageId": "ok"}
    p = parse({"batch": [ok, event]})
    assert len(p.messages) == 1 and p.messages[0].message_id == "ok"
    [problem] = p.problems
    assert problem["index"] == 1 and problem["field"] == field and reason in problem["reason"]


def test_clock_skew_is_corrected_from_sent_at():
    # the client's clock is 2 h fast: it says the event happened at 13:55, sent at 14:00
    r = record({"batch": [{"type": "track", "userId": "u", "event": "e", "timestamp": "2026-11-01T13:55:00Z"}],
                "sentAt": "2026-11-01T14:00:00+00:00"})
    assert r["timestamp"] == "2026-11-01T11:55:00Z"
    assert (r["originalTimestamp"], r["sentAt"], r["receivedAt"]) == (
        "2026-11-01T13:55:00Z", "2026-11-01T14:00:00Z", "2026-11-01T12:00:00Z")


def test_times_are_utc_and_never_after_receipt():
    r = record({"userId": "u", "event": "e", "originalTimestamp": "2026-11-01T10:00:00+02:00"}, "track")
    assert r["timestamp"] == "2026-11-01T08:00:00Z" and r["sentAt"] is None
    naive = record({"userId": "u", "event": "e", "timestamp": "2026-10-31T10:00:00"}, "track")
    assert naive["timestamp"] == "2026-10-31T10:00:00Z"
    future = record({"userId": "u", "event": "e", "timestamp": "2027-01-01T00:00:00Z"}, "track")
    assert future["timestamp"] == "2026-11-01T12:00:00Z"
    none = record({"userId": "u", "event": "e"}, "track")
    assert none["timestamp"] == none["receivedAt"] == "2026-11-01T12:00:00Z"


def test_batch_context_is_merged_and_the_write_key_never_stored():
    r = record({"batch": [{"type": "page", "anonymousId": 42, "context": {"ip": "1.2.3.4"}, "writeKey": "s"}],
                "context": {"ip": "9.9.9.9", "library": {"name": "x"}}, "writeKey": "secret"})
    assert r["context"] == {"ip": "1.2.3.4", "library": {"name": "x"}}
    assert "writeKey" not in r and r["anonymousId"] == "42" and r["source"] == "web"
    assert r["messageId"].startswith("api-")  # none sent: a random one


def test_the_endpoint_sets_the_type_of_a_single_call():
    r = record({"type": "track", "userId": "u", "traits": {"a": 1}}, "identify")
    assert r["type"] == "identify"


def test_limits():
    big = {"type": "track", "userId": "u", "event": "e", "properties": {"x": "a" * 40_000}}
    [problem] = parse({"batch": [big]}).problems
    assert problem["code"] == "payload_too_large" and "limit is 32,768" in problem["reason"]
    with pytest.raises(PayloadTooLargeError, match="2,501 events; the limit is 2,500"):
        parse({"batch": [{"type": "track", "userId": "u", "event": "e"}] * 2501})
    with pytest.raises(PayloadTooLargeError):
        decode_body(b"x" * 600_000, None, 500 * 1024)
    bomb = gzip.compress(b" " * 50_000_000)  # 50 MB of spaces in ~50 KB
    with pytest.raises(PayloadTooLargeError):
        decode_body(bomb, "gzip", 500 * 1024)


def test_bodies():
    assert decode_body(gzip.compress(b'{"a":1}'), "gzip", 100) == b'{"a":1}'
    with pytest.raises(PayloadError, match="not valid gzip"):
        decode_body(b"plain", "gzip", 100)
    with pytest.raises(PayloadError, match="not supported"):
        decode_body(b"{}", "br", 100)
    with pytest.raises(PayloadError, match="line 2, column 1") as e:
        parse_json(b'{"a":\n}')
    assert e.value.to_dict()["line"] == 2
    with pytest.raises(PayloadError, match='needs "batch"'):
        parse({"events": []})
    with pytest.raises(PayloadError, match="not an object"):
        parse([1, 2], "track")
