"""The web app clicked through in headless Chromium against a running ``segmentum serve`` on a
generated workspace (tests/web/conftest.py): every page renders without console errors and
without serious accessibility violations (axe-core), and leaves its screenshot in
docs/screenshots/; a nested rule built in the builder counts what the CLI's preview
counts; a broken rule is underlined where the error is; a contact's card and explain;
a campaign created, sent to the local SMTP server, and its report."""

from __future__ import annotations

import re

import pytest

from tests.web.conftest import AS_OF, NESTED_RULE, axe, cli, screenshot, settle

pytestmark = [pytest.mark.browser, pytest.mark.slow]

PAGES = {
    "dashboard": "/",
    "rfm": "/rfm",
    "rfm-cell": "/rfm/cells/R1F3M3",
    "cohorts": "/cohorts?by=acquisition_channel&metric=retention",
    "segments": "/segments",
    "segment-builder": "/segments/new",
    "contacts": "/contacts?q=a",
    "personas": "/personas",
    "persona-template": "/personas/templates/high_value_buyer",
    "campaigns": "/campaigns",
    "campaign-new": "/campaigns/new",
    "triggers": "/triggers",
    "trigger-new": "/triggers/new",
    "exports": "/exports",
    "inbox": "/inbox",
}


@pytest.mark.parametrize("name", list(PAGES))
def test_page_renders_accessibly(page, name):
    page.goto(PAGES[name])
    settle(page)
    assert page.locator("h1").count() == 1
    assert page.locator("[aria-current=page]").count() == 1  # the navigation says where we are
    assert not page.locator(".notice.error, .banner.error").count(), page.inner_text("main")
    assert axe(page) == []
    screenshot(page, name)


def test_every_control_reachable_by_keyboard(page):
    """Tab from the top reaches the builder's first field picker and the count updates."""
    page.goto("/segments/new")
    settle(page)
    reached = set()
    for _ in range(40):
        page.keyboard.press("Tab")
        reached.add(page.evaluate("document.activeElement.id || document.activeElement.textContent.trim()"))
    assert "r-0-field" in reached and "tab-text" in reached


def _choose(page, selector: str, value) -> None:
    page.select_option(selector, value)
    settle(page)


def test_nested_rule_counts_what_the_cli_previews(page, site):
    page.goto("/segments/new")
    settle(page)
    page.fill("#as_of", AS_OF)
    # city in (London, Paris)
    _choose(page, "#r-0-field", "city")
    _choose(page, "#r-0-op", "in")
    _choose(page, "#r-0-value", ["London", "Paris"])
    # and a group: any of (iOS e-mail opens in the last 90 days, NOT bought Fashion)
    page.click("button[value='add:r:group']")
    settle(page)
    _choose(page, "#r-1-op", "or")
    page.click("button[value='add:r.1:field']")
    settle(page)
    _choose(page, "#r-1-0-what", "activity")
    _choose(page, "#r-1-0-source", "email_open")
    _choose(page, "#r-1-0-w_type", "last")
    page.click("button[value='addf:r.1.0']")
    settle(page)
    _choose(page, "#r-1-0-f0-field", "device_os")
    page.fill("#r-1-0-f0-value", "iOS")
    page.click("button[value='add:r.1:group']")
    settle(page)
    page.check("input[name='r.1.1:not']")
    page.click("button[value='add:r.1.1:field']")
    settle(page)
    _choose(page, "#r-1-1-0-what", "purchased")
    _choose(page, "#r-1-1-0-f0-value", "Fashion") if page.locator("select#r-1-1-0-f0-value").count() else \
        page.fill("#r-1-1-0-f0-value", "Fashion")
    page.wait_for_timeout(800)
    settle(page)
    count = int(page.get_attribute("#live-count", "data-count"))
    assert count == site["cli_count"] > 0
    screenshot(page, "segment-builder-nested")
    page.click("#tab-text")
    settle(page)
    from segmentum.segments.parser import parse
    from segmentum.segments.printer import to_text

    assert to_text(parse(page.input_value("#rule-text"))) == to_text(parse(NESTED_RULE))
    screenshot(page, "segment-text")


def test_broken_rule_is_underlined_at_its_position(page):
    page.goto("/segments/new")
    settle(page)
    page.click("#tab-text")
    settle(page)
    page.fill("#rule-text", "count(orders) > 2\n  and cuont(email_open) > 1")
    mark = page.locator(".editor .mirror mark.rule-error")
    mark.wait_for()
    assert mark.inner_text() == "cuont"
    assert page.get_attribute("#rule-problems", "data-line") == "2"
    assert page.get_attribute("#rule-problems", "data-column") == "7"
    assert "Did you mean \"count\"" in page.inner_text("#count-body")
    assert page.get_attribute("#rule-text", "aria-invalid") == "true"
    screenshot(page, "segment-text-error")
    page.fill("#rule-text", "count(orders) > 2\n  and count(email_open) > 1")
    page.locator("#live-count").wait_for()
    assert page.locator(".editor .mirror mark").count() == 0


def test_contact_card_and_explain(page):
    page.goto("/segments/new?rule=" + "count(orders) >= 3")
    settle(page)
    page.fill("#as_of", AS_OF)
    page.locator("#live-count").wait_for()
    settle(page)
    member = page.locator("#count-body tbody a").first.inner_text()
    page.fill("#explain-contact", member)
    page.get_by_role("button", name="Explain").click()
    page.locator("#explain-result .explain").wait_for()
    text = page.inner_text("#explain-result")
    assert f"{member} is IN" in text and "count(orders)" in text
    page.click(f"#count-body a:text-is('{member}')")
    page.wait_for_url(re.compile(f"/contacts/{member}$"))
    settle(page)
    for section in ("Profile", "Consents", "Scores", "Segments", "Personas", "Last orders", "Timeline"):
        assert page.locator("h2", has_text=section).count() == 1, section
    assert axe(page) == []
    screenshot(page, "contact-card")


