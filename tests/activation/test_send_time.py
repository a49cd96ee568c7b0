"""Send-time optimisation on a real DuckDB workspace with opens planted at known local hours."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pandas as pd
import pytest

from segmentum.activation.send_time import (
    SendTimeConfig,
    best_hours,
    choose_hours,
    explore_draw,
    hour_scores,
    next_send_time,
    next_send_times,
)
from segmentum.errors import UsageError

T = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)
NO_EXPLORE = SendTimeConfig(explore_share=0.0)


def opens_at(contact: str, tz: str, local_hour: int, days_ago: list[int], *, machine=False,
             type_="email_open"):
    """Open events at ``local_hour``:20 on each of the given days (local clock of ``tz``)."""
    rows = []
    for d in days_ago:
        day = (T - dt.timedelta(days=d)).date()
        local = dt.datetime(day.year, day.month, day.day, local_hour, 20, tzinfo=ZoneInfo(tz))
        props = {"mail_client": "Apple Mail"} | ({"is_machine_open": True} if machine else {})
        rows.append(dict(event_id=f"{contact}-{type_}-{d}-{local_hour}-{machine}",
                         contact_id=contact, type=type_, occurred_at=local.astimezone(dt.UTC),
                         properties=props))
    return rows


CONTACTS = [
    dict(contact_id=c, created_at="2024-01-01T00:00:00Z", timezone=tz)
    for c, tz in [("A", "Europe/Warsaw"), ("B", "America/New_York"), ("C", "Asia/Tokyo"),
                  ("D", None), ("E", "Not/AZone"), ("F", "Europe/Warsaw")]
]


@pytest.fixture
def shop(make_ws):
    events = (
        opens_at("A", "Europe/Warsaw", 20, [3, 10, 17, 24, 40])
        # machine opens right after each send: many, but they must not count
        + opens_at("A", "Europe/Warsaw", 8, list(range(2, 60, 2)), machine=True)
        + opens_at("B", "America/New_York", 7, [5, 12, 19, 26])
        + opens_at("C", "Asia/Tokyo", 12, [1, 8], type_="email_click")
        + opens_at("C", "Asia/Tokyo", 12, [15])
        + opens_at("D", "UTC", 13, [4])  # too little history: the population hour
        # E's zone is unknown: read as UTC (the fallback)
        + opens_at("E", "UTC", 21, [1, 2, 3, 4])
    )
    return make_ws(contacts=CONTACTS, events=events)


def hours_of(table) -> dict[str, tuple]:
    rows = table.to_pyarrow().to_pylist()
    return {r["contact_id"]: (r["hour_local"], r["timezone"], r["source"]) for r in rows}


def test_best_hour_is_the_local_habit_without_machine_opens(shop):
    got = hours_of(best_hours(shop, "email", T, config=NO_EXPLORE))
    assert got["A"] == (20, "Europe/Warsaw", "contact")
    assert got["B"] == (7, "America/New_York", "contact")
    assert got["C"] == (12, "Asia/Tokyo", "contact")  # clicks count too
    assert got["E"] == (21, "UTC", "contact")
    # D (one open) and F (none) get the population's hour
    assert got["D"][2] == got["F"][2] == "population"
    assert got["D"][0] == got["F"][0]
    assert set(got) == {"A", "B", "C", "D", "E", "F"}


def test_machine_opens_would_win_if_counted(shop):
    cfg = SendTimeConfig(explore_share=0.0, exclude_machine_opens=False)
    assert hours_of(best_hours(shop, "email", T, ["A"], config=cfg))["A"][0] == 8


def test_recent_habit_outweighs_an_older_one(make_ws):
    w = "Europe/Warsaw"
    events = opens_at("A", w, 9, [300, 310, 320, 330, 340]) + opens_at("A", w, 18, [5, 12, 19])
    ws = make_ws(contacts=CONTACTS[:1], events=events)
    assert hours_of(best_hours(ws, "email", T, ["A"], config=NO_EXPLORE))["A"][0] == 18
    flat = SendTimeConfig(explore_share=0.0, half_life_days=10_000)
    assert hours_of(best_hours(ws, "email", T, ["A"], config=flat))["A"][0] == 9


def test_events_after_the_as_of_time_are_not_used(shop):
    early = T - dt.timedelta(days=11)  # A's opens of days 3 and 10 are after this
    got = hours_of(best_hours(shop, "email", early, ["A"], config=SendTimeConfig(
        explore_share=0.0, min_events=4)))
    assert got["A"][2] == "population"  # only 3 opens before


def test_other_channels_count_their_own_events(shop):
    got = hours_of(best_hours(shop, "push", T, ["A"], config=NO_EXPLORE))
    assert got["A"][2] == "population"


def test_exploration_share_is_deterministic_and_near_its_target():
    ids = [f"C{i:05d}" for i in range(20_000)]
    day = dt.date(2026, 11, 1)
    cfg = SendTimeConfig()
    hours, sources = choose_hours(ids, [20] * len(ids), [10] * len(ids), 9, day, cfg)
    share = sources.count("explore") / len(ids)
    assert 0.09 < share < 0.11
    assert (hours, sources) == choose_hours(ids, [20] * len(ids), [10] * len(ids), 9, day, cfg)
    explored = [h for h, s in zip(hours, sources, strict=True) if s == "explore"]
    assert set(explored) == set(cfg.explore_hours)  # every waking hour gets explored
    # the explorers change with the day
    _, other = choose_hours(ids, [20] * len(ids), [10] * len(ids), 9, day + dt.timedelta(days=1), cfg)
    same = sum(a == b == "explore" for a, b in zip(sources, other, strict=True))
    assert same < 0.2 * sources.count("explore")
    u, k = explore_draw("s", "C1", day)
    assert 0 <= u < 1 and k >= 0


def test_warehouse_choice_is_the_python_rule(make_ws):
    """best_hours draws explorers and their hours in the warehouse: the same as choose_hours."""
    ids = [f"K{i:04d}" for i in range(1500)]
    ws = make_ws(contacts=[dict(contact_id=c, created_at="2024-01-01T00:00:00Z") for c in ids])
    cfg = SendTimeConfig(explore_share=0.25, salt="agree")
    got = hours_of(best_hours(ws, "email", T, config=cfg))
    hours, sources = choose_hours(ids, [None] * len(ids), [0] * len(ids), cfg.explore_hours[0],
                                  T.date(), cfg)
    assert [got[c][:3:2] for c in ids] == list(zip(hours, sources, strict=True))
    assert 300 < sources.count("explore") < 450


def test_hour_scores_count_each_hour_and_smooth_its_neighbours(shop):
    rows = hour_scores(shop, "email", T).to_pyarrow().to_pylist()
    a = {r["hour"]: r for r in rows if r["contact_id"] == "A"}
    assert sorted(a) == [19, 20, 21]  # machine opens left out; neighbours get half
    assert (a[20]["n"], a[19]["n"], a[21]["n"]) == (5, 0, 0)
    assert a[19]["score"] == pytest.approx(a[20]["score"] / 2)


def test_next_send_time_in_the_contacts_zone():
    after = dt.datetime(2026, 11, 1, 9, 0, tzinfo=dt.UTC)
    # Warsaw is UTC+1 in November: 20:00 local = 19:00 UTC the same day
    assert next_send_time(20, "Europe/Warsaw", after) == dt.datetime(2026, 11, 1, 19, tzinfo=dt.UTC)
    # 08:00 Warsaw (07:00 UTC) has passed: the next day
    assert next_send_time(8, "Europe/Warsaw", after) == dt.datetime(2026, 11, 2, 7, tzinfo=dt.UTC)
    # exactly now counts
    assert next_send_time(10, "Europe/Warsaw", after) == after
    # unknown zone: UTC
    assert next_send_time(9, None, after) == after


def test_next_send_time_across_dst_changes():
    # Europe/Warsaw springs forward on 2026-03-29 at 02:00 -> 03:00: 02:00 does not exist
    after = dt.datetime(2026, 3, 28, 23, 30, tzinfo=dt.UTC)  # 00:30 local on the 29th
    got = next_send_time(2, "Europe/Warsaw", after)
    assert got == dt.datetime(2026, 3, 29, 1, 0, tzinfo=dt.UTC)  # the moment clocks jump
    # and falls back on 2026-10-25: 08:00 local is 07:00 UTC after the change
    after = dt.datetime(2026, 10, 24, 12, tzinfo=dt.UTC)
    assert next_send_time(8, "Europe/Warsaw", after) == dt.datetime(2026, 10, 25, 7, tzinfo=dt.UTC)
    with pytest.raises(UsageError):
        next_send_time(24, "UTC", after)


def test_next_send_times_many_contacts():
    after = dt.datetime(2026, 11, 1, 9, 0, tzinfo=dt.UTC)
    got = next_send_times([20, None, 20], ["Europe/Warsaw", "UTC", "Asia/Tokyo"], after)
    assert got[0] == dt.datetime(2026, 11, 1, 19, tzinfo=dt.UTC)
    assert got[1] is None
    assert got[2] == dt.datetime(2026, 11, 1, 11, tzinfo=dt.UTC)  # Tokyo is UTC+9


def test_bad_settings_are_usage_errors():
    with pytest.raises(UsageError):
        SendTimeConfig(explore_share=1.5)
    with pytest.raises(UsageError):
        SendTimeConfig(fallback_timezone="Mars/Base")
    pd.Timestamp(T)  # keep pandas imported for fixtures' timestamps
