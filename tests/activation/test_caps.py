"""Frequency caps: rolling windows checked exactly, reserved under a lock, never exceeded."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import textwrap
import threading
from collections import Counter

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from segmentum.activation.caps import CapLedger, CapRule, fits
from segmentum.activation.delivery import DeliveryLog
from segmentum.activation.message import Origin
from segmentum.errors import UsageError
from segmentum.workspace import open_workspace

from tests.activation.sendkit import contact_rows, scheduled
from tests.workspaces import build_workspace

T = dt.datetime(2026, 11, 1, 9, tzinfo=dt.UTC)
DAY = dt.timedelta(days=1)
WEEKLY2 = CapRule("email", "marketing", 2, dt.timedelta(days=7))


def campaign(name: str, run: str = "r1") -> Origin:
    return Origin("campaign", name, run)


@pytest.fixture
def ws(tmp_path):
    w = build_workspace(tmp_path / "ws.duckdb", contacts=contact_rows(10))
    yield w
    w.close()


def history(ws, *days_ago, contact="C0", tags=("marketing",), channel="email", outcome="sent"):
    """Past messages to a contact, recorded in the delivery log as sent (or pending)."""
    for i, ago in enumerate(days_ago):
        at = T - dt.timedelta(days=ago)
        [d] = scheduled(campaign(f"past-{i}-{ago}-{channel}"), [contact], at, tags=tags, channel=channel)
        DeliveryLog(ws).record_plan([d.with_outcome(outcome) if outcome != "scheduled" else d])


# -- the window arithmetic ---------------------------------------------------------------
def test_fits_counts_every_window_holding_the_new_message():
    rule = CapRule("*", None, 2, dt.timedelta(days=7))
    assert fits([T - 6 * DAY], T, rule)
    assert not fits([T - 6 * DAY, T - 1 * DAY], T, rule)
    assert fits([T - 8 * DAY, T - 7 * DAY, T - 1 * DAY], T, rule)  # 7 days ago just left
    # future reservations count: one 3 days ahead and one 3 days back fill the window
    assert not fits([T - 3 * DAY, T + 3 * DAY], T, rule)
    # two ahead within a week of each other but one more than a week after T: fits before them
    assert fits([T + 6 * DAY, T + 8 * DAY], T, rule)


@settings(max_examples=400, deadline=None)
@given(times=st.lists(st.integers(-40, 40), max_size=8), at=st.integers(-20, 20),
       limit=st.integers(1, 4), width=st.integers(1, 15))
def test_fits_matches_a_brute_force_over_every_window(times, at, limit, width):
    rule = CapRule("*", None, limit, dt.timedelta(hours=width))
    as_time = sorted(T + dt.timedelta(hours=h) for h in times)
    expected = all(
        sum(s <= t < s + width for t in times) + 1 <= limit for s in range(at - width + 1, at + 1)
    )
    assert fits(as_time, T + dt.timedelta(hours=at), rule) == expected


def test_rule_validation_and_text():
    assert str(WEEKLY2) == "at most 2 on email tagged marketing per 7d"
    assert CapRule("*", None, 1, "36h").window == dt.timedelta(hours=36)
    with pytest.raises(UsageError, match="limit"):
        CapRule("*", None, 0, DAY)
    with pytest.raises(UsageError, match="window"):
        CapRule("*", None, 1, "a week")


# -- reserving ------------------------------------------------------------------------------
def test_reserve_caps_by_history_tags_and_channels(ws):
    history(ws, 6, 2, contact="C0")  # two marketing e-mails this week: full
    history(ws, 6, contact="C1")  # one: room for one more
    history(ws, 3, 1, contact="C2", tags=("service",))  # other tag: does not count
    history(ws, 3, 1, contact="C3", channel="sms")  # other channel: does not count
    history(ws, 8, 7.5, contact="C4")  # older than a week
    history(ws, 1, 1, contact="C5", outcome="no_consent")  # never went: does not count
    decisions = scheduled(campaign("nov"), [f"C{i}" for i in range(6)], T)
    out = {d.contact_id: d for d in CapLedger(ws).reserve(decisions, [WEEKLY2], T)}
    assert out["C0"].outcome == "capped" and "at most 2 on email tagged marketing" in out["C0"].reason
    assert {c for c, d in out.items() if d.outcome == "scheduled"} == {"C1", "C2", "C3", "C4", "C5"}
    log = DeliveryLog(ws).outcomes(campaign("nov"))
    assert log == {"scheduled": 5}  # the admitted ones are reserved in the log already
    # planning the next campaign now sees C1 full too
    again = CapLedger(ws).reserve(scheduled(campaign("dec"), ["C1"], T + DAY / 2), [WEEKLY2], T)
    assert again[0].outcome == "capped"
    # a day later the one from 6 days ago is a week old: there is room again
    free = CapLedger(ws).reserve(scheduled(campaign("dec"), ["C1"], T + DAY), [WEEKLY2], T)
    assert free[0].outcome == "scheduled"


def test_rules_are_and_combined_and_transactional_is_exempt(ws):
    daily = CapRule("*", None, 1, DAY)
    history(ws, 0.5, contact="C0", tags=("service",))  # no marketing, but one message today
    marketing = scheduled(campaign("nov"), ["C0", "C1"], T)
    receipt = scheduled(Origin("transactional", "receipt", "o1"), ["C0"], T, tags=("transactional",))
    out = CapLedger(ws).reserve(marketing + receipt, [WEEKLY2, daily], T)
    assert [d.outcome for d in out] == ["capped", "scheduled", "scheduled"]
    assert "per 1d" in out[0].reason


def test_workspace_caps_apply_to_every_reservation(ws, tmp_path):
    (tmp_path / "segmentum.yaml").write_text("caps:\n  - {channel: '*', limit: 1, window: 1d}\n")
    history(ws, 0.5, contact="C0", tags=("service",))
    out = CapLedger(ws).reserve(scheduled(campaign("nov"), ["C0", "C1"], T), [], T)
    assert [d.outcome for d in out] == ["capped", "scheduled"]


def test_defer_moves_to_the_first_free_moment_with_an_expiry(ws):
    history(ws, 6, 2, contact="C0")  # the slot frees when the 6-days-ago one leaves: T + 1 day
    history(ws, 1, 0.5, contact="C1")  # frees only at T + 6 days: beyond the 48 h delay
    out = CapLedger(ws).reserve(scheduled(campaign("nov"), ["C0", "C1"], T), [WEEKLY2], T,
                                on_cap="defer", defer_hours=48)
    c0, c1 = out
    assert c0.outcome == "capped_deferred" and c0.send_at == T + DAY
    assert c0.message.send_at == T + DAY and c0.message.expires_at == T + 2 * DAY
    assert c1.outcome == "capped"
    assert DeliveryLog(ws).outcomes(campaign("nov")) == {"capped_deferred": 1}
    # the deferred message is a reservation: a message at T + 1 day for C0 no longer fits
    later = CapLedger(ws).reserve(scheduled(campaign("dec"), ["C0"], T + DAY), [WEEKLY2], T)
    assert later[0].outcome == "capped"


def test_dry_run_writes_nothing(ws):
    out = CapLedger(ws).reserve(scheduled(campaign("nov"), ["C0"], T), [WEEKLY2], T, record=False)
    assert out[0].outcome == "scheduled"
    assert not ws.warehouse.has_table("deliveries") or not DeliveryLog(ws).outcomes()


def test_two_campaigns_at_the_same_time_never_exceed_the_cap(ws):
    """Eight threads, each its own workspace connection and campaign, race for one slot
    a day per contact: every contact ends with exactly one message reserved."""
    daily = CapRule("email", None, 1, DAY)
    ids = [f"C{i}" for i in range(10)]
    history(ws, 30, contact="C9")  # the log's tables exist: the race is on the slots alone
    barrier = threading.Barrier(8)
    errors = []

    def plan(n: int) -> None:
        try:
            with open_workspace(ws.config.path) as own:
                barrier.wait()
                CapLedger(own).reserve(scheduled(campaign(f"flash-{n}"), ids, T), [daily], T)
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=plan, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    d = DeliveryLog(ws).table()
    per_contact = Counter(r["contact_id"] for r in d.to_pyarrow().to_pylist()
                          if r["outcome"] == "scheduled" and r["origin_name"].startswith("flash"))
    assert per_contact == Counter({c: 1 for c in ids})


RESERVE = textwrap.dedent("""
    import datetime as dt, sys
    from segmentum.workspace import open_workspace
    from segmentum.activation.caps import CapLedger, CapRule
    from tests.activation.sendkit import scheduled
    from segmentum.activation.message import Origin
    T = dt.datetime(2026, 11, 1, 9, tzinfo=dt.UTC)
    with open_workspace(sys.argv[1]) as ws:
        out = CapLedger(ws).reserve(scheduled(Origin("campaign", sys.argv[2], "r1"), ["C0", "C1"], T),
                                    [CapRule("email", None, 1, dt.timedelta(days=1))], T)
        print(",".join(d.outcome for d in out))
