"""Deduplicator and Intake: each source's messageId stored once, for at least the window."""

from __future__ import annotations

import datetime as dt
import shutil
import threading

from segmentum.live.dedup import DAY, Deduplicator, dedup_key
from segmentum.live.intake import Intake, Receipt
from segmentum.live.log import Offset
from segmentum.live.segment_log import SegmentLog
from segmentum.live.spec import Limits, messages_of

NOW = dt.datetime(2026, 11, 1, 12, tzinfo=dt.UTC)


class Clock:
    def __init__(self) -> None:
        self.t = 1_800_000_000.0

    def __call__(self) -> float:
        return self.t


def msgs(ids, source="web"):
    body = {"batch": [{"type": "track", "userId": "u1", "event": "Viewed", "messageId": m} for m in ids]}
    return messages_of(body, "batch", source=source, received_at=NOW, limits=Limits()).messages


def test_keys_are_per_source_and_remembered_across_chunks_and_restarts(tmp_path):
    clock = Clock()
    d = Deduplicator(tmp_path, chunk_entries=10, clock=clock)
    keys = [dedup_key("web", f"m{i}") for i in range(25)]
    d.add((k, Offset(0, i)) for i, k in enumerate(keys))  # seals two chunks of 10+
    assert d.seen([*keys[:3], dedup_key("app", "m0"), dedup_key("web", "m99")]) == [True] * 3 + [False, False]
    d.close()
    again = Deduplicator(tmp_path, chunk_entries=10, clock=clock)
    assert all(again.seen(keys)) and len(again) == 25
    again.close()


def test_nothing_is_forgotten_before_the_window(tmp_path):
    clock = Clock()
    d = Deduplicator(tmp_path, window_seconds=7 * DAY, clock=clock)
    d.add([(dedup_key("web", "old"), Offset(0, 0))])
    clock.t += 1.5 * DAY  # the chunk is sealed on the next add (a day old)
    d.add([(dedup_key("web", "new"), Offset(0, 1))])
    clock.t += 5.4 * DAY  # 6.9 days after "old"
    d.add([(dedup_key("web", "x"), Offset(0, 2))])
    assert d.seen([dedup_key("web", "old")]) == [True]
    clock.t += 0.2 * DAY  # 7.1 days after "old"
    d.add([(dedup_key("web", "y"), Offset(0, 3))])
    assert d.seen([dedup_key("web", "old"), dedup_key("web", "new")]) == [False, True]
    d.close()


def test_a_torn_key_file_keeps_its_whole_entries(tmp_path):
    d = Deduplicator(tmp_path)
    d.add([(dedup_key("web", "a"), Offset(0, 0)), (dedup_key("web", "b"), Offset(0, 1))])
    d.close()
    path = max(tmp_path.glob("*.ids"), key=lambda p: p.stat().st_size)
    path.write_bytes(path.read_bytes()[:-5])
    again = Deduplicator(tmp_path)
    assert again.seen([dedup_key("web", "a"), dedup_key("web", "b")]) == [True, False]
    again.close()


def intake(tmp_path):
    return Intake(SegmentLog(tmp_path / "log"), Deduplicator(tmp_path / "dedup"))


def test_duplicates_are_acknowledged_and_not_stored_twice(tmp_path):
    it = intake(tmp_path)
    assert it.submit("web", msgs(["a", "b", "a"])).result() == Receipt(2, 1)
    assert it.submit("web", msgs(["b", "c"])).result() == Receipt(1, 1)
    assert it.submit("app", msgs(["a"])).result() == Receipt(1, 0)  # another source
    assert it.log.end(0) == 4
    it.close()
    it.log.close()


def test_a_message_being_written_is_not_written_again(tmp_path):
    it = intake(tmp_path)
    first = it.submit("web", msgs(["m1"]))
    second = it.submit("web", msgs(["m1"]))  # while the first may still be in the writer
    assert first.result().stored == 1 and second.result() == Receipt(0, 1)
    barrier = threading.Barrier(8)
    results = []

    def client() -> None:
        barrier.wait()
        results.append(it.submit("web", msgs(["same", "m1"])).result())

    threads = [threading.Thread(target=client) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(r.stored for r in results) == 1 and it.log.end(0) == 2
    it.close()
    it.log.close()


def test_keys_lost_in_a_crash_are_recovered_from_the_log(tmp_path):
    it = intake(tmp_path)
    it.submit("web", msgs([f"m{i}" for i in range(30)])).result()
    it.close()
    it.log.close()
    shutil.rmtree(tmp_path / "dedup")  # as if the key files never reached the disk
    again = intake(tmp_path)
    assert again.recover() == 30
    assert again.submit("web", msgs(["m3", "m30"])).result() == Receipt(1, 1)
    again.close()
    again.log.close()
