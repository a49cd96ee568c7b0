"""The consumer's pacing: a run after a busy one waits for more records, never past a full batch."""

from __future__ import annotations

import datetime as dt
import threading
import time

import pytest

from segmentum import open_workspace
from segmentum.live.mapping import MappingConfig
from segmentum.live.segment_log import SegmentLog
from segmentum.live.spec import Limits, messages_of
from segmentum.service.access import WorkspaceAccess
from segmentum.service.consumer import Consumer

RECEIVED = dt.datetime(2026, 11, 1, 12, tzinfo=dt.UTC)


def append(log: SegmentLog, first: int, n: int = 1) -> None:
    events = [{"type": "track", "userId": f"u{i % 3}", "event": "Signed In", "messageId": f"m{i}"}
              for i in range(first, first + n)]
    parsed = messages_of({"batch": events}, "batch", source="web", received_at=RECEIVED, limits=Limits())
    log.append([(m.key, m.record) for m in parsed.messages])


@pytest.fixture
def parts(tmp_path):
    log = SegmentLog(tmp_path / "log")
    access = WorkspaceAccess(lambda: open_workspace(tmp_path / "ws.duckdb"))
    yield log, access
    log.close()
    access.close()


def wait_for(condition, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_after_a_busy_run_the_next_one_gathers_what_arrives_meanwhile(parts):
    log, access = parts
    consumer = Consumer(log, access, MappingConfig(), batch=100, linger=1.0, max_linger=5.0)
    sizes: list[int] = []
    consumer.listeners.append(lambda applied: (sizes.append(applied.records), time.sleep(1.0)))
    consumer.start()
    try:
        append(log, 0)  # after an idle spell: applied at once, alone
        wait_for(lambda: consumer.runs == 1)
        for i in range(1, 11):  # arrive one by one while the consumer waits (>= 1 s: its last run's time)
            append(log, i)
            time.sleep(0.01)
        wait_for(lambda: consumer.runs == 2)
        assert sizes == [1, 10]
        assert access.call(lambda ws: ws.table("events").count().execute()) == 11
        assert log.committed(0) == 11
    finally:
        consumer.stop()


def test_a_full_batch_or_stop_ends_the_wait_at_once(parts):
    log, access = parts
    consumer = Consumer(log, access, MappingConfig(), batch=50)
    append(log, 0, 49)
    started = time.monotonic()
    threading.Timer(0.5, lambda: append(log, 49)).start()  # the 50th record: a full batch
    consumer._gather(60.0)
    assert 0.5 <= time.monotonic() - started < 30
    append(log, 50, 10)
    consumer.run_once(0)  # 50 records applied, 10 waiting
    assert log.committed(0) == 50
    started = time.monotonic()
    threading.Timer(0.5, consumer._stop.set).start()
    consumer._gather(60.0)
    assert 0.5 <= time.monotonic() - started < 30
