"""One workspace, one writer: the serve file, what other commands are told, overload, keys CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import orjson

from segmentum.service.serve_info import ServeInfo, read_serve_info, serve_info_path, write_serve_info
from tests.service._server import BIN, Server, basic, new_key


def cli(*args, cwd=None, env=None) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN), *args], capture_output=True, text=True, cwd=cwd,
                          env={**os.environ, **(env or {})}, timeout=120)


def test_a_served_workspace_names_its_server_to_other_commands(tmp_path):
    ws = tmp_path / "shop.duckdb"
    with Server(ws) as server:
        info = read_serve_info(ws)
        assert info is not None and (info.pid, info.url) == (server.proc.pid, server.url)
        busy = cli("-w", str(ws), "info")
        assert busy.returncode == 2
        assert f"segmentum serve (pid {server.proc.pid}) at {server.url} holds this workspace" in busy.stderr
        again = cli("-w", str(ws), "serve", "--port", "0", "--json")
        assert again.returncode == 2
        assert json.loads(again.stdout)["error"]["code"] == "workspace_busy"
        # keys are not in the workspace: they can be managed while it is served
        made = json.loads(cli("-w", str(ws), "keys", "create", "web", "--scopes", "track", "--json").stdout)
        r = httpx.post(server.url + "/v1/track", json={"userId": "u1", "event": "x"}, headers=basic(made["key"]))
        assert r.status_code == 200
    assert server.proc.returncode in (0, -15)
    assert not serve_info_path(ws).exists()  # removed on a clean stop
    assert cli("-w", str(ws), "info").returncode == 0


def test_a_stale_serve_file_is_ignored(tmp_path):
    ws = tmp_path / "ws.duckdb"
    dead = subprocess.Popen(["true"])
    dead.wait()
    write_serve_info(ws, ServeInfo(dead.pid, "http://127.0.0.1:1", "2026-01-01T00:00:00Z", str(ws)))
    assert read_serve_info(ws) is None and not serve_info_path(ws).exists()
    other = subprocess.Popen(["sleep", "30"])  # alive, but not a segmentum process: a reused pid
    like = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)", "segmentum", "serve"])
    for p, word in ((other, b"sleep"), (like, b"segmentum")):  # both have exec'd
        while word not in Path(f"/proc/{p.pid}/cmdline").read_bytes():
            time.sleep(0.01)
    try:
        write_serve_info(ws, ServeInfo(other.pid, "http://127.0.0.1:1", "2026-01-01T00:00:00Z", str(ws)))
        assert read_serve_info(ws) is None
        write_serve_info(ws, ServeInfo(like.pid, "http://127.0.0.1:1", "2026-01-01T00:00:00Z", str(ws)))
        assert read_serve_info(ws).pid == like.pid
    finally:
        other.kill()
        like.kill()


def test_overload_answers_429_with_retry_after(tmp_path):
    ws = tmp_path / "ws.duckdb"
    key = new_key(ws)
    batch = orjson.dumps({"batch": [{"type": "track", "userId": f"u{i}", "event": "e", "messageId": f"m{i}"}
                                    for i in range(2000)]})
    with Server(ws, env={"SEGMENTUM_SERVE_MAX_BACKLOG": "100"}) as server:
        first = httpx.post(server.url + "/v1/batch", content=batch, headers=basic(key), timeout=30)
        second = httpx.post(server.url + "/v1/batch", content=batch, headers=basic(key), timeout=30)
        assert first.status_code == 200
        assert second.status_code == 429 and int(second.headers["Retry-After"]) >= 1
        assert second.json()["code"] == "overloaded" and "behind" in second.json()["message"]
        server.wait_applied()
        assert httpx.post(server.url + "/v1/batch", content=batch, headers=basic(key), timeout=30).status_code == 200
    with Server(ws, env={"SEGMENTUM_SERVE_MAX_INFLIGHT": "1"}) as server:
        codes = []

        def send() -> None:
            codes.append(httpx.post(server.url + "/v1/batch", content=batch, headers=basic(key), timeout=30).status_code)

        threads = [threading.Thread(target=send) for _ in range(12)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert set(codes) == {200, 429}


def test_keys_cli(tmp_path):
    ws = str(tmp_path / "ws.duckdb")
    made = json.loads(cli("-w", ws, "keys", "create", "crm", "--scopes", "read,write", "--json").stdout)
    assert made["scopes"] == ["read", "write"] and made["key"].startswith(f"sgm_{made['id']}_")
    stored = (tmp_path / "ws.duckdb.keys.json").read_text()
    assert made["key"].split("_")[-1] not in stored and "sha256" in stored  # hashed, never the secret
    assert "admin" in cli("-w", ws, "keys", "create", "x", "--scopes", "owner").stderr
    listed = json.loads(cli("-w", ws, "keys", "list", "--json").stdout)["keys"]
    assert [k["name"] for k in listed] == ["crm"] and "sha256" not in listed[0]
    assert json.loads(cli("-w", ws, "keys", "revoke", "crm", "--json").stdout)["revoked"][0]["id"] == made["id"]
    assert json.loads(cli("-w", ws, "keys", "list", "--json").stdout)["keys"] == []
    assert len(json.loads(cli("-w", ws, "keys", "list", "--all", "--json").stdout)["keys"]) == 1
    missing = cli("-w", ws, "keys", "revoke", "nope")
    assert missing.returncode == 2 and "No active key" in missing.stderr
