"""/api/segments against a real `segmentum serve`: rules in and errors out with positions,
preview = the engine's count, refresh, history, members pages, the changes feed, explain,
scopes."""

from __future__ import annotations

import pytest

from segmentum.segments import SegmentEngine
from segmentum.workspace import open_workspace
from tests.service._api import AS_OF, api_workspace, copy_workspace, serve  # noqa: F401 - fixture

RULE = 'purchased(category = "Phones") or count(email_open, last 90 days) >= 3'


@pytest.fixture(scope="module")
def api(api_workspace, tmp_path_factory):  # noqa: F811
    ws = copy_workspace(api_workspace, tmp_path_factory.mktemp("segments"))
    server, apis = serve(ws)
    yield apis
    server.stop()


def test_a_bad_rule_answers_400_with_its_position(api):
    r = api["read"].post("/api/segments/check", {"rule": "count(emial_open, last 90 days) > 2"})
    assert r.status_code == 400
    body = r.json()
    assert (body["code"], body["line"], body["column"], body["end_column"]) == ("unknown_name", 1, 7, 17)
    assert "email_open" in body["hint"]
    r = api["read"].post("/api/segments/check", {"rule": "city = "})
    assert r.status_code == 400 and r.json()["code"] == "rule_syntax" and r.json()["line"] == 1
    r = api["read"].post("/api/segments/check", {"rule": {"version": 1, "rule": {"type": "nope"}}})
    assert r.status_code == 400 and r.json()["path"] is not None


def test_check_gives_canonical_text_json_and_value_warnings(api):
    r = api["read"].post("/api/segments/check", {"rule": 'city = "london"'})
    assert r.status_code == 200
    body = r.json()
    assert body["rule"] == 'city = "london"' and body["rule_json"]["version"] == 1
    assert any('"London"' in w for w in body["warnings"])
    again = api["read"].post("/api/segments/check", {"rule": body["rule_json"]})
    assert again.json()["rule"] == body["rule"]


def test_preview_count_is_the_engines(api, api_workspace):  # noqa: F811
    r = api["read"].post("/api/segments/preview", {"rule": RULE, "as_of": AS_OF, "sample": 5})
    assert r.status_code == 200, r.text
    body = r.json()
    with open_workspace(api_workspace) as ws:
        assert body["count"] == SegmentEngine(ws).count(RULE, AS_OF) > 0
    assert body["total"] == 1500 and len(body["sample"]) == 5 and "SELECT" in body["sql"]
    assert body["sample"] == sorted(body["sample"], key=lambda s: s["contact_id"])


def test_create_refresh_members_history_and_changes(api):
    w, rd = api["write"], api["read"]
    r = w.post("/api/segments", {"name": "electro", "rule": RULE, "description": "gadgets"})
    assert r.status_code == 201, r.text
    assert r.headers["location"] == "/api/segments/electro" and r.json()["size"] is None
    assert w.post("/api/segments", {"name": "electro", "rule": RULE}).status_code == 400
    r = w.post("/api/segments/refresh", {"names": ["electro"], "as_of": "2026-08-01"})
    assert r.status_code == 200, r.text
    first = r.json()["refreshed"][0]
    assert first["entered"] == first["size"] > 0
    r = w.post("/api/segments/electro/refresh", as_of=AS_OF)
    second = r.json()["refreshed"][0]
    assert second["entered"] + second["exited"] > 0
    # members: pages of 7 cover the members once each, in id order
    seen, cursor = [], None
    while True:
        page = rd.get("/api/segments/electro/members", limit=7, **({"cursor": cursor} if cursor else {}))
        assert page.status_code == 200
        body = page.json()
        seen += [m["contact_id"] for m in body["items"]]
        cursor = body["next"]
        if cursor is None:
            break
    assert seen == sorted(set(seen)) and len(seen) == second["size"] == body["total"]
    hist = rd.get("/api/segments/electro/history").json()["refreshes"]
    assert [h["size"] for h in hist] == [first["size"], second["size"]]
    assert rd.get("/api/segments/electro").json()["last_refresh"] == AS_OF


