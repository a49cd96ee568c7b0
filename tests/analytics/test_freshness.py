"""The as-of rule with the data in view: a default where now makes no sense, and one warning
for an as-of after the data (analytics/freshness.py, used by the commands through
cli/common.py's as_of_for)."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from typer.testing import CliRunner

from segmentum.analytics.freshness import newest_data_time, resolve_as_of


def _utc(*args) -> dt.datetime:
    return dt.datetime(*args, tzinfo=dt.UTC)


@pytest.fixture
def ws(make_ws):
    # orders end 2024-03-10 12:00; an e-mail event comes later that day
    return make_ws(
        contacts=[{"contact_id": "a", "created_at": "2024-01-01"},
                  {"contact_id": "b", "created_at": "2024-02-01"}],
        orders=[{"order_id": "1", "contact_id": "a", "ordered_at": "2024-01-05", "total": 10},
                {"order_id": "2", "contact_id": "b", "ordered_at": "2024-03-10T12:00:00Z",
                 "total": 20}],
        events=[{"event_id": "e", "contact_id": "a", "type": "email_open",
                 "occurred_at": "2024-03-10T18:30:00Z"}],
    )


def test_newest_data_time_is_the_latest_activity(ws, make_ws):
    assert newest_data_time(ws) == _utc(2024, 3, 10, 18, 30)
    assert newest_data_time(make_ws()) is None


def test_without_as_of_now_while_the_data_are_fresh_else_the_end_of_their_day(ws):
    fresh = resolve_as_of(ws, None, now=_utc(2024, 3, 11, 9))
    assert fresh.time == _utc(2024, 3, 11, 9) and fresh.rule == "now"
    assert not fresh.warnings and not fresh.notes
    stale = resolve_as_of(ws, None, now=_utc(2024, 4, 20))
    assert stale.time == _utc(2024, 3, 11) and stale.rule == "end of the newest data's day"
    assert not stale.warnings
    assert stale.notes == [
        "As of 2024-03-11 00:00 UTC, the end of the day of the newest data (2024-03-10 18:30 "
        "UTC): now is 40 days later. Pass --as-of now for now, or --as-of DATE."
    ]
    assert resolve_as_of(ws, "now", now=_utc(2024, 4, 20)).rule == "given"


def test_an_as_of_more_than_a_day_after_the_data_is_said_once(ws, make_ws):
    within = resolve_as_of(ws, "2024-03-11T12:00:00Z", now=_utc(2024, 4, 20))
    assert within.time == _utc(2024, 3, 11, 12) and not within.warnings
    late = resolve_as_of(ws, "2024-06-01", now=_utc(2024, 4, 20))
    assert late.time == _utc(2024, 6, 1) and len(late.warnings) == 1
    assert late.warnings[0].startswith(
        "As of 2024-06-01 00:00 UTC is 82 days after the newest data (2024-03-10 18:30 UTC)"
    )
    assert "--as-of 2024-03-11" in late.warnings[0]
    assert late.to_dict() == {"as_of": _utc(2024, 6, 1), "as_of_rule": "given",
                              "newest_data": _utc(2024, 3, 10, 18, 30),
                              "warnings": late.warnings}
    # a command's own default is checked like a given time; an empty workspace says nothing
    own = resolve_as_of(ws, None, default="2024-05-01", now=_utc(2024, 4, 20))
    assert own.rule == "the command's default" and own.warnings
    empty = resolve_as_of(make_ws(), None, now=_utc(2024, 4, 20))
    assert empty.time == _utc(2024, 4, 20) and not empty.warnings


def test_commands_default_to_the_end_of_the_data_and_report_the_as_of_in_json(ws):
    from segmentum.cli.cohorts import app as cohorts_app
    from segmentum.cli.rfm import app as rfm_app

    path = str(ws.config.path)
    ws.close()
    runner = CliRunner()
    res = runner.invoke(cohorts_app, ["-w", path, "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["as_of"] == "2024-03-11T00:00:00+00:00"  # today is long after March 2024
    assert out["as_of_rule"] == "end of the newest data's day" and out["warnings"] == []
    res = runner.invoke(rfm_app, ["-w", path, "--as-of", "2025-01-01", "--json"])
    out = json.loads(res.stdout)
    assert out["as_of"] == "2025-01-01T00:00:00+00:00" and len(out["warnings"]) == 1
    assert "after the newest data (2024-03-10 18:30 UTC)" in out["warnings"][0]
    # in the terminal: the warning once, on stderr, and the result on stdout
    res = runner.invoke(cohorts_app, ["-w", path, "--as-of", "2025-01-01"])
    assert res.exit_code == 0, res.output
    assert res.stderr.count("Warning: As of 2025-01-01") == 1
    assert "Warning" not in res.stdout
