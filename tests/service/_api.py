"""The REST API's test kit: a generated workspace served by a real `segmentum serve`.

``api_workspace`` (session): 1,500 generated contacts loaded through ingestion, RFM and CLV
computed as of the data's end (2026-11-01 for the generator's default span), copied to a
fresh folder per use. ``Api(server, key)`` wraps httpx with the key and raises nothing:
tests read ``status_code`` and ``json()``. ``keys`` are made with each scope.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import httpx
import pytest

from tests.service._server import Server, new_key
from tests.workspaces import generated_workspace

AS_OF = "2026-11-01T00:00:00Z"


@pytest.fixture(scope="session")
def api_workspace(tmp_path_factory) -> Path:
    """A generated workspace with RFM and CLV (built once; copy it before writing)."""
    from segmentum.analytics.clv import compute_clv
    from segmentum.analytics.rfm import compute_rfm

    root = tmp_path_factory.mktemp("api-base")
    ws, manifest, _data = generated_workspace(root, contacts=1500, seed=1)
    try:
        compute_rfm(ws, AS_OF)
        compute_clv(ws, AS_OF, 365)
    finally:
        ws.close()
    return root / "ws.duckdb"


def copy_workspace(base: Path, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / "ws.duckdb"
    shutil.copy(base, target)
    return target


class Api:
    """httpx calls to a running server with one key (its URL read at each call: a restarted
    server listens on another port)."""

    def __init__(self, server: Server, key: str | None):
        self.server, self.key = server, key

    @property
    def url(self) -> str:
        return self.server.url

    def headers(self, extra=None) -> dict:
        return {**({"Authorization": f"Bearer {self.key}"} if self.key else {}), **(extra or {})}

    def get(self, path: str, **params) -> httpx.Response:
        return httpx.get(self.url + path, params=params, headers=self.headers(), timeout=120)

    def post(self, path: str, body=None, *, content=None, content_type=None, **params) -> httpx.Response:
        headers = self.headers({"Content-Type": content_type} if content_type else None)
        return httpx.post(self.url + path, json=body if content is None else None, content=content,
                          params=params, headers=headers, timeout=300)

    def put(self, path: str, body=None, *, content=None, content_type=None) -> httpx.Response:
        headers = self.headers({"Content-Type": content_type} if content_type else None)
        return httpx.put(self.url + path, json=body if content is None else None, content=content,
                         headers=headers, timeout=120)

    def delete(self, path: str, **params) -> httpx.Response:
        return httpx.delete(self.url + path, params=params, headers=self.headers(), timeout=300)


def serve(workspace: Path) -> tuple[Server, dict[str, Api]]:
    """A started server on ``workspace`` and an Api per key scope (none = no key)."""
    keys = {s: new_key(workspace, s, s) for s in ("read", "write", "admin", "track")}
    server = Server(workspace, env={"SEGMENTUM_SERVE_FSYNC": "false"}).start()
    apis = {s: Api(server, k) for s, k in keys.items()}
    apis["none"] = Api(server, None)
    return server, apis