def test_search_finds_a_contact(page):
    page.goto("/contacts")
    page.fill("#q", "C00001")
    page.press("#q", "Enter")
    page.wait_for_url(re.compile(r"q=C00001"))
    rows = page.locator("tbody tr")
    assert rows.count() > 0 and rows.first.inner_text().startswith("C00001")


def test_rfm_cell_drill_down_and_save(page):
    page.goto("/rfm?color=revenue&scale=viridis")
    settle(page)
    page.locator("a.rfm-cell").first.click()
    page.wait_for_url(re.compile(r"/rfm/cells/R\dF\dM\d"))
    cell = page.url.rsplit("/", 1)[1]
    settle(page)
    page.get_by_role("button", name="Save as segment").click()
    page.locator("#save-result .notice.ok").wait_for()
    assert f"rfm-{cell.lower()}" in page.inner_text("#save-result")


def test_cohort_metric_switch(page):
    page.goto("/cohorts")
    settle(page)
    page.select_option("#metric", "ltv")
    page.wait_for_url(re.compile("metric=ltv"))
    settle(page)
    assert "Cumulative revenue per member" in page.inner_text("#heat-title")
    assert page.locator("table.heat tbody tr").count() > 3


def test_campaign_created_sent_and_reported(page, site):
    # a segment to send to, saved from the builder
    page.goto("/segments/new?rule=" + "email_opt_in and city = \"London\"")
    settle(page)
    page.fill("#seg-name", "london-subscribers")
    page.get_by_role("button", name="Save and refresh").click()
    page.wait_for_url(re.compile("/segments/london-subscribers$"))
    settle(page)
    size = int(page.inner_text(".kpi dd").split()[0].replace(",", ""))
    assert size > 0
    page.get_by_role("link", name="New campaign").click()
    page.wait_for_url(re.compile("/campaigns/new"))
    settle(page)
    page.fill("#name", "london-hello")
    page.fill("#control_pct", "20")
    page.fill("#subject", "Hello {{ first_name }}")
    page.fill("#text", "Hello {{ first_name }} in {{ city }}!")
    page.fill("#quiet_start", "")
    page.fill("#quiet_end", "")
    member = cli_first_member(site)
    page.fill("#preview_contact", member)
    page.get_by_role("button", name="Preview").click()
    page.locator("#preview-result .message-preview").wait_for()
    assert "in London!" in page.inner_text("#preview-result")
    screenshot(page, "campaign-new-preview")
    page.get_by_role("button", name="Save campaign").click()
    page.wait_for_url(re.compile("/campaigns/london-hello$"))
    settle(page)
    page.click("#send-title ~ form button[type=submit]")
    page.locator("#send-result .notice").wait_for(timeout=180_000)
    assert "Planned and sent" in page.inner_text("#send-result")
    page.reload()
    settle(page)
    outcomes = page.inner_text("section:has(h2:text-matches('^Run '))")
    sent = int(re.search(r"sent ([\d,]+)", outcomes).group(1).replace(",", ""))
    control = int(re.search(r"\bcontrol ([\d,]+)", outcomes).group(1).replace(",", ""))
    assert sent > 0 and control > 0
    assert "Per arm" in outcomes and "Verdict" in outcomes
    emails = sorted(site["inbox"].glob("*.eml"))
    assert len(emails) >= sent
    assert axe(page) == []
    screenshot(page, "campaign-report")
    page.goto("/inbox")
    settle(page)
    assert page.locator("tbody tr").count() > 0
    page.locator("tbody a").first.click()
    settle(page)
    assert page.locator("h1").inner_text().startswith("Hello ")
    screenshot(page, "inbox-message")


def cli_first_member(site) -> str:
    """A London subscriber (from the generated data, read before the server held the file)."""
    import pandas as pd

    contacts = pd.read_parquet(site["root"] / "data" / "contacts.parquet")
    london = contacts[(contacts.city == "London") & (contacts.email_opt_in == True)]  # noqa: E712
    return str(london.sort_values("contact_id").contact_id.iloc[0])


def test_cli_preview_fixture_is_real(site):
    """The number the builder test compares with is the CLI's own JSON."""
    assert site["preview"]["count"] == site["cli_count"]
    assert cli  # the same helper ran it


def test_export_a_segment_and_its_history(page):
    page.goto("/segments/new?rule=" + "ads_opt_in and count(orders) >= 2")
    settle(page)
    page.fill("#seg-name", "ads-repeat-buyers")
    page.get_by_role("button", name="Save and refresh").click()
    page.wait_for_url(re.compile("/segments/ads-repeat-buyers$"))
    page.get_by_role("link", name="Export", exact=True).click()
    page.wait_for_url(re.compile("/exports"))
    assert page.input_value("#segment") == "ads-repeat-buyers"
    page.select_option("#format", "meta")
    page.get_by_role("button", name="Export", exact=True).click()
    done = page.locator("#export-result .notice.ok")
    done.wait_for()
    assert "rows written" in done.inner_text()
    with page.expect_download() as download:
        done.get_by_role("link", name="download").click()
    header = open(download.value.path(), encoding="utf-8").readline()
    assert "email" in header.lower()  # Meta's column headers, hashed identifiers below
    page.check("input[name=changes]")
    page.get_by_role("button", name="Export", exact=True).click()
    page.locator("#export-result .notice.ok").wait_for()
    page.goto("/exports")
    kinds = page.locator("tbody tr td:nth-child(5)").all_inner_texts()
    assert kinds[:2] == ["changes", "full"]
    screenshot(page, "exports-history")
