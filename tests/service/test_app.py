"""The app factory as the REST routers will use it: key scopes as dependencies, the workspace
through its one thread, library errors (and bugs) answered at the edge in one JSON shape."""

from __future__ import annotations

import socket
import threading
import time

import httpx
import uvicorn
from fastapi import APIRouter, Depends

from segmentum.errors import NotFoundError
from segmentum.service.access import WorkspaceAccess
from segmentum.service.app import create_app
from segmentum.service.deps import require_scope, workspace
from segmentum.service.keys import ApiKey
from segmentum.service.settings import ServeSettings
from tests.service._server import basic, new_key

router = APIRouter(prefix="/api/test")


@router.get("/contacts")
async def count_contacts(key: ApiKey = Depends(require_scope("read")),
                         access: WorkspaceAccess = Depends(workspace)) -> dict:
    def count(ws):
        return {"contacts": int(ws.table("contacts").count().execute()), "thread": threading.current_thread().name}

    return {**await access.run(count), "key": key.name}


@router.post("/contacts/{cid}")
async def edit_contact(cid: int, _key: ApiKey = Depends(require_scope("write"))) -> dict:
    raise NotFoundError(f"No contact {cid}.", hint="Search by e-mail instead.", field="cid")


@router.get("/bug")
async def bug(_key: ApiKey = Depends(require_scope("read"))) -> dict:
    raise RuntimeError("internal detail that must not leak")


class served:
    """The app on a real uvicorn server in a thread, on a free loopback port."""

    def __init__(self, app):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)

    def __enter__(self) -> httpx.Client:
        self.thread.start()
        while not self.server.started:
            time.sleep(0.02)
        self.client = httpx.Client(base_url=f"http://127.0.0.1:{self.sock.getsockname()[1]}", timeout=30)
        return self.client

    def __exit__(self, *exc) -> None:
        self.client.close()
        self.server.should_exit = True
        self.thread.join(timeout=60)
        self.sock.close()


def test_routers_use_scopes_the_workspace_thread_and_the_error_edge(tmp_path):
    ws = tmp_path / "ws.duckdb"
    reader, writer, admin = new_key(ws, "dash", "read"), new_key(ws, "crm", "write"), new_key(ws, "ops", "admin")
    app = create_app(ServeSettings(workspace=str(ws)))
    app.include_router(router)
    with served(app) as client:
        r = client.get("/api/test/contacts", headers={"Authorization": f"Bearer {reader}"})
        assert r.json() == {"contacts": 0, "thread": r.json()["thread"], "key": "dash"}
        assert r.json()["thread"].startswith("workspace")
        assert client.get("/api/test/contacts", headers=basic(writer)).status_code == 200  # write implies read
        assert client.get("/api/test/contacts").status_code == 401
        r = client.post("/api/test/contacts/7", headers=basic(reader))
        assert r.status_code == 403 and r.json()["code"] == "forbidden"
        r = client.post("/api/test/contacts/7", headers=basic(admin))
        assert r.status_code == 404 and r.json() == {
            "code": "not_found", "message": "No contact 7.", "hint": "Search by e-mail instead.", "field": "cid"}
        r = client.post("/api/test/contacts/seven", headers=basic(admin))
        assert r.status_code == 400 and r.json()["code"] == "invalid_request" and "cid" in r.json()["message"]
        r = client.get("/api/test/bug", headers=basic(admin))
        assert r.status_code == 500 and r.json()["code"] == "internal" and "leak" not in r.text
        assert client.get("/health").json()["status"] == "ok"


def test_a_storage_failure_answers_503_and_acknowledges_nothing(tmp_path):
    import os

    ws = tmp_path / "ws.duckdb"
    key = new_key(ws)
    app = create_app(ServeSettings(workspace=str(ws)))
    with served(app) as client:
        event = {"userId": "u1", "event": "Viewed"}
        assert client.post("/v1/track", json=event, headers=basic(key)).status_code == 200
        log = app.state.service.log
        os.close(log._fd)  # the disk goes away under the writer
        r = client.post("/v1/track", json=event, headers=basic(key))
        assert r.status_code == 503 and r.headers["Retry-After"] == "5" and r.json()["code"] == "storage"
        assert client.post("/v1/track", json=event, headers=basic(key)).status_code == 503
        assert log.end(0) == 1
        log._fd = os.open(os.devnull, os.O_WRONLY)  # so that shutting down has a file to close
