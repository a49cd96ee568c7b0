"""Quiet hours: a send time inside the window moves to its end, in the contact's zone, across DST."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from segmentum.activation.quiet_hours import QuietHours
from segmentum.errors import UsageError

U = dt.UTC
NIGHT = QuietHours(dt.time(21), dt.time(8))


def utc(*a) -> dt.datetime:
    return dt.datetime(*a, tzinfo=U)


@pytest.mark.parametrize(
    "send_at, tz, expected",
    [
        (utc(2026, 11, 1, 12), "Europe/Warsaw", utc(2026, 11, 1, 12)),  # 13:00 local: allowed
        (utc(2026, 11, 1, 22), "Europe/Warsaw", utc(2026, 11, 2, 7)),  # 23:00 -> 08:00 CET
        (utc(2026, 11, 1, 6, 30), "Europe/Warsaw", utc(2026, 11, 1, 7)),  # 07:30 -> 08:00
        (utc(2026, 11, 1, 7), "Europe/Warsaw", utc(2026, 11, 1, 7)),  # 08:00 sharp is allowed
        (utc(2026, 11, 1, 20), "Europe/Warsaw", utc(2026, 11, 2, 7)),  # 21:00 sharp is quiet
        (utc(2026, 11, 1, 2), "America/New_York", utc(2026, 11, 1, 13)),  # 22:00 EDT -> 08:00 EST
        (utc(2026, 11, 1, 2), None, utc(2026, 11, 1, 8)),  # no zone: the fallback (UTC)
        (utc(2026, 11, 1, 2), "Mars/Olympus", utc(2026, 11, 1, 8)),  # unknown zone: fallback
    ],
)
def test_moves_into_the_window_edge(send_at, tz, expected):
    assert NIGHT.next_allowed(send_at, tz) == expected


def test_fallback_zone_is_the_workspaces():
    q = QuietHours("21:00", "08:00", fallback_tz="Asia/Tokyo")
    # 02:00 UTC = 11:00 in Tokyo: allowed; in UTC it would have moved to 08:00
    assert q.next_allowed(utc(2026, 11, 1, 2), None) == utc(2026, 11, 1, 2)


def test_spring_forward_end_that_does_not_exist_ends_at_the_jump():
    # Warsaw 2026-03-29: 02:00 CET jumps to 03:00 CEST (01:00 UTC); quiet until 02:30
    q = QuietHours("00:00", "02:30")
    assert q.next_allowed(utc(2026, 3, 29, 0, 30), "Europe/Warsaw") == utc(2026, 3, 29, 1)
    # the ordinary day before: 02:30 CET = 01:30 UTC
    assert q.next_allowed(utc(2026, 3, 28, 0, 30), "Europe/Warsaw") == utc(2026, 3, 28, 1, 30)


def test_fall_back_end_that_occurs_twice_takes_the_first_after_the_send_time():
    # Warsaw 2026-10-25: 03:00 CEST falls back to 02:00 CET at 01:00 UTC; 02:30 occurs twice
    q = QuietHours("01:00", "02:30")
    assert q.next_allowed(utc(2026, 10, 24, 23, 30), "Europe/Warsaw") == utc(2026, 10, 25, 0, 30)
    # 02:10 CET (second pass) is quiet again, and ends at the second 02:30
    assert q.next_allowed(utc(2026, 10, 25, 1, 10), "Europe/Warsaw") == utc(2026, 10, 25, 1, 30)


def test_night_window_across_dst_keeps_local_eight_oclock():
    # the night of the autumn change: 23:00 CEST -> 08:00 CET, 10 hours later, not 9
    assert NIGHT.next_allowed(utc(2026, 10, 24, 21), "Europe/Warsaw") == utc(2026, 10, 25, 7)
    assert NIGHT.next_allowed(utc(2026, 3, 28, 21), "Europe/Warsaw") == utc(2026, 3, 29, 6)


def test_window_within_a_day_and_empty_window():
    lunch = QuietHours("12:00", "13:00")
    assert lunch.next_allowed(utc(2026, 6, 1, 12, 15), "UTC") == utc(2026, 6, 1, 13)
    assert lunch.next_allowed(utc(2026, 6, 1, 11, 59), "UTC") == utc(2026, 6, 1, 11, 59)
    never = QuietHours("09:00", "09:00")
    assert never.next_allowed(utc(2026, 6, 1, 9), "UTC") == utc(2026, 6, 1, 9)


def test_bad_settings_are_usage_errors():
    with pytest.raises(UsageError, match="HH:MM"):
        QuietHours("9pm", "08:00")
    with pytest.raises(UsageError, match="time zone"):
        QuietHours("21:00", "08:00", fallback_tz="Nowhere/Land")


ZONES = ["Europe/Warsaw", "America/New_York", "Australia/Lord_Howe", "Asia/Kolkata", "UTC",
         "America/Santiago", "Pacific/Chatham"]


@settings(max_examples=300, deadline=None)
@given(
    minute=st.integers(0, 366 * 24 * 60),
    start=st.integers(0, 24 * 4 - 1),
    end=st.integers(0, 24 * 4 - 1),
    tz=st.sampled_from(ZONES),
)
def test_result_is_the_first_allowed_instant(minute, start, end, tz):
    """Independent check by brute force over minutes: the answer is allowed, not earlier
    than the send time, and every minute before it (from the send time) is quiet."""
    q = QuietHours(dt.time(start // 4, start % 4 * 15), dt.time(end // 4, end % 4 * 15))
    send_at = utc(2026, 1, 1) + dt.timedelta(minutes=minute)
    got = q.next_allowed(send_at, tz)
    zone = ZoneInfo(tz)
    assert got >= send_at
    assert not q.quiet_at(got.astimezone(zone).time())
    probe = send_at
    while probe < got:
        assert q.quiet_at(probe.astimezone(zone).time()), (probe, got)
        probe += dt.timedelta(minutes=1)
    assert got - send_at <= dt.timedelta(hours=26)
