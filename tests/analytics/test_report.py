"""The pictures: chart specs, PNG / SVG / HTML export, and the self-contained HTML report.

The report is opened in a real headless Chromium (Playwright driving /usr/bin/chromium): every
chart must be drawn by Vega, no request may leave the file, the console must stay free of
errors, and the screenshot must be a real picture (large, many colours).
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from segmentum.analytics import charts
from segmentum.analytics.report import build_report, rfm_summary
from segmentum.errors import UsageError
from segmentum.workspace import open_workspace

AS_OF = "2024-07-01"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]
CHART_IDS = ["rfm-grid", "cohort-heatmap", "clv-tracking", "clv-frequency"]


def shop_rows(n: int = 100, seed: int = 5, params=(0.6, 5.0, 0.8, 3.0)):
    """Contacts and orders drawn from a BG/NBD (r, alpha, a, b); first orders over 26 weeks.

    Every tenth contact never buys; about 8% of repeat orders are returned.
    """
    r, alpha, a, b = params
    rng = np.random.default_rng(seed)
    start = pd.Timestamp("2023-01-02", tz="UTC")
    weeks = (pd.Timestamp(AS_OF, tz="UTC") - start).days / 7
    lam, p = rng.gamma(r, 1 / alpha, n), rng.beta(a, b, n)
    contacts, orders = [], []
    for i in range(n):
        cid = f"c{i:03d}"
        t = float(rng.uniform(0, 26))
        created = (start + pd.Timedelta(weeks=t) - pd.Timedelta(days=1)).floor("s")
        contacts.append({"contact_id": cid, "created_at": created, "email": f"{cid}@example.com"})
        if i % 10 == 9:
            continue
        k = 0
        while t < weeks:
            orders.append({
                "order_id": f"o{i}-{k}",
                "contact_id": cid,
                "ordered_at": (start + pd.Timedelta(weeks=t)).floor("s"),
                "total": round(float(rng.gamma(3, 15)), 2),
                "status": "completed" if k == 0 or rng.random() > 0.08 else "returned",
            })
            k += 1
            if k > 1 and rng.random() < p[i]:
                break
            t += float(rng.exponential(1 / lam[i]))
    return contacts, orders


@pytest.fixture(scope="module")
def shop(ws_builder, tmp_path_factory):
    """A small shop workspace (closed; open it by path) and its input rows."""
    contacts, orders = shop_rows()
    path = tmp_path_factory.mktemp("report") / "shop.duckdb"
    ws_builder(path, contacts=contacts, orders=orders).close()
    return path, pd.DataFrame(contacts), pd.DataFrame(orders)


@pytest.fixture(scope="module")
def report(shop, tmp_path_factory):
    path = shop[0]
    out = tmp_path_factory.mktemp("report-out") / "report.html"
    with open_workspace(path) as ws:
        rep = build_report(ws, out, as_of=AS_OF)
    return rep


def external_references(html: str) -> list[str]:
    """Anything the page would fetch from the network: src/href/url() to http(s) or //."""
    tag = r"<(?:script|link|img|iframe|source|embed|object)\b[^>]*?"
    found = re.findall(tag + r"""(?:src|href|data)\s*=\s*["']?\s*(?:https?:)?//""", html,
                       flags=re.I)
    found += re.findall(r"""url\(\s*["']?\s*(?:https?:)?//""", html, flags=re.I)
    found += re.findall(r"""@import\s+["']?(?:https?:)?//""", html, flags=re.I)
    return found


