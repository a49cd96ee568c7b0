"""Campaign files: the model, located errors, schedules and run ids, the campaigns table."""

from __future__ import annotations

import datetime as dt

import pytest

from segmentum.activation.campaigns import CampaignStore, load_campaign, loads_campaign, run_id
from segmentum.activation.cron import Cron
from segmentum.errors import CampaignFileError, NotFoundError, UsageError

UTC = dt.UTC
BASE = """\
name: weekly
audience: {segment: subscribers}
content: weekly
"""


def error(text: str) -> dict:
    with pytest.raises(CampaignFileError) as exc:
        loads_campaign(text, "c.yaml")
    return exc.value.to_dict()


def test_defaults_and_full_file(tmp_path):
    c = loads_campaign(BASE)
    assert (c.channel, c.control_pct, c.salt, c.tags, c.on_cap) == (
        "email",
        10,
        "weekly",
        ("marketing",),
        "drop",
    )
    path = tmp_path / "autumn.yaml"
    path.write_text(
        BASE
        + "control_pct: 20\ncontrol_salt: s1\n"
        "caps:\n  - {channel: email, tag: marketing, limit: 2, window: 7d}\n"
        "quiet_hours: {start: '21:00', end: '08:00'}\nsend_time: fixed\nsend_hour: 10\n"
        "conversion: {window_days: 14, event: app_purchase}\ntransactional: true\non_cap: defer\n"
    )
    c = load_campaign(path)
    assert c.caps[0].window == dt.timedelta(days=7) and c.caps[0].limit == 2
    assert c.quiet_hours.start == dt.time(21) and c.send_hour == 10 and c.salt == "s1"
    assert c.effective_tags == ("marketing", "transactional")
    assert c.templates_dir == str((tmp_path / "templates").resolve())
    assert type(c).from_json(c.to_json()) == c


@pytest.mark.parametrize(
    "extra,key,line,message",
    [
        ("contrl_pct: 5\n", "contrl_pct", 4, "unknown key 'contrl_pct'"),
        ("control_pct: 80\n", "control_pct", 4, "less than or equal to 50"),
        ("caps:\n  - {limit: 2, window: 7x}\n", "caps.0.window", 5, "a duration is"),
        ("schedule: {cron: '0 9 * *'}\n", "schedule.cron", 4, "five fields"),
        (
            "schedule: {at: 2026-01-01, every: 1d}\n",
            "schedule",
            4,
            "give one of at, every and cron",
        ),
        ("send_time: fixed\n", None, 1, 'send_time "fixed" and send_hour go together'),
    ],
)
def test_errors_name_file_line_and_key(extra, key, line, message):
    got = error(BASE + extra)
    assert got["file"] == "c.yaml" and got["key"] == key and got["line"] == line
    assert message in got["message"]


def test_error_hints_and_yaml_errors():
    assert error(BASE + "contrl_pct: 5\n")["hint"] == 'Did you mean "control_pct"?'
    assert (
        error("name: x\naudience: {segment: a}\n")["message"]
        == "c.yaml, line 1: content: missing key 'content'"
    )
    assert error("name: x\naudience: {segment: a, rule: b}\ncontent: t\n")["key"] == "audience"
    bad = error("name: [unclosed\n")
    assert bad["message"].startswith("c.yaml, line 2: not valid YAML") and bad["line"] == 2
    assert "letters, digits" in error(BASE.replace("weekly", "bad name", 1))["message"]


def test_schedule_runs():
    at = loads_campaign(BASE + "schedule: {at: 2026-11-01T09:00:00Z}\n").schedule
    assert at.run_at("2026-11-03") == dt.datetime(2026, 11, 1, 9, tzinfo=UTC)
    with pytest.raises(UsageError, match="first run is at 2026-11-01T09:00:00Z"):
        at.run_at("2026-10-31")
    every = loads_campaign(BASE + "schedule: {every: 7d, start: 2026-10-01T08:00:00Z}\n").schedule
    assert run_id(every.run_at("2026-10-15T07:59:59Z")) == "2026-10-08T08:00:00Z"
    assert run_id(every.run_at("2026-10-15T08:00:00Z")) == "2026-10-15T08:00:00Z"
    now = loads_campaign(BASE).schedule
    assert run_id(now.run_at("2026-10-15T08:00:00.7Z")) == "2026-10-15T08:00:00Z"
    cron = loads_campaign(BASE + "schedule: {cron: '30 9 * * MON'}\n").schedule
    assert run_id(cron.run_at("2026-12-03T12:00:00Z")) == "2026-11-30T09:30:00Z"  # a Monday


@pytest.mark.parametrize(
    "expr,at,expected",
    [
        ("0 9 * * *", "2026-12-03T08:59:00", "2026-12-02T09:00:00"),
        ("*/15 * * * *", "2026-12-03T08:59:00", "2026-12-03T08:45:00"),
        ("0 0 1 JAN,JUL *", "2026-12-03T00:00:00", "2026-07-01T00:00:00"),
        ("0 12 13 * FRI", "2026-12-03T00:00:00", "2026-11-27T12:00:00"),  # 13th or Friday
        ("0 8 * * 0", "2026-12-03T00:00:00", "2026-11-29T08:00:00"),  # Sunday
        ("0 8 * * 7", "2026-12-03T00:00:00", "2026-11-29T08:00:00"),
        ("5-10/5 1 * * 1-5", "2026-12-03T01:07:00", "2026-12-03T01:05:00"),
    ],
)
def test_cron_latest(expr, at, expected):
    got = Cron.parse(expr).latest(dt.datetime.fromisoformat(at).replace(tzinfo=UTC))
    assert got == dt.datetime.fromisoformat(expected).replace(tzinfo=UTC)


@pytest.mark.parametrize("expr", ["61 * * * *", "* * * *", "a b c d e", "0 9 31 2-1 *"])
def test_cron_errors(expr):
    with pytest.raises(UsageError, match="[Cc]ron"):
        Cron.parse(expr)


def test_store_create_update_unchanged(ws):
    store = CampaignStore(ws)
    c = loads_campaign(BASE)
    assert store.save(c, "a.yaml") == "created"
    assert store.save(c, "a.yaml", replace=True) == "unchanged"
    with pytest.raises(UsageError, match="already exists"):
        store.save(c)
    changed = loads_campaign(BASE + "control_pct: 25\n")
    assert store.save(changed, "a.yaml", replace=True) == "updated"
    assert store.require("weekly").control_pct == 25 and store.names() == ["weekly"]
    with pytest.raises(NotFoundError, match="weekl") as exc:
        store.require("weekl")
    assert exc.value.hint == 'Did you mean "weekly"?'
