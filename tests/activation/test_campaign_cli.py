"""`segmentum campaign ...` end to end: a real SMTP server on 127.0.0.1, real processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.activation.sendkit import SmtpSink, contact_rows, secrets_env, send_settings
from tests.workspaces import build_workspace

CAMPAIGN = """\
name: welcome-back
audience: {rule: 'email_opt_in'}
channel: email
content:
  subject: "Hello {{ contact_id }}"
  text: "Hi {{ contact_id }}, welcome back."
  html: "<p>Hi {{ contact_id }}, welcome back.</p>"
schedule: {at: 2026-11-02T09:00:00Z}
control_pct: 20
caps: [{channel: email, tag: marketing, limit: 1, window: 7d}]
"""


@pytest.fixture
def shop(tmp_path, monkeypatch):
    secrets_env(monkeypatch)
    rows = contact_rows(120, opt_in=lambda i: i % 6 != 0)
    build_workspace(tmp_path / "ws.duckdb", contacts=rows).close()
    (tmp_path / "welcome.yaml").write_text(CAMPAIGN)
    return tmp_path


def cli(folder, *args, ok=True, process=False):
    """Run `segmentum -w ws.duckdb ARGS` in this process (Typer's runner), or with
    ``process`` as a real process; JSON output parsed."""
    argv = ["-w", str(folder / "ws.duckdb"), *args]
    if process:
        env = {**os.environ, "COLUMNS": "100"}
        r = subprocess.run(
            [sys.executable, "-m", "segmentum.cli.app", *argv],
            capture_output=True,
            text=True,
            cwd=folder,
            env=env,
        )
        code, out, err = r.returncode, r.stdout, r.stderr
    else:
        from typer.testing import CliRunner

        from segmentum.cli.app import app

        r = CliRunner().invoke(app, argv, env={"COLUMNS": "100"})
        code, out, err = r.exit_code, r.output, repr(r.exception)
    assert (code == 0) == ok, out + err
    assert "Traceback" not in err
    return json.loads(out) if "--json" in args else out


def test_create_send_resend_show_report(shop):
    with SmtpSink() as smtp:
        send_settings(shop, smtp_port=smtp.port)
        assert cli(shop, "campaign", "create", str(shop / "welcome.yaml"), "--json") == {
            "name": "welcome-back",
            "action": "created",
        }
        send = ("campaign", "send", "welcome-back", "--as-of", "2026-11-02T09:30:00Z", "--json")
        dry = cli(shop, *send, "--dry-run")
        assert dry["dry_run"] and dry["audience"] == 100 and smtp.messages == []
        assert dry["outcomes"]["scheduled"] + dry["outcomes"]["control"] == 100
        sent = cli(shop, *send, process=True)
        assert sent["run"] == "2026-11-02T09:00:00Z" and sent["planned_now"]
        assert sent["outcomes"]["sent"] == dry["outcomes"]["scheduled"] == len(smtp.messages)
        subjects = sorted(m["Subject"] for m in smtp.messages)
        assert len(set(subjects)) == len(subjects) and subjects[0].startswith("Hello C")
        again = cli(shop, "campaign", "send", "welcome-back", "--as-of", "2026-11-03", "--json")
        assert not again["planned_now"] and again["outcomes"] == sent["outcomes"]
        assert len(smtp.messages) == sent["outcomes"]["sent"]  # nothing twice
        shown = cli(shop, "campaign", "show", "welcome-back", "--json")
        assert shown["runs"] == {"2026-11-02T09:00:00Z": sent["outcomes"]}
        listed = cli(shop, "campaign", "list", "--json")["campaigns"]
        assert [(c["name"], c["runs"]) for c in listed] == [
            ("welcome-back", ["2026-11-02T09:00:00Z"])
        ]
        report = cli(shop, "campaign", "report", "welcome-back", "--as-of", "2026-11-20", "--json")
        assert (
            report["verdict"] == "not enough data"
            and report["arms"]["control"]["contacts"] == sent["outcomes"]["control"]
        )
        assert "verdict: not enough data" in cli(
            shop, "campaign", "report", "welcome-back", "--as-of", "2026-11-20"
        )


def test_a_second_campaign_is_capped_by_the_first(shop):
    from segmentum.activation.campaigns import loads_campaign
    from segmentum.activation.runs import send_campaign
    from segmentum.workspace import open_workspace

    with SmtpSink() as smtp, open_workspace(shop / "ws.duckdb") as ws:
        send_settings(shop, smtp_port=smtp.port)
        first = send_campaign(ws, loads_campaign(CAMPAIGN), "2026-11-02T09:00:00Z")
        second = loads_campaign(
            CAMPAIGN.replace("welcome-back", "second").replace("control_pct: 20", "control_pct: 0")
        )
        got = send_campaign(ws, second, "2026-11-04T09:00:00Z")
        # 1 marketing e-mail per 7 days: whoever got the first is capped in the second
        assert got.outcomes["capped"] == first.outcomes["sent"]
        assert got.outcomes["sent"] == 100 - first.outcomes["sent"]
        assert len(smtp.messages) == 100


def test_a_channel_that_would_fail_every_message_stops_the_run(shop, monkeypatch):
    from segmentum.activation.campaigns import loads_campaign
    from segmentum.activation.runs import send_campaign
    from segmentum.errors import ConfigError
    from segmentum.workspace import open_workspace

    send_settings(shop, smtp_port=2)
    monkeypatch.delenv("TEST_UNSUB_SECRET")
    with open_workspace(shop / "ws.duckdb") as ws:
        with pytest.raises(ConfigError, match="TEST_UNSUB_SECRET"):
            send_campaign(ws, loads_campaign(CAMPAIGN), "2026-11-02T09:00:00Z", dry_run=True)
        text = (shop / "segmentum.yaml").read_text()
        (shop / "segmentum.yaml").write_text(
            text.split("    unsubscribe:")[0] + "  archive:\n    type: outbox\n    path: o.jsonl\n"
        )
        with pytest.raises(ConfigError, match="no unsubscribe link") as exc:
            send_campaign(ws, loads_campaign(CAMPAIGN), "2026-11-02T09:00:00Z")
        assert exc.value.details["key"] == "channels.email.unsubscribe"
        assert not ws.warehouse.has_table("deliveries")


def test_mistakes_are_one_line_or_one_json_object(shop):
    send_settings(shop, smtp_port=2)
    err = cli(shop, "campaign", "send", "nope", "--json", ok=False, process=True)
    assert err["error"]["code"] == "not_found"
    (shop / "bad.yaml").write_text(CAMPAIGN + "contrl_pct: 3\n")
    err = cli(shop, "campaign", "create", str(shop / "bad.yaml"), "--json", ok=False)
    assert (err["error"]["code"], err["error"]["line"], err["error"]["key"]) == (
        "campaign_file",
        11,
        "contrl_pct",
    )
    assert (
        cli(
            shop,
            "campaign",
            "global-control",
            "--pct",
            "5",
            "--salt",
            "g",
            "--start",
            "2026-01-01",
            "--json",
        )["epochs"][0]["salt"]
        == "g"
    )


def test_transactional_runs_are_recorded_and_sent_whole(shop):
    from segmentum.activation.campaigns import loads_campaign
    from segmentum.activation.runs import send_campaign
    from segmentum.workspace import open_workspace

    spec = CAMPAIGN.replace("email_opt_in", "true").replace(
        "control_pct: 20", "transactional: true"
    )
    with SmtpSink() as smtp, open_workspace(shop / "ws.duckdb") as ws:
        send_settings(shop, smtp_port=smtp.port)
        got = send_campaign(ws, loads_campaign(spec), "2026-11-02T09:00:00Z")
        assert got.outcomes == {"sent": 120} and len(smtp.messages) == 120  # no opt-in needed
        assert all("List-Unsubscribe" not in m for m in smtp.messages)