# -- the report ------------------------------------------------------------------------------
def test_report_is_one_self_contained_file(report):
    assert external_references('<script src="https://cdn.example/vega.js"></script>')
    assert external_references('<link rel="stylesheet" href="//cdn.example/a.css">')
    html = report.path.read_text(encoding="utf-8")
    assert external_references(html) == []
    assert not re.search(r"<script\b[^>]*\bsrc\s*=", html, flags=re.I)  # every script inline
    assert "window.vegaEmbed" in html  # Vega itself is inside the file
    assert all(s.ok for s in report.sections), [(s.key, s.message) for s in report.sections]
    for cid in CHART_IDS:
        assert f'data-spec="{cid}"' in html and f'id="spec-{cid}"' in html
    assert f"as of <strong>{AS_OF} 00:00 UTC</strong>" in html
    assert "How each figure is computed" in html


def test_kpis_match_an_independent_pandas_count(shop, report):
    _, contacts, orders = shop
    as_of = pd.Timestamp(AS_OF, tz="UTC")
    done = orders[(orders["status"] == "completed") & (orders["ordered_at"] < as_of)]
    assert report.kpis["contacts"] == int((contacts["created_at"] < as_of).sum())
    assert report.kpis["buyers"] == done["contact_id"].nunique()
    assert report.kpis["orders"] == len(done)
    assert report.kpis["revenue"] == pytest.approx(done["total"].sum(), abs=0.005)


def test_rfm_grid_shows_the_summary_counts(shop):
    with open_workspace(shop[0]) as ws:
        summary = rfm_summary(ws, AS_OF)
        assert "rfm" not in ws.tables()  # the report and charts never write to the workspace
    spec = charts.to_spec(charts.rfm_grid(summary.cells))
    rows = pd.DataFrame(spec["datasets"][spec["data"]["name"]])
    want = summary.cells.dropna(subset=["cell"]).set_index("cell")["contacts"]
    got = rows.set_index("cell")["contacts"]
    assert got.sort_index().tolist() == want.sort_index().astype(int).tolist()
    assert len(rows) == 27 and int(got.sum()) == 90  # every buyer in exactly one cell


def test_a_stored_rfm_table_is_read_for_its_date(shop):
    from segmentum.analytics.report import default_as_of
    from segmentum.analytics.rfm import compute_rfm

    with open_workspace(shop[0]) as ws:
        try:
            stored = compute_rfm(ws, as_of=AS_OF)
            assert default_as_of(ws) == stored.as_of
            summary = rfm_summary(ws)  # as of the table's date
            other = rfm_summary(ws, "2024-05-01")  # another date: scored afresh
        finally:  # the view and the tables it reads: the shared workspace as it was
            ws.warehouse.con.drop_view("rfm")
            for part in ("_rfm_rows", "_rfm_cells"):
                ws.warehouse.con.drop_table(part)
    assert summary.source == "table" and summary.as_of == stored.as_of
    pd.testing.assert_frame_equal(summary.cells, stored.cells)
    assert other.source == "computed"


def test_report_says_what_is_missing_before_any_order(shop, tmp_path):
    with open_workspace(shop[0]) as ws:
        rep = build_report(ws, tmp_path / "early.html", as_of="2023-01-01")
    html = rep.path.read_text(encoding="utf-8")
    assert [s.ok for s in rep.sections] == [False, False, False]
    assert "No contact has a completed order before 2023-01-01" in html
    assert "No cohort has a completed month before 2023-01-01" in html
    assert "No completed orders before 2023-01-01" in html
    assert 'data-spec="' not in html


def test_report_rejects_a_file_that_is_not_html(shop, tmp_path):
    with open_workspace(shop[0]) as ws, pytest.raises(UsageError, match=r"name it \*\.html"):
        build_report(ws, tmp_path / "report.pdf", as_of=AS_OF)


