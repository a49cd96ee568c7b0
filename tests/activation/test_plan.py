"""plan_send on a real workspace: every audience contact gets exactly one outcome."""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import textwrap

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from segmentum.activation.campaigns import loads_campaign
from segmentum.activation.channels import load_channels
from segmentum.activation.consent import suppress, unsubscribe
from segmentum.activation.control_groups import ControlGroups, bucket
from segmentum.activation.message import OUTCOMES
from segmentum.activation.plan import plan_send

UTC = dt.UTC
RUN = "2026-11-02T09:00:00Z"
SETTINGS = """\
timezone: Europe/London
channels:
  email:
    type: smtp
    host: 127.0.0.1
    port: 2525
    security: none
    from: shop@example.com
"""


def contact(i: int, **kw) -> dict:
    row = {
        "contact_id": f"C{i:04d}",
        "email": f"c{i}@example.com",
        "first_name": f"Ann{i}",
        "created_at": "2025-01-01T00:00:00Z",
        "email_opt_in": True,
        "timezone": "Europe/Warsaw",
    }
    row.update(kw)
    return row


def salt_where(pct: float, control: set[str], treatment: set[str]) -> str:
    """A campaign salt that puts these contacts in these arms (found by trying s0, s1, ...)."""
    for k in range(100_000):
        salt = f"s{k}"
        if all((bucket(salt, c) < pct * 100) == (c in control) for c in control | treatment):
            return salt
    raise AssertionError("no such salt")


FIRST_TEN = {f"C{i:04d}" for i in range(10)}
SALT = salt_where(20, set(), FIRST_TEN)
GLOBAL = next(f"g{k}" for k in range(1000) if all(bucket(f"g{k}", c) >= 500 for c in FIRST_TEN))


def campaign(extra: str = "", salt: str = SALT):
    return loads_campaign(
        "name: c1\naudience: {rule: 'true'}\ncontent: {subject: 'Hi {{ first_name }}', "
        f"text: 'Hello {{{{ first_name }}}}'}}\ncontrol_pct: 20\ncontrol_salt: {salt}\n" + extra
    )


@pytest.fixture
def shop(make_ws, tmp_path):
    rows = [contact(i) for i in range(200)]
    rows[1].update(email_opt_in=False)
    rows[2].update(email_opt_in=None)
    rows[3].update(email=None)
    rows[4].update(first_name=None)  # renders with a missing field
    rows[5].update(timezone=None)  # the settings' zone
    rows[6].update(timezone="America/New_York")
    ws = make_ws(contacts=rows)
    (tmp_path / "segmentum.yaml").write_text(SETTINGS)
    unsubscribe(ws, "C0007", "email", source="test", at="2026-10-01")
    suppress(ws, "C0008", "email", source="bounce", at="2026-10-01")
    return ws


def outcomes(plan) -> dict[str, str]:
    return {d.contact_id: d for batch in plan.batches(reserve=False) for d in batch}


def test_every_contact_one_outcome(shop):
    ControlGroups(shop).start_epoch(5, salt=GLOBAL, at="2026-01-01")
    plan = plan_send(shop, campaign("quiet_hours: {start: '21:00', end: '10:00'}\n"), as_of=RUN)
    got = outcomes(plan)
    assert len(got) == plan.audience == 200 and sum(plan.counts().values()) == 200
    assert set(plan.counts()) <= set(OUTCOMES)
    for cid, d in got.items():
        if bucket(GLOBAL, cid) < 500:
            assert (d.outcome, d.arm, d.send_at) == ("global_control", "global_control", None)
        elif bucket(SALT, cid) < 2000:
            assert (d.outcome, d.arm, d.message) == ("control", "control", None)
        else:
            assert d.arm == "treatment"
    assert 0 < plan.counts()["global_control"] < 25 and 20 < plan.counts()["control"] < 60
    expected = {
        "C0001": "no_consent",
        "C0002": "no_consent",
        "C0003": "no_address",
        "C0004": "render_error",
        "C0007": "unsubscribed",
        "C0008": "suppressed",
    }
    assert {c: got[c].outcome for c in expected} == expected
    assert "first_name" in got["C0004"].reason and got["C0004"].message is None
    # 09:00 UTC is 10:00 in Warsaw (outside 21-10), 09:00 in London (quiet until 10:00),
    # 04:00 in New York (quiet until 10:00 there = 15:00 UTC)
    for cid, (outcome, at) in {
        "C0000": ("scheduled", "2026-11-02T09:00"),
        "C0005": ("quiet_hours_deferred", "2026-11-02T10:00"),
        "C0006": ("quiet_hours_deferred", "2026-11-02T15:00"),
    }.items():
        d = got[cid]
        assert (d.outcome, d.send_at.strftime("%Y-%m-%dT%H:%M")) == (outcome, at)
        assert d.message.send_at == d.send_at
        assert (
            d.message.subject == f"Hi Ann{int(cid[1:])}"
            and d.message.to == f"c{int(cid[1:])}@example.com"
        )


def test_control_contacts_carry_what_would_have_stopped_them(shop):
    salt = salt_where(50, {"C0000", "C0001", "C0003", "C0007"}, set())
    plan = plan_send(shop, campaign("control_pct: 50\n", salt=salt), as_of=RUN)
    got = outcomes(plan)
    controls = {c: d for c, d in got.items() if d.outcome == "control"}
    assert 70 < len(controls) < 130
    reasons = {c: (controls[c].reason, controls[c].send_at) for c in ("C0001", "C0003", "C0007")}
    assert reasons == {
        "C0001": ("no_consent", None),
        "C0003": ("no_address", None),
        "C0007": ("unsubscribed", None),
    }
    assert controls["C0000"].reason is None
    eligible = [d for d in controls.values() if d.reason is None]
    assert eligible and all(d.send_at == dt.datetime(2026, 11, 2, 9, tzinfo=UTC) for d in eligible)


