"""The tracking endpoints ahead of the application (as `segmentum serve` runs them) answer
exactly as the application's own routes do, and pass everything else through."""

from __future__ import annotations

import json
import logging
import socket

from segmentum.service.app import create_app
from segmentum.service.settings import ServeSettings
from segmentum.service.tracking import TrackingFront
from tests.service._server import basic, new_key
from tests.service.test_app import served


def answers(client, key: str, run: str) -> list:
    auth = basic(key)
    calls = [
        ("/v1/track", {"userId": "u1", "event": "Viewed", "messageId": f"{run}-1"}, auth),
        ("/v1/batch", {"batch": [{"type": "page", "userId": "u1", "messageId": f"{run}-2"},
                                 {"type": "track", "userId": "u1", "messageId": f"{run}-3"}]}, auth),
        ("/v1/identify", {"traits": {}}, auth),
        ("/v1/track", {"userId": "u1", "event": "Viewed"}, {}),
        ("/v1/track", {"userId": "u1", "event": "Viewed", "writeKey": key}, {}),
    ]
    out = []
    for path, body, headers in calls:
        r = client.post(path, json=body, headers=headers)
        out.append((r.status_code, r.headers.get("content-type"), r.json()))
    r = client.post("/v1/batch", content=b'{"batch": [}', headers=auth)
    out.append((r.status_code, r.json()))
    r = client.get("/v1/track")
    out.append((r.status_code, r.json()["code"]))
    out.append(client.get("/health").json()["log"]["end"])
    return out


def test_the_front_answers_as_the_routes_do(tmp_path, caplog):
    ws = tmp_path / "ws.duckdb"
    key = new_key(ws)
    settings = ServeSettings(workspace=str(ws), live=False)
    with served(create_app(settings)) as client:
        by_routes = answers(client, key, "first")
    with served(TrackingFront(create_app(settings))) as client:
        in_front = answers(client, key, "second")
    assert json.dumps(in_front[:-1]).replace("second", "first") == json.dumps(by_routes[:-1])
    assert by_routes[0] == (200, "application/json", {"success": True})
    assert by_routes[1][0] == 400 and by_routes[1][2]["rejected"][0]["field"] == "event"
    assert [a[0] for a in by_routes[2:-1]] == [400, 401, 200, 400, 405]
    assert (by_routes[-1], in_front[-1]) == (3, 6)  # what each stored: the same, on top of the first


def test_a_client_gone_before_its_body_is_not_an_error(tmp_path, caplog):
    ws = tmp_path / "ws.duckdb"
    key = new_key(ws)
    with served(TrackingFront(create_app(ServeSettings(workspace=str(ws), live=False)))) as client:
        host, port = client.base_url.host, client.base_url.port
        with socket.create_connection((host, port)) as sock:
            sock.sendall(b"POST /v1/track HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                         b"Content-Length: 1000\r\n" + b"\r\n".join(f"{k}: {v}".encode() for k, v in basic(key).items())
                         + b"\r\n\r\n{\"userId\":")
        with caplog.at_level(logging.ERROR):
            assert client.post("/v1/track", json={"userId": "u1", "event": "e"}, headers=basic(key)).status_code == 200
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
