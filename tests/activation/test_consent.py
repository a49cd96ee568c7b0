"""Consent: opt-ins, unsubscribes by scope and channel, suppressions, tokens - on a real workspace."""

from __future__ import annotations

import datetime as dt

import pytest

from segmentum.activation import consent as C
from segmentum.activation.channels import load_channels
from segmentum.errors import ConfigError, ConsentError, NotFoundError, UsageError

from tests.activation.sendkit import contact_rows, send_settings
from tests.workspaces import build_workspace

T0 = dt.datetime(2026, 11, 1, 9, tzinfo=dt.UTC)


@pytest.fixture
def shop(tmp_path):
    rows = contact_rows(6)
    rows[1]["email_opt_in"] = False
    rows[2]["email_opt_in"] = None  # unknown counts as no
    ws = build_workspace(tmp_path / "ws.duckdb", contacts=rows)
    send_settings(tmp_path, smtp_port=2525, webhook_url="http://127.0.0.1:1/hook")
    yield ws, load_channels(ws)
    ws.close()


def reasons(ws, channel, transactional=False, at=None, ids=None):
    return C.ConsentPolicy(ws).check(ids or [f"C{i}" for i in range(6)] + ["NOBODY"], channel,
                                     transactional, at)


def test_opt_in_columns_null_and_unknown_contacts(shop):
    ws, ch = shop
    got = reasons(ws, ch["email"])
    assert got == {"C0": None, "C1": "no_consent", "C2": "no_consent", "C3": None, "C4": None,
                   "C5": None, "NOBODY": "no_consent"}
    # transactional mail needs no marketing opt-in
    assert reasons(ws, ch["email"], transactional=True)["C1"] is None


def test_marketing_unsubscribe_keeps_transactional_and_all_stops_both(shop):
    ws, ch = shop
    C.unsubscribe(ws, "C0", "email", "list-unsubscribe", at=T0)
    C.unsubscribe(ws, "C3", "all", "support", at=T0, scope="all")
    later = T0 + dt.timedelta(minutes=1)
    marketing = reasons(ws, ch["email"], at=later)
    transactional = reasons(ws, ch["email"], transactional=True, at=later)
    assert marketing["C0"] == "unsubscribed" and transactional["C0"] is None
    assert marketing["C3"] == "unsubscribed" and transactional["C3"] == "unsubscribed"
    # before the unsubscribe's time it was not in force
    assert reasons(ws, ch["email"], at=T0 - dt.timedelta(seconds=1))["C0"] is None
    # an e-mail unsubscribe does not touch SMS; "all" does
    sms = reasons(ws, ch["sms"], at=later)
    assert sms["C0"] is None and sms["C3"] == "unsubscribed"


def test_channel_kind_covers_every_channel_of_that_kind(shop):
    ws, ch = shop
    C.unsubscribe(ws, "C4", "webhook", "app", at=T0)  # the kind of the sms channel
    assert reasons(ws, ch["sms"], at=T0)["C4"] == "unsubscribed"
    assert reasons(ws, ch["email"], at=T0)["C4"] is None


def test_latest_event_decides_resubscribe_and_suppression(shop):
    ws, ch = shop
    C.unsubscribe(ws, "C0", "email", "link", at=T0)
    C.resubscribe(ws, "C0", "email", "preference-centre", at=T0 + dt.timedelta(days=1))
    assert reasons(ws, ch["email"], at=T0 + dt.timedelta(hours=1))["C0"] == "unsubscribed"
    assert reasons(ws, ch["email"], at=T0 + dt.timedelta(days=2))["C0"] is None
    C.suppress(ws, "C5", "email", "hard-bounce", at=T0)
    assert reasons(ws, ch["email"], transactional=True, at=T0)["C5"] == "suppressed"
    C.unsuppress(ws, "C5", "email", "address fixed", at=T0 + dt.timedelta(days=1))
    assert reasons(ws, ch["email"], at=T0 + dt.timedelta(days=1))["C5"] is None
    events = ws.table(C.CONSENT_EVENTS).to_pyarrow().to_pylist()
    assert {(e["contact_id"], e["action"], e["source"]) for e in events} >= {
        ("C0", "unsubscribe", "link"), ("C5", "suppress", "hard-bounce")}


def test_filter_takes_a_table_and_counts_changes(shop):
    ws, ch = shop
    before = C.changes(ws)
    C.unsubscribe(ws, "C0", "email", "link")
    assert C.changes(ws) == before + 1
    t = C.ConsentPolicy(ws).filter(ws.table("contacts").select("contact_id"), ch["email"])
    rows = {r["contact_id"]: (r["allowed"], r["reason"]) for r in t.to_pyarrow().to_pylist()}
    assert rows["C0"] == (False, "unsubscribed") and rows["C3"] == (True, None)


def test_recording_errors(shop):
    ws, ch = shop
    with pytest.raises(NotFoundError, match="No contact 'C99'"):
        C.unsubscribe(ws, "C99", "email", "link")
    with pytest.raises(UsageError, match="scope"):
        C.unsubscribe(ws, "C0", "email", "link", scope="newsletters")
    with pytest.raises(UsageError, match="source"):
        C.unsubscribe(ws, "C0", "email", " ")


def test_channel_reading_a_missing_consent_column_is_a_config_error(shop, tmp_path):
    ws, _ = shop
    (tmp_path / "segmentum.yaml").write_text(
        "channels:\n  wa:\n    type: outbox\n    path: wa.jsonl\n    consent_field: whatsapp_opt_in\n")
    with pytest.raises(ConfigError, match="whatsapp_opt_in"):
        C.ConsentPolicy(ws).check(["C0"], "wa")


def test_unsubscribe_tokens_are_signed():
    token = C.unsubscribe_token("k1", "C42", "email")
    assert C.read_unsubscribe_token("k1", token) == ("C42", "email")
    with pytest.raises(ConsentError):
        C.read_unsubscribe_token("other-key", token)
    forged = C.unsubscribe_token("k1", "C43", "email").split(".")[0] + "." + token.split(".")[1]
    with pytest.raises(ConsentError):
        C.read_unsubscribe_token("k1", forged)