def test_transactional_skips_controls_and_marketing_consent(shop):
    ControlGroups(shop).start_epoch(50, salt="g", at="2026-01-01")
    plan = plan_send(shop, campaign("transactional: true\ncontrol_pct: 50\n"), as_of=RUN)
    got = outcomes(plan)
    assert not {"control", "global_control"} & {d.outcome for d in got.values()}
    assert got["C0001"].outcome == "scheduled"  # no marketing consent needed
    assert got["C0008"].outcome == "suppressed"  # a hard bounce still stops it
    assert "transactional" in got["C0000"].message.tags


def test_explicit_ids_and_unknown_contacts(shop):
    from segmentum.activation.message import Origin

    origin = Origin("trigger", "t1", "occ-1")
    plan = plan_send(
        shop, campaign("control_pct: 0\n"), ["C0000", "C0009", "NOPE"], RUN, origin=origin
    )
    got = outcomes(plan)
    assert set(got) == {"C0000", "C0009", "NOPE"} and got["NOPE"].outcome == "no_address"
    assert got["C0000"].message.origin == origin


def test_replanning_gives_the_same_keys(shop):
    a = outcomes(plan_send(shop, campaign(), as_of=RUN))
    b = outcomes(plan_send(shop, campaign(), as_of="2026-11-02T09:00:00Z"))
    keys = lambda got: {c: d.message.key for c, d in got.items() if d.message}  # noqa: E731
    assert keys(a) == keys(b) and keys(a)


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    pct=st.floats(0, 50),
    global_pct=st.floats(0, 30),
    ids=st.lists(st.integers(0, 230), max_size=60),
    transactional=st.booleans(),
)
def test_planned_equals_sum_of_outcomes(shop, pct, global_pct, ids, transactional):
    cg = ControlGroups(shop)
    cg.start_epoch(
        round(global_pct, 2),
        salt=f"g{global_pct}",
        at=dt.datetime.now(UTC) - dt.timedelta(days=400),
    )
    from segmentum.activation.message import Origin

    c = campaign(f"control_pct: {round(pct, 2)}\ntransactional: {str(transactional).lower()}\n")
    plan = plan_send(
        shop,
        c,
        [f"C{i:04d}" for i in ids],
        RUN,
        origin=Origin("trigger", "p", "x"),
        channels=load_channels(shop),
    )
    got = [d for batch in plan.batches(reserve=False, size=17) for d in batch]
    assert len(got) == len(set(ids)) == sum(plan.counts().values())
    assert len({d.contact_id for d in got}) == len(got)


def test_record_puts_every_decision_in_the_log_once(shop):
    from segmentum.activation.delivery import DeliveryLog
    from segmentum.activation.message import Origin

    origin = Origin("trigger", "t2", "occ-2")
    c = campaign("control_pct: 0\n")
    nobody = plan_send(shop, c, ["C0001", "C0002"], RUN, origin=origin)  # no consent: no message
    assert nobody.record() == {"no_consent": 2}
    assert DeliveryLog(shop).outcomes(origin) == {"no_consent": 2}
    some = plan_send(shop, c, ["C0000", "C0001", "C0009"], RUN, origin=origin)
    assert some.record() == {"no_consent": 1, "scheduled": 2}
    assert DeliveryLog(shop).outcomes(origin) == {"no_consent": 2, "scheduled": 2}  # C0001 once


KILLED_WHILE_RECORDING = textwrap.dedent("""
    import os, signal, sys
    from segmentum.activation import delivery, plan
    from segmentum.activation.campaigns import loads_campaign
    from segmentum.activation.runs import send_campaign
    from segmentum.workspace import open_workspace
    plan.BATCH = 40  # five batches of the 200 contacts
    record = delivery.DeliveryLog.record_plan
    def then_die(self, *args, **kwargs):  # kill -9 once the first batch is in the log
        record(self, *args, **kwargs)
        os.kill(os.getpid(), signal.SIGKILL)
    delivery.DeliveryLog.record_plan = then_die
    send_campaign(open_workspace(sys.argv[1]), loads_campaign(sys.argv[2]), sys.argv[3],
                  deliver=False)
""")


def test_a_run_killed_while_recorded_leaves_nothing_and_is_planned_again(tmp_path):
    from segmentum.activation.delivery import DeliveryLog
    from segmentum.activation.runs import send_campaign
    from segmentum.workspace import open_workspace

    from tests.workspaces import build_workspace

    path = tmp_path / "shop.duckdb"
    build_workspace(path, contacts=[contact(i) for i in range(200)]).close()
    (tmp_path / "segmentum.yaml").write_text("channels:\n  email: {type: outbox, path: o.jsonl}\n")
    text = ("name: c1\naudience: {rule: 'true'}\ncontent: {text: 'Hello {{ first_name }}'}\n"
            f"control_pct: 20\ncontrol_salt: {SALT}\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = subprocess.run([sys.executable, "-c", KILLED_WHILE_RECORDING, str(path), text, RUN],
                          env=env, capture_output=True, timeout=300)
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()[-2000:]
    with open_workspace(path) as ws:
        c = loads_campaign(text)
        assert DeliveryLog(ws).summary("c1") == []  # the first batch went with the rest
        again = send_campaign(ws, c, RUN, deliver=False)
        assert again.planned_now and again.audience == 200
        assert sum(DeliveryLog(ws).outcomes(name="c1").values()) == 200