def test_changes_feed_pages_are_the_whole_history_once_and_resumable(api, api_workspace):  # noqa: F811
    rd = api["read"]
    w = api["write"]
    if rd.get("/api/segments/feed").status_code == 404:
        w.post("/api/segments", {"name": "feed", "rule": "count(orders, last 30 days) >= 1"})
        for when in ("2026-09-01", "2026-10-01", AS_OF):
            assert w.post("/api/segments/feed/refresh", as_of=when).status_code == 200
    got, since = [], None
    for _ in range(1000):
        r = rd.get("/api/segments/feed/changes", limit=50, **({"since": since} if since else {}))
        assert r.status_code == 200, r.text
        body = r.json()
        got += body["items"]
        assert body["next"]
        since = body["next"]
        if not body["has_more"]:
            break
    # nothing new: the same cursor comes back, empty
    again = rd.get("/api/segments/feed/changes", since=since).json()
    assert again["items"] == [] and again["next"] == since
    ids = [c["id"] for c in got]
    assert len(ids) == len(set(ids))
    entered = sum(c["change"] == "entered" for c in got)
    exited = sum(c["change"] == "exited" for c in got)
    hist = rd.get("/api/segments/feed/history").json()["refreshes"]
    assert (entered, exited) == (sum(h["entered"] for h in hist), sum(h["exited"] for h in hist))
    assert [(c["at"], c["change"], c["contact_id"]) for c in got] == sorted(
        (c["at"], c["change"], c["contact_id"]) for c in got)
    # a time works as `since` too
    later = rd.get("/api/segments/feed/changes", since=AS_OF, limit=5000).json()["items"]
    assert later == [c for c in got if c["at"] >= AS_OF]
    bad = rd.get("/api/segments/feed/changes", since="not-a-cursor")
    assert bad.status_code == 400 and bad.json()["field"] == "since"


def test_explain_saved_and_unsaved(api):
    rd = api["read"]
    members = rd.get("/api/segments/electro/members", limit=1).json()["items"]
    cid = members[0]["contact_id"]
    r = rd.get("/api/segments/electro/explain", contact_id=cid, as_of=AS_OF)
    assert r.status_code == 200 and r.json()["member"] is True and r.json()["conditions"]
    r = rd.post("/api/segments/explain", {"rule": "frequency > 1000", "contact_id": cid, "as_of": AS_OF})
    assert r.status_code in (200, 400)
    r = rd.post("/api/segments/explain", {"rule": "count(orders) > 100000", "contact_id": cid})
    assert r.status_code == 200 and r.json()["member"] is False
    assert rd.get("/api/segments/electro/explain", contact_id="NOPE").status_code == 400


def test_update_delete_and_dependencies(api):
    w = api["write"]
    assert w.put("/api/segments/nothing-here", {"rule": "true"}).status_code == 404
    w.post("/api/segments", {"name": "base", "rule": "count(orders) >= 1"})
    w.post("/api/segments", {"name": "on-top", "rule": 'in_segment("base") and city = "London"'})
    assert w.get("/api/segments/base").json()["used_by"] == ["on-top"]
    r = w.delete("/api/segments/base")
    assert r.status_code == 400 and "on-top" in r.json()["message"]
    r = w.put("/api/segments/on-top", {"rule": 'city = "Paris"', "description": "moved"})
    assert r.status_code == 200 and r.json()["rule"] == 'city = "Paris"' and r.json()["description"] == "moved"
    assert w.delete("/api/segments/base").status_code == 204
    assert w.get("/api/segments/base").status_code == 404
    listed = w.get("/api/segments", q="ON-").json()
    assert [s["name"] for s in listed["items"]] == ["on-top"]


def test_keys_and_scopes(api):
    assert api["none"].get("/api/segments").status_code == 401
    assert api["track"].get("/api/segments").status_code == 403
    r = api["read"].post("/api/segments", {"name": "x", "rule": "true"})
    assert r.status_code == 403 and r.json()["code"] == "forbidden"
    assert api["read"].get("/api/segments").status_code == 200


def test_bad_requests_are_400_with_the_field(api):
    r = api["write"].post("/api/segments", {"name": "", "rule": "true"})
    assert r.status_code == 400 and r.json()["code"] == "invalid_request"
    r = api["read"].get("/api/segments/electro/members", limit=0)
    assert r.status_code == 400 and "limit" in r.json()["message"]
    r = api["read"].get("/api/segments/electro/members", cursor="%%%")
    assert r.status_code == 400 and r.json()["field"] == "cursor"
    r = api["read"].post("/api/segments/preview", {"rule": "true", "as_of": "yesterday"})
    assert r.status_code == 400 and "ISO 8601" in r.json()["message"]
