"""kill -9 in the middle of a send, then resume: no message twice, nobody skipped, unknown reported.

A subprocess sends 500 messages to a local aiosmtpd server (this process) and is killed
with SIGKILL at a random moment; a Sender in this process resumes. An operating-system
crash (the journal written in another boot) is simulated by changing the boot id.
"""

from __future__ import annotations

import datetime as dt
import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from collections import Counter
from pathlib import Path

import pytest

from segmentum.activation.channels import load_channels
from segmentum.activation import delivery as D
from segmentum.activation.delivery import DeliveryLog, Sender
from segmentum.activation.message import Origin
from segmentum.workspace import open_workspace

from tests.activation.sendkit import SmtpSink, contact_rows, scheduled, secrets_env, send_settings
from tests.workspaces import build_workspace

T = dt.datetime(2026, 11, 1, 9, tzinfo=dt.UTC)
ORIGIN = Origin("campaign", "big-send", "2026-11-01T09:00:00Z")
N = 500

WORKER = textwrap.dedent("""
    import datetime as dt, sys
    from segmentum.workspace import open_workspace
    from segmentum.activation.channels import load_channels
    from segmentum.activation.delivery import Sender
    ws = open_workspace(sys.argv[1])
    Sender(ws, load_channels(ws), window=int(sys.argv[2])).deliver(now=dt.datetime(2026, 11, 1, 9, tzinfo=dt.UTC))
    print("finished")
""")


@pytest.fixture
def big(tmp_path, monkeypatch):
    secrets_env(monkeypatch)
    path = tmp_path / "ws.duckdb"
    ids = [f"C{i}" for i in range(N)]
    with build_workspace(path, contacts=contact_rows(N)) as ws:
        DeliveryLog(ws).record_plan(scheduled(ORIGIN, ids, T))
    with SmtpSink() as sink:
        send_settings(tmp_path, smtp_port=sink.port, timeout=5)
        yield path, sink


def kill_midway(path: Path, sink: SmtpSink, at_least: int, window: int = 25) -> None:
    """Start a sending subprocess and SIGKILL it once the server holds ``at_least`` messages."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = subprocess.Popen([sys.executable, "-c", WORKER, str(path), str(window)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while len(sink.raw) < at_least and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.002)
    time.sleep(random.uniform(0, 0.01))
    proc.send_signal(signal.SIGKILL)
    out, err = proc.communicate()
    assert b"finished" not in out, "the sender ended before it was killed; kill it sooner"
    assert proc.returncode == -signal.SIGKILL, err.decode()[-2000:]


def received(sink: SmtpSink) -> Counter:
    return Counter(m["Message-ID"].strip("<>").split("@")[0] for m in sink.messages)


def check_exactly_once(path: Path, sink: SmtpSink, max_unknown: int) -> dict:
    with open_workspace(path) as ws:
        summary = Sender(ws, load_channels(ws)).deliver(now=T)
        rows = DeliveryLog(ws).of(ORIGIN).to_pyarrow().to_pylist()
    got = received(sink)
    assert max(got.values()) == 1, "a message was sent twice"
    by_outcome = Counter(r["outcome"] for r in rows)
    assert set(by_outcome) <= {"sent", "unknown"} and sum(by_outcome.values()) == N
    assert by_outcome["unknown"] <= max_unknown
    sent = {r["key"] for r in rows if r["outcome"] == "sent"}
    unknown = {r["key"] for r in rows if r["outcome"] == "unknown"}
    assert sent <= set(got), "a message marked sent never reached the server"
    assert set(got) <= sent | unknown, "the server holds a message the log does not account for"
    assert len(sent) + len(unknown) == N, "a message was skipped"
    return {"summary": summary, "unknown": unknown, "got": got}


@pytest.mark.slow
def test_kill_9_after_the_server_took_a_message_reports_it_unknown(big):
    """The worst moment: the server holds message k but the Sender has not heard back."""
    path, sink = big
    k = random.randint(60, 300)
    victim = sorted(d.message.key for d in scheduled(ORIGIN, [f"C{i}" for i in range(N)], T))[k]
    address = next(d.message.to for d in scheduled(ORIGIN, [f"C{i}" for i in range(N)], T)
                   if d.message.key == victim)
    sink.stall_after_data.add(address)
    kill_midway(path, sink, at_least=k + 1)
    sink.stall_after_data.clear()
    first = len(sink.raw)
    result = check_exactly_once(path, sink, max_unknown=1)
    assert result["unknown"] == {victim} and result["got"][victim] == 1
    assert result["summary"].recovered["unknown"] == 1
    assert sum(result["summary"].recovered.values()) >= 1  # the claim resolved from the journal
    assert len(sink.raw) > first  # and the rest went out after the resume


@pytest.mark.slow
def test_kill_9_at_a_random_moment_then_resume(big):
    path, sink = big
    kill_midway(path, sink, at_least=random.randint(60, 300))
    check_exactly_once(path, sink, max_unknown=1)


@pytest.mark.slow
def test_two_crashes_in_a_row(big):
    path, sink = big
    kill_midway(path, sink, at_least=random.randint(40, 150))
    kill_midway(path, sink, at_least=len(sink.raw) + random.randint(40, 150))
    check_exactly_once(path, sink, max_unknown=2)


@pytest.mark.slow
def test_after_an_os_crash_unclaimed_results_are_unknown_at_most_a_window(big, monkeypatch):
    path, sink = big
    kill_midway(path, sink, at_least=random.randint(60, 300), window=25)
    monkeypatch.setattr(D, "_boot_id", lambda: "another-boot")  # the journal is from before it
    result = check_exactly_once(path, sink, max_unknown=25)
    # each unknown one was claimed without a result line; it may or may not have gone out
    assert all(result["got"].get(k, 0) <= 1 for k in result["unknown"])


def test_a_lost_journal_makes_the_claimed_messages_unknown(tmp_path, monkeypatch):
    """Claims whose journal is gone are never resent: they are reported unknown."""
    secrets_env(monkeypatch)
    path = tmp_path / "ws.duckdb"
    with build_workspace(path, contacts=contact_rows(5)) as ws, SmtpSink() as sink:
        send_settings(tmp_path, smtp_port=sink.port)
        DeliveryLog(ws).record_plan(scheduled(ORIGIN, [f"C{i}" for i in range(5)], T))
        sender = Sender(ws, load_channels(ws))
        with D._locked(ws):  # a Sender claimed two and died without a trace of its journal
            keys = [r["key"] for r in DeliveryLog(ws).table().limit(2).to_pyarrow().to_pylist()]
            sender._write([], keys, claim="dead-claim")
        summary = sender.deliver(now=T)
        assert summary.recovered == Counter({"unknown": 2}) and summary.sent == 3
        assert len(sink.raw) == 3
        assert DeliveryLog(ws).outcomes(ORIGIN) == {"sent": 3, "unknown": 2}
