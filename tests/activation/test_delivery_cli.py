"""`segmentum channel / deliveries / consent` end to end: real processes, a real SMTP server."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys

import pytest

from segmentum.activation.delivery import DeliveryLog
from segmentum.activation.message import Origin

from tests.activation.sendkit import SmtpSink, contact_rows, scheduled, secrets_env, send_settings
from tests.workspaces import build_workspace

T = dt.datetime(2026, 11, 1, 9, tzinfo=dt.UTC)
ORIGIN = Origin("campaign", "news", "2026-11-01T09:00:00Z")


def cli(folder, *args, ok=True):
    r = subprocess.run([sys.executable, "-m", "segmentum.cli.app", "-w", str(folder / "ws.duckdb"),
                        *args], cwd=folder, capture_output=True, text=True,
                       env={**os.environ, "COLUMNS": "120"}, timeout=300)
    assert (r.returncode == 0) == ok, r.stdout + r.stderr
    return r


@pytest.fixture
def shop(tmp_path, monkeypatch):
    secrets_env(monkeypatch)
    with build_workspace(tmp_path / "ws.duckdb", contacts=contact_rows(12)) as ws:
        DeliveryLog(ws).record_plan(scheduled(ORIGIN, [f"C{i}" for i in range(12)], T))
    with SmtpSink() as sink:
        send_settings(tmp_path, smtp_port=sink.port)
        yield tmp_path, sink


@pytest.mark.slow
def test_consent_then_send_then_list(shop):
    folder, sink = shop
    listed = json.loads(cli(folder, "channel", "list", "--json").stdout)
    assert [c["name"] for c in listed["channels"]] == ["email", "archive"]
    assert listed["timezone"] == "Europe/Warsaw"
    cli(folder, "consent", "unsubscribe", "C3", "--channel", "email", "--source", "support")
    shown = json.loads(cli(folder, "consent", "show", "C3", "--json").stdout)
    assert shown["channels"]["email"] == {"marketing": "unsubscribed", "transactional": "allowed"}
    assert shown["events"][0]["source"] == "support"
    sent = json.loads(cli(folder, "deliveries", "send", "--as-of", "2026-11-01T09:00:00Z",
                          "--json").stdout)
    assert sent["outcomes"] == {"sent": 11, "unsubscribed": 1} and len(sink.raw) == 11
    again = cli(folder, "deliveries", "send", "--as-of", "2026-11-01T09:00:00Z").stdout
    assert "nothing was due" in again and len(sink.raw) == 11
    runs = cli(folder, "deliveries", "list").stdout
    assert "news" in runs and "sent 11, unsubscribed 1" in runs
    mine = json.loads(cli(folder, "deliveries", "list", "--contact", "C3", "--json").stdout)
    assert [m["outcome"] for m in mine["messages"]] == ["unsubscribed"]


@pytest.mark.slow
def test_channel_test_and_errors_are_one_line(shop):
    folder, sink = shop
    out = json.loads(cli(folder, "channel", "test", "email", "--to", "ops@shop.test", "--json").stdout)
    assert out["provider_id"] == f"<{out['key']}@shop.test>"
    [got] = sink.messages
    assert got["To"] == "ops@shop.test" and got["List-Unsubscribe"] is None
    bad = cli(folder, "channel", "test", "emial", "--to", "x@y.test", ok=False)
    assert 'Did you mean "email"' in bad.stderr and "Traceback" not in bad.stderr
    env_missing = subprocess.run(
        [sys.executable, "-m", "segmentum.cli.app", "-w", str(folder / "ws.duckdb"), "deliveries",
         "send", "--json"], cwd=folder, capture_output=True, text=True, timeout=300,
        env={k: v for k, v in os.environ.items() if k != "TEST_UNSUB_SECRET"})
    error = json.loads(env_missing.stdout)["error"]
    assert env_missing.returncode == 2 and error["code"] == "config"
    assert error["key"] == "channels.email.unsubscribe.secret_env" and len(sink.raw) == 1
