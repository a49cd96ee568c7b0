"""The web app in the service's application on a real workspace (FastAPI's TestClient runs
the app and its lifespan in-process): who may use it, other sites kept out, empty states,
the front-end build step and what a missing build says."""

from __future__ import annotations

import html
import json

import pytest
from fastapi.testclient import TestClient

from segmentum.service.app import create_app
from segmentum.service.keys import KeyStore, keys_path
from segmentum.service.settings import ServeSettings
from segmentum.web import assets
from segmentum.web.render import env

LOCAL = {"host": "127.0.0.1:8000"}


def client(tmp_path, host: str = "127.0.0.1") -> TestClient:
    settings = ServeSettings(workspace=str(tmp_path / "ws.duckdb"), host=host, fsync=False)
    return TestClient(create_app(settings), base_url="http://127.0.0.1:8000")


def test_loopback_server_answers_only_to_its_own_name(tmp_path):
    with client(tmp_path) as c:
        assert c.get("/", headers=LOCAL).status_code == 200
        assert c.get("/", headers={"host": "localhost:8000"}).status_code == 200
        rebound = c.get("/", headers={"host": "evil.example"})
        assert rebound.status_code == 403 and "loopback" in rebound.text
        assert "<h1>" in rebound.text  # a page that says what to do, not a JSON body


def test_changes_from_another_site_are_refused(tmp_path):
    with client(tmp_path) as c:
        forged = c.post("/segments/refresh", headers={**LOCAL, "sec-fetch-site": "cross-site"})
        assert forged.status_code == 403 and "own pages" in forged.text
        forged = c.post("/segments/refresh", headers={**LOCAL, "origin": "http://evil.example"})
        assert forged.status_code == 403
        ours = c.post("/segments/refresh", headers={**LOCAL, "sec-fetch-site": "same-origin", "hx-request": "true"})
        assert ours.status_code == 200 and "Refreshed 0 segments" in ours.text


def test_a_network_server_asks_for_a_key_and_honours_its_scopes(tmp_path):
    with client(tmp_path, host="0.0.0.0") as c:
        first = c.get("/rfm", follow_redirects=False)
        assert first.status_code == 303 and first.headers["location"] == "/login?next=/rfm"
        assert c.get("/login").status_code == 200
        keys = KeyStore(keys_path(tmp_path / "ws.duckdb"))
        _entry, tracker = keys.create("site", ["track"])
        _entry, reader = keys.create("ann", ["read"])
        assert c.post("/login", data={"key": tracker}).status_code == 401  # a write key reads nothing
        wrong = c.post("/login", data={"key": "sgm_00000000_" + "x" * 43})
        assert wrong.status_code == 401 and "aria-invalid" in wrong.text
        ok = c.post("/login", data={"key": reader, "next": "//evil.example/"}, follow_redirects=False)
        assert ok.status_code == 303 and ok.headers["location"] == "/"  # never off-site
        assert "httponly" in ok.headers["set-cookie"].lower() and "samesite=strict" in ok.headers["set-cookie"].lower()
        assert c.get("/").status_code == 200
        refused = c.post("/segments/refresh", headers={"hx-request": "true"})
        assert "needs the 'write' scope" in html.unescape(refused.text)
        keys.revoke("ann")
        assert c.get("/", follow_redirects=False).status_code == 303  # revoked: out at once


def test_an_empty_workspace_says_what_to_do(tmp_path):
    with client(tmp_path) as c:
        for path in ("/dashboard/kpis", "/dashboard/trends", "/dashboard/health", "/segments",
                     "/segments/new", "/contacts", "/contacts?q=nobody", "/personas", "/campaigns",
                     "/campaigns/new", "/triggers", "/exports", "/inbox"):
            r = c.get(path, headers=LOCAL)
            assert r.status_code == 200, (path, r.text[:500])
        assert "No completed orders" in c.get("/dashboard/trends", headers=LOCAL).text
        assert "No message yet" in c.get("/inbox", headers=LOCAL).text
        rfm = c.get("/rfm", headers=LOCAL)
        assert rfm.status_code == 409 and "nothing to score" in rfm.text
        missing = c.get("/segments/nope", headers=LOCAL)
        assert missing.status_code == 404 and "nope" in missing.text
        # the web routes stay out of the REST API's published document
        paths = c.get("/openapi.json", headers=LOCAL).json()["paths"]
        assert "/segments/new" not in paths and "/" not in paths


def test_the_build_step_copies_the_pinned_files(tmp_path):
    modules = tmp_path / "node_modules"
    for pkg, path in assets.VENDOR.values():
        (modules / pkg / path).parent.mkdir(parents=True, exist_ok=True)
        (modules / pkg / path).write_text(f"/* {pkg} */", encoding="utf-8")
        (modules / pkg / "package.json").write_text(json.dumps({"version": "9.9.9"}), encoding="utf-8")
    out = tmp_path / "vendor"
    assert assets.missing(out) == list(assets.VENDOR)
    versions = assets.copy_vendor(modules, out)
    assert versions["htmx.org"] == "9.9.9" and assets.missing(out) == []
    assert json.loads((out / "manifest.json").read_text())["vega-embed"] == "9.9.9"
    (modules / "vega" / "build" / "vega.min.js").unlink()
    with pytest.raises(FileNotFoundError, match="npm ci"):
        assets.copy_vendor(modules, tmp_path / "again")
    assert assets.main([str(tmp_path / "nowhere")]) == 2


def test_the_repository_pins_what_the_app_serves():
    lock = json.loads((assets.VENDOR_DIR.parents[4] / "package-lock.json").read_text())
    pinned = {k.removeprefix("node_modules/"): v["version"] for k, v in lock["packages"].items() if k}
    package = json.loads((assets.VENDOR_DIR.parents[4] / "package.json").read_text())
    for pkg, _path in assets.VENDOR.values():
        assert package["dependencies"][pkg] == pinned[pkg]  # exact versions, locked
    assert pinned["htmx.org"].startswith("2.")


def test_a_missing_build_is_named_on_every_page():
    e = env().overlay()
    e.globals["vendor_missing"] = lambda: ["htmx.min.js", "vega.min.js"]
    page = e.get_template("base.html").render(current="/", user=None)
    assert "htmx.min.js, vega.min.js are missing" in page and "npm ci" in page
    assert "/static/vendor/htmx.min.js" not in page  # no script tag that would 404
