"""The web app against a real ``segmentum serve``: a generated demo workspace (1,500 contacts,
``segmentum demo``), a local SMTP sink on 127.0.0.1 as its e-mail channel, and headless
Debian Chromium driven by Playwright (never a downloaded browser).

Every page a test opens collects console errors and uncaught page errors; a test that
leaves any fails. ``axe(page)`` runs axe-core (from node_modules, ``npm ci``) and returns
the serious and critical violations.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.service._server import Server

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]
AXE = REPO / "node_modules" / "axe-core" / "axe.min.js"
SCREENSHOTS = REPO / "docs" / "screenshots"
BIN = Path(sys.executable).parent / "segmentum"
AS_OF = "2026-11-01T00:00:00Z"  # the end of the generated data's last day
# the nested rule the builder test builds, and the CLI's count of it (measured before serving)
NESTED_RULE = ('city in ("London", "Paris") and (count(email_open where device_os = "iOS", '
               'last 90 days) >= 1 or not (purchased(category = "Fashion")))')


def _need(path: Path, how: str) -> None:
    if not path.exists():
        if os.environ.get("CI"):
            pytest.fail(f"{path} is missing in CI: {how}")
        pytest.skip(f"{path} is missing: {how}")


def cli(*args: str, cwd: Path) -> str:
    out = subprocess.run([str(BIN), *args], cwd=cwd, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr or out.stdout
    return out.stdout


@pytest.fixture(scope="session")
def site(tmp_path_factory):
    """{url, workspace, inbox, cli_count, contact}: the demo served, mail going to the sink."""
    _need(CHROMIUM, "apt-get install chromium (.ci/run does)")
    _need(AXE, "npm ci in the repository root (make install does)")
    from segmentum.web.inbox import SmtpSink, inbox_dir

    root = tmp_path_factory.mktemp("web")
    ws = root / "shop.duckdb"
    cli("demo", "-n", "1500", "-w", str(ws), "--data-dir", str(root / "data"), "--report",
        str(root / "report.html"), "--json", cwd=root)
    preview = json.loads(cli("-w", str(ws), "segment", "preview", "--rule", NESTED_RULE,
                             "--as-of", AS_OF, "--json", cwd=root))
    sink = SmtpSink(inbox_dir(ws)).start()
    (root / "segmentum.yaml").write_text(
        "channels:\n  email:\n    type: smtp\n    host: 127.0.0.1\n"
        f"    port: {sink.port}\n    security: none\n    from: \"Shop <news@shop.example>\"\n"
        "    unsubscribe:\n      url: \"https://shop.example/unsubscribe?t={token}\"\n"
        "      secret_env: UNSUBSCRIBE_SECRET\n", encoding="utf-8")
    server = Server(ws, env={"UNSUBSCRIBE_SECRET": "test-secret"}).start()
    try:
        yield {"url": server.url, "workspace": ws, "inbox": inbox_dir(ws), "root": root,
               "cli_count": preview["count"], "preview": preview}
    finally:
        server.stop()
        sink.stop()


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser, site):
    """A fresh page; fails the test if it logged a console error or threw."""
    context = browser.new_context(viewport={"width": 1360, "height": 900}, base_url=site["url"])
    p = context.new_page()
    p.set_default_timeout(60_000)
    problems: list[str] = []
    p.on("console", lambda m: problems.append(f"console {m.type}: {m.text}") if m.type == "error" else None)
    p.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    yield p
    context.close()
    assert not problems, "\n".join(problems)


def settle(page) -> None:
    """Until no htmx request or live count is under way, the lazy panels have loaded and
    the charts are drawn."""
    page.wait_for_load_state("load")
    page.wait_for_function(
        "!document.querySelector('[aria-busy=\"true\"], .htmx-request, [data-state=pending], [data-state=busy]')")
    page.wait_for_function(
        "[...document.querySelectorAll('.chart[data-spec]')].every(c => c.querySelector('svg'))")


def axe(page) -> list[dict]:
    """axe-core's serious and critical violations on the page as it is."""
    page.add_script_tag(path=str(AXE))
    result = page.evaluate("async () => await axe.run(document, {resultTypes: ['violations']})")
    return [{"id": v["id"], "impact": v["impact"], "help": v["help"],
             "nodes": [n["target"] for n in v["nodes"]][:5]}
            for v in result["violations"] if v["impact"] in ("serious", "critical")]


def screenshot(page, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