@pytest.mark.browser
def test_report_renders_in_headless_chromium(report, tmp_path):
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is not installed (apt-get install chromium)")
    from PIL import Image
    from playwright.sync_api import sync_playwright

    problems: list[str] = []
    outside: list[str] = []
    shot = tmp_path / "report.png"
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.on("console", lambda m: problems.append(f"console {m.type}: {m.text}")
                    if m.type in ("error", "warning") else None)
            page.on("pageerror", lambda e: problems.append(f"page error: {e}"))

            def only_the_file(route):
                if route.request.url.startswith(("file:", "data:")):
                    route.continue_()
                else:
                    outside.append(route.request.url)
                    route.abort()

            page.route("**/*", only_the_file)
            page.goto(report.path.as_uri())
            page.wait_for_function(
                "() => [...document.querySelectorAll('div.chart[data-spec]')]"
                ".every(el => el.dataset.rendered)",
                timeout=60_000,
            )
            state = page.evaluate(
                "() => Object.fromEntries([...document.querySelectorAll('div.chart[data-spec]')]"
                ".map(el => [el.dataset.spec, [el.dataset.rendered,"
                " el.querySelectorAll('svg.marks path, svg.marks text').length]]))"
            )
            assert sorted(state) == sorted(CHART_IDS)
            for cid, (rendered, marks) in state.items():
                assert rendered == "true" and marks > 20, (cid, rendered, marks)
            page.screenshot(path=str(shot), full_page=True)
            # the grid's drop-downs re-draw it: coloured by revenue, then one monetary score
            grid = page.locator('div.chart[data-spec="rfm-grid"]')
            panels = "() => [...document.querySelectorAll('div.chart[data-spec=\"rfm-grid\"] " \
                "svg text')].filter(t => t.textContent.startsWith('Monetary M')).length"
            assert "RFM grid: contacts per R x F cell" in grid.inner_text()
            assert page.evaluate(panels) == 3
            grid.locator('select[name="color_by"]').select_option("revenue")
            page.wait_for_function(
                "() => document.querySelector('div.chart[data-spec=\"rfm-grid\"]')"
                ".textContent.includes('RFM grid: revenue per R x F cell')",
                timeout=10_000,
            )
            grid.locator('select[name="m_pick"]').select_option(label="M3 High")
            page.wait_for_function(f"({panels})() === 1", timeout=10_000)
            assert "Monetary M3 High" in grid.inner_text()
        finally:
            browser.close()
    assert problems == []
    assert outside == []
    assert shot.stat().st_size > 100_000
    with Image.open(shot) as im:
        assert im.width == 1280 and im.height > 2500
        colours = im.convert("RGB").resize((320, im.height // 4)).getcolors(maxcolors=1 << 16)
        assert colours is None or len(colours) > 200  # a picture, not a blank page


# -- single charts ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def cells(shop):
    with open_workspace(shop[0]) as ws:
        return rfm_summary(ws, AS_OF).cells


def test_png_and_svg_exports_are_real_images(cells, tmp_path):
    from PIL import Image

    png = charts.save_chart(charts.rfm_grid(cells, color="revenue", m=3), tmp_path / "rfm.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with Image.open(png) as im:
        assert im.width > 500 and im.height > 400
        assert len(im.convert("RGB").getcolors(maxcolors=1 << 16) or range(999)) > 50
    svg = charts.save_chart(charts.rfm_grid(cells), tmp_path / "rfm.svg")
    root = ET.fromstring(svg.read_text(encoding="utf-8"))
    assert root.tag.endswith("svg")
    texts = {t.text for t in root.iter() if t.tag.endswith("text") and t.text}
    assert {"R3 active", "F3 loyal", "Monetary M3 High", "Champions"} <= texts
    spec = json.loads(charts.save_chart(charts.rfm_grid(cells), tmp_path / "rfm.json").read_text())
    assert spec["$schema"].startswith("https://vega.github.io/schema/vega-lite/")
    html = charts.save_chart(charts.rfm_grid(cells), tmp_path / "rfm.html").read_text()
    assert external_references(html) == [] and '<div class="chart" data-spec="chart">' in html


def test_chart_arguments_are_checked(cells, tmp_path):
    with pytest.raises(UsageError, match="'color' parameter must be 'contacts' or 'revenue'"):
        charts.rfm_grid(cells, color="orders")
    with pytest.raises(UsageError, match=r"monetary score 1\.\.3\. Got 4"):
        charts.rfm_grid(cells, m=4)
    with pytest.raises(UsageError, match="no column 'contacts'"):
        charts.rfm_grid(cells.drop(columns="contacts"))
    with pytest.raises(UsageError, match="use .png, .svg, .html, .json"):
        charts.save_chart(charts.rfm_grid(cells), tmp_path / "rfm.gif")


def test_cli_chart_and_report(shop, tmp_path):
    import typer
    from typer.testing import CliRunner

    from segmentum.cli.report import app as report_app

    app = typer.Typer()
    app.callback()(lambda: None)
    app.add_typer(report_app)
    runner = CliRunner()
    ws = str(shop[0])
    res = runner.invoke(app, ["chart", "cohorts", "-w", ws, "--as-of", AS_OF,
                              "--out", str(tmp_path / "cohorts.svg")])
    assert res.exit_code == 0, res.output
    root = ET.fromstring((tmp_path / "cohorts.svg").read_text(encoding="utf-8"))
    texts = {t.text for t in root.iter() if t.tag.endswith("text") and t.text}
    _, _, orders = shop
    firsts = orders[orders["status"] == "completed"].groupby("contact_id")["ordered_at"].min()
    january = int((firsts.dt.strftime("%Y-%m") == "2023-01").sum())
    assert f"2023-01  (n={january})" in texts and "100%" in texts
    res = runner.invoke(app, ["report", "-w", ws, "--as-of", "2023-01-01", "--json",
                              "--out", str(tmp_path / "r.html")])
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    assert out["as_of"].startswith("2023-01-01") and not out["sections"]["rfm"]["ok"]
    res = runner.invoke(app, ["chart", "rfm", "-w", ws, "--out", str(tmp_path / "x.gif")])
    assert res.exit_code != 0


def test_rfm_shares_have_one_denominator_per_view_in_cli_and_report(shop, tmp_path):
    """The grid's cell share is of all buyers in the CLI, its JSON and the report's grid; the
    named-segment table's share is of all contacts (the contacts without orders included)."""
    import shutil

    from typer.testing import CliRunner

    from segmentum.cli.rfm import app as rfm_app

    path = tmp_path / "shares.duckdb"
    shutil.copy(shop[0], path)
    res = CliRunner().invoke(rfm_app, ["-w", str(path), "--as-of", AS_OF, "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    buyers, contacts = out["contacts_with_orders"], out["contacts"]
    assert buyers < contacts  # some contacts never bought: the two denominators differ
    cells = {c["cell"]: c for c in out["cells"]}
    assert all("share" not in c for c in out["cells"])
    for c in cells.values():
        assert c["share_of_buyers"] == pytest.approx(c["contacts"] / buyers)
    for n in out["names"]:
        assert n["share_of_contacts"] == pytest.approx(n["contacts"] / contacts)
    top = max(cells.values(), key=lambda c: c["contacts"])
    # the same cell in the report's grid (read from the rfm table the CLI wrote)
    with open_workspace(path) as ws:
        summary = rfm_summary(ws, AS_OF)
        report = build_report(ws, tmp_path / "shares.html", as_of=AS_OF)
    assert summary.source == "table"
    spec = charts.to_spec(charts.rfm_grid(summary.cells))
    rows = [r for data in spec["datasets"].values() for r in data if r.get("cell") == top["cell"]]
    assert rows and rows[0]["share_of_buyers"] == pytest.approx(top["share_of_buyers"])
    # the CLI's text grid prints that share (of buyers), not the share of all contacts
    text = CliRunner().invoke(rfm_app, ["-w", str(path), "--as-of", AS_OF]).output
    assert f"{100 * top['share_of_buyers']:.1f}%" in text and "share of buyers" in text
    html = report.path.read_text(encoding="utf-8")
    assert "Share of contacts" in html and "share of buyers" in html