""")


@pytest.mark.slow
def test_two_processes_one_after_the_other_share_the_cap(ws):
    path = ws.config.path
    ws.close()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    run = [subprocess.run([sys.executable, "-c", RESERVE, path, name], env=env,
                          capture_output=True, text=True, check=True).stdout.strip()
           for name in ("first", "second")]
    assert run == ["scheduled,scheduled", "capped,capped"]


def test_a_message_being_sent_counts(ws):
    from segmentum.activation.delivery import Sender, _locked

    [d] = scheduled(campaign("now-sending"), ["C0"], T)
    DeliveryLog(ws).record_plan([d])
    with _locked(ws):  # a Sender has claimed it and is handing it to the server
        Sender(ws, {})._write([], [d.message.key], claim="live")
    assert DeliveryLog(ws).outcomes(campaign("now-sending")) == {"sending": 1}
    out = CapLedger(ws).reserve(scheduled(campaign("nov"), ["C0"], T), [CapRule("*", None, 1, DAY)], T)
    assert out[0].outcome == "capped"


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(past=st.lists(st.tuples(st.integers(0, 9), st.integers(-200, 200), st.sampled_from(
           ["email", "sms"]), st.sampled_from([("marketing",), ("service",)])), max_size=12),
       hours=st.lists(st.integers(0, 48), min_size=10, max_size=10),
       limit=st.integers(1, 3), width=st.integers(1, 100), tag=st.sampled_from([None, "marketing"]))
def test_reserve_decides_as_fits_over_the_whole_log(ws, past, hours, limit, width, tag):
    """Contacts far from their limits are admitted without the exact check: the outcome is
    still what ``fits`` says over every counted message in the log."""
    for n, (c, h, channel, tags) in enumerate(past):
        at = T + dt.timedelta(hours=h)
        [d] = scheduled(campaign(f"h{n}-{c}-{h}-{channel}-{tags[0]}"), [f"C{c}"], at,
                        channel=channel, tags=tags)
        DeliveryLog(ws).record_plan([d])
    rules = [CapRule("email", tag, limit, dt.timedelta(hours=width)),
             CapRule("*", None, limit + 1, dt.timedelta(hours=2 * width))]
    decisions = [scheduled(campaign("now"), [f"C{i}"], T + dt.timedelta(hours=h))[0]
                 for i, h in enumerate(hours)]
    got = [d.outcome for d in CapLedger(ws).reserve(decisions, rules, T, record=False)]
    log = [r for r in DeliveryLog(ws).table().to_pyarrow().to_pylist() if r["outcome"] == "scheduled"]
    expected = []
    for d in decisions:
        def stored(rule):
            return sorted(r["send_at"] for r in log if r["contact_id"] == d.contact_id
                          and rule.applies(r["channel"], r["tags"]))
        ok = all(fits(stored(r), d.send_at, r) for r in rules if r.applies("email", ("marketing",)))
        expected.append("scheduled" if ok else "capped")
    assert got == expected
