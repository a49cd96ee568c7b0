"""The delivery log and the Sender on a real workspace and a real local SMTP server."""

from __future__ import annotations

import datetime as dt
import threading
from collections import Counter

import pytest

from segmentum.activation import consent
from segmentum.activation.channels import load_channels
from segmentum.activation.delivery import DELIVERIES, DeliveryLog, Sender
from segmentum.activation.message import Decision, Origin
from segmentum.errors import ChannelError, UsageError

from tests.activation.sendkit import SmtpSink, contact_rows, scheduled, secrets_env, send_settings
from tests.workspaces import build_workspace

T = dt.datetime(2026, 11, 1, 9, tzinfo=dt.UTC)
ORIGIN = Origin("campaign", "news", "2026-11-01T09:00:00Z")
IDS = [f"C{i}" for i in range(40)]


@pytest.fixture
def shop(tmp_path, monkeypatch):
    secrets_env(monkeypatch)
    ws = build_workspace(tmp_path / "ws.duckdb", contacts=contact_rows(40))
    with SmtpSink() as sink:
        send_settings(tmp_path, smtp_port=sink.port, timeout=2)
        yield ws, sink
    ws.close()


def plan(ids=IDS, at=T, origin=ORIGIN, **kw) -> list[Decision]:
    return scheduled(origin, ids, at, **kw)


def sent_keys(sink) -> list[str]:
    return [m["Message-ID"].strip("<>").split("@")[0] for m in sink.messages]


def test_record_plan_is_idempotent_and_keys_every_decision(shop):
    ws, _ = shop
    log = DeliveryLog(ws)
    decisions = plan(IDS[:30]) + [Decision(c, "control", "control", None, None, T) for c in IDS[30:]]
    assert log.record_plan(decisions, origin=ORIGIN, channel="email", at=T) == 40
    assert log.record_plan(decisions, origin=ORIGIN, channel="email", at=T) == 0
    assert log.outcomes(ORIGIN) == {"scheduled": 30, "control": 10}
    assert log.has_origin(ORIGIN) and not log.has_origin(Origin("campaign", "news", "other"))
    only_controls = [Decision("C1", "control", "control", None, None, T)]
    with pytest.raises(UsageError, match="origin= and channel="):
        log.record_plan(only_controls)
    d = ws.table(DELIVERIES).to_pyarrow().to_pylist()
    assert len({r["key"] for r in d}) == 40
    assert ws.table("delivery_messages").count().to_pyarrow().as_py() == 30  # content of pending only


def test_deliver_sends_each_due_message_once(shop):
    ws, sink = shop
    later = plan(["C0", "C1"], at=T + dt.timedelta(hours=3))
    log = DeliveryLog(ws)
    log.record_plan(plan(IDS[2:]) + later)
    summary = Sender(ws, load_channels(ws), window=3, batch=7).deliver(now=T)  # several batches
    assert summary.sent == 38 and summary.to_dict()["outcomes"] == {"sent": 38}
    assert Sender(ws, load_channels(ws)).deliver(now=T).sent == 0  # nothing twice
    assert Sender(ws, load_channels(ws)).deliver(now=T + dt.timedelta(hours=3)).sent == 2
    keys = sent_keys(sink)
    assert len(keys) == len(set(keys)) == 40
    rows = log.table().to_pyarrow().to_pylist()
    assert all(r["outcome"] == "sent" and r["attempts"] == 1 and r["provider_id"] for r in rows)
    assert {r["key"] for r in rows} == set(keys)
    assert not ws.table("_delivery_attempts").count().to_pyarrow().as_py()  # all folded
    assert all(r["sent_at"] is not None for r in rows)


def test_an_unsubscribe_stops_the_next_send(shop):
    ws, sink = shop
    decisions = plan(IDS[:10])
    order = [d.contact_id for d in sorted(decisions, key=lambda d: d.message.key)]  # send order
    first, last = order[0], order[-1]
    DeliveryLog(ws).record_plan(decisions)
    consent.unsubscribe(ws, "C3" if "C3" != last else "C4", "email", "list-unsubscribe")  # after planning
    channels = load_channels(ws)
    real = channels["email"]

    class Unsubscribing:  # the last contact clicks "unsubscribe" while the send is under way
        def __getattr__(self, name):
            return getattr(real, name)

        def send(self, msg):
            if msg.contact_id == first:
                consent.unsubscribe(ws, last, "email", "list-unsubscribe")
            return real.send(msg)

    channels["email"] = Unsubscribing()
    summary = Sender(ws, channels, window=50).deliver(now=T)
    assert summary.outcomes == Counter({"sent": 8, "unsubscribed": 2})
    assert f"{last.lower()}@example.test" not in {m["To"] for m in sink.messages}
    assert DeliveryLog(ws).outcomes(ORIGIN) == {"sent": 8, "unsubscribed": 2}


class Flaky:
    """A channel failing per contact as told: 'transient', 'permanent', 'uncertain'."""

    kind, address_field, consent_field = "email", "email", "email_opt_in"

    def __init__(self, real, faults: dict[str, str]) -> None:
        self.real, self.faults, self.name = real, faults, real.name
        self.calls: Counter = Counter()

    def send(self, msg):
        self.calls[msg.contact_id] += 1
        fault = self.faults.get(msg.contact_id)
        if fault == "transient":
            raise ChannelError("451 later", transient=True)
        if fault == "permanent":
            raise ChannelError("550 no such user")
        if fault == "uncertain":
            raise ChannelError("connection lost after DATA", transient=True, uncertain=True)
        return self.real.send(msg)

    def close(self):
        self.real.close()


def test_errors_retry_later_end_as_channel_error_or_unknown(shop):
    ws, sink = shop
    DeliveryLog(ws).record_plan(plan(IDS[:4]))
    flaky = Flaky(load_channels(ws)["email"], {"C0": "transient", "C1": "permanent", "C2": "uncertain"})
    sender = Sender(ws, {"email": flaky}, max_attempts=2, retry_delay=dt.timedelta(minutes=10))
    first = sender.deliver(now=T)
    assert first.outcomes == Counter({"sent": 1, "channel_error": 1, "unknown": 1, "retry_later": 1})
    t = DeliveryLog(ws).table()
    c0 = t.filter(t.contact_id == "C0").to_pyarrow().to_pylist()[0]
    assert c0["outcome"] == "scheduled" and c0["attempts"] == 1 and "451" in c0["error"]
    assert c0["send_at"] == T + dt.timedelta(minutes=10)
    assert sender.deliver(now=T + dt.timedelta(minutes=5)).sent == 0  # not due yet
    second = sender.deliver(now=T + dt.timedelta(minutes=10))
    assert second.outcomes == Counter({"channel_error": 1})  # max_attempts reached
    assert DeliveryLog(ws).outcomes(ORIGIN) == {"sent": 1, "channel_error": 2, "unknown": 1}
    assert flaky.calls == Counter({"C0": 2, "C1": 1, "C2": 1, "C3": 1})
    # unknown is never resent unless asked; asked, it goes with the same Message-ID
    assert Sender(ws, {"email": flaky}).deliver(now=T + dt.timedelta(hours=1)).sent == 0
    flaky.faults.clear()
    again = Sender(ws, {"email": flaky}).deliver(now=T + dt.timedelta(hours=1), retry_unknown=True)
    assert again.retried_unknown == 1 and again.sent == 1
    c2_key = plan(["C2"])[0].message.key
    assert sent_keys(sink).count(c2_key) == 1


def test_expired_messages_are_not_sent(shop):
    ws, sink = shop
    log = DeliveryLog(ws)
    log.record_plan(plan(["C0"], expires_at=T + dt.timedelta(hours=1)))
    log.record_plan(plan(["C1"], expires_at=T + dt.timedelta(hours=1), outcome="capped_deferred"))
    log.record_plan(plan(["C2"], expires_at=T + dt.timedelta(days=1)))
    summary = Sender(ws, load_channels(ws)).deliver(now=T + dt.timedelta(hours=2))
    assert summary.outcomes == Counter({"sent": 1, "expired": 1, "capped": 1})
    assert [m["To"] for m in sink.messages] == ["c2@example.test"]
    t = log.table()
    reasons = dict(t.select("contact_id", "reason").to_pyarrow().to_pylist() and
                   [(r["contact_id"], r["reason"]) for r in t.to_pyarrow().to_pylist()])
    assert "expiry" in reasons["C0"] and "expiry" in reasons["C1"]


def test_origin_filter_limit_and_unconfigured_channels(shop):
    ws, sink = shop
    other = Origin("campaign", "promo", "r1")
    log = DeliveryLog(ws)
    log.record_plan(plan(IDS[:10]))
    log.record_plan(plan(IDS[:5], origin=other))
    log.record_plan(plan(IDS[:3], origin=other, channel="push"))
    s = Sender(ws, load_channels(ws)).deliver(origin=other, now=T)
    assert s.sent == 5 and s.not_configured == Counter({"push": 3})
    log.record_plan(plan(IDS[:2], origin=Origin("campaign", "promo", "r2")))
    by_name = Sender(ws, load_channels(ws)).deliver(now=T, name="promo")
    assert by_name.sent == 2 and by_name.not_configured == Counter({"push": 3})
    assert Sender(ws, load_channels(ws)).deliver(now=T, limit=4).sent == 4
    assert log.outcomes(ORIGIN) == {"sent": 4, "scheduled": 6}
    assert log.outcomes(other) == {"sent": 5, "scheduled": 3}


def test_two_senders_at_once_send_each_message_once(shop):
    ws, sink = shop
    from segmentum.workspace import open_workspace

    DeliveryLog(ws).record_plan(plan(IDS))
    results, errors = [], []

    def run():
        try:
            with open_workspace(ws.config.path) as own:
                results.append(Sender(own, load_channels(own), window=3, batch=6).deliver(now=T))
        except Exception as exc:  # pragma: no cover - shown by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert sum(r.sent for r in results) == 40
    keys = sent_keys(sink)
    assert len(keys) == len(set(keys)) == 40
    assert DeliveryLog(ws).outcomes(ORIGIN) == {"sent": 40}
