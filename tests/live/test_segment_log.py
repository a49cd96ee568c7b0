"""SegmentLog: durable appends with group commit, reads by position, recovery of a torn tail."""

from __future__ import annotations

import os
import threading

import pytest

from segmentum.errors import StorageError, WorkspaceBusyError
from segmentum.live.log import Offset
from segmentum.live.segment_log import SegmentLog


def values(log: SegmentLog, start: int = 0) -> list[bytes]:
    out, pos = [], start
    while records := log.read(0, pos, 100):
        out += [r.value for r in records]
        pos = records[-1].offset.position + 1
    return out


def test_appends_get_consecutive_offsets_and_read_back_across_segments(tmp_path):
    with SegmentLog(tmp_path, segment_bytes=300) as log:
        first = [o for n in range(0, 50, 10) for o in log.append([(b"c1", b"v%d" % i) for i in range(n, n + 10)])]
        second = log.append([(b"c2", b"w")])
        assert [o.position for o in first] == list(range(50)) and second == [Offset(0, 50)]
        assert log.stats()["segments"] > 1
        assert values(log) == [b"v%d" % i for i in range(50)] + [b"w"]
        assert [r.value for r in log.read(0, 37, 3)] == [b"v37", b"v38", b"v39"]
        assert log.read(0, 51) == [] and log.end(0) == 51
    with SegmentLog(tmp_path, segment_bytes=300) as log:  # reopened: the same records
        assert log.end(0) == 51 and values(log, 45) == [b"v%d" % i for i in range(45, 50)] + [b"w"]
        assert log.read(0, 3, 1)[0].key == b"c1"


def test_concurrent_appends_share_fsyncs(tmp_path):
    with SegmentLog(tmp_path) as log:
        def client(n: int) -> None:
            for i in range(40):
                log.append([(b"k", b"%d-%d" % (n, i))])

        threads = [threading.Thread(target=client, args=(n,)) for n in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert log.end(0) == 320
        assert log.groups < 320  # group commit: fewer write + fsync rounds than requests
        assert sorted(values(log)) == sorted(b"%d-%d" % (n, i) for n in range(8) for i in range(40))


def test_a_torn_tail_is_cut_and_appends_continue(tmp_path):
    with SegmentLog(tmp_path) as log:
        log.append([(b"k", b"one"), (b"k", b"two"), (b"k", b"three")])
    seg = next(tmp_path.glob("*.log"))
    size = seg.stat().st_size
    with open(seg, "r+b") as fh:  # the last frame half written, then garbage
        fh.truncate(size - 3)
        fh.seek(0, os.SEEK_END)
        fh.write(b"\x00\x07garbage")
    with SegmentLog(tmp_path) as log:
        assert values(log) == [b"one", b"two"] and log.end(0) == 2
        assert log.append([(b"k", b"four")]) == [Offset(0, 2)]
        assert values(log) == [b"one", b"two", b"four"]


def test_a_flipped_byte_ends_the_log_at_that_record(tmp_path):
    with SegmentLog(tmp_path) as log:
        log.append([(b"k", b"aaaa"), (b"k", b"bbbb"), (b"k", b"cccc")])
    seg = next(tmp_path.glob("*.log"))
    data = bytearray(seg.read_bytes())
    data[data.index(b"bbbb")] ^= 0xFF
    seg.write_bytes(bytes(data))
    with SegmentLog(tmp_path) as log:
        assert values(log) == [b"aaaa"]


def test_commit_is_durable_and_consumed_segments_expire(tmp_path):
    with SegmentLog(tmp_path, segment_bytes=500, retention_seconds=0) as log:
        for _ in range(20):
            log.append([(b"k", b"x" * 100)])
        before = log.stats()["segments"]
        log.commit(Offset(0, 14))
        assert log.committed(0) == 15 and log.stats()["segments"] < before
        assert values(log, 15) == [b"x" * 100] * 5
    with SegmentLog(tmp_path, segment_bytes=500) as log:
        assert log.committed(0) == 15 and log.backlog() == 5


def test_one_process_writes_a_log(tmp_path):
    with SegmentLog(tmp_path):
        with pytest.raises(WorkspaceBusyError, match=f"pid {os.getpid()}"):
            SegmentLog(tmp_path)


def test_a_failed_write_acknowledges_nothing(tmp_path):
    with SegmentLog(tmp_path) as log:
        log.append([(b"k", b"kept")])
        os.close(log._fd)  # the disk goes away under the writer
        with pytest.raises(StorageError, match="Writing the intake log failed"):
            log.append([(b"k", b"lost")])
        with pytest.raises(StorageError, match="not accepting writes"):
            log.submit([(b"k", b"later")])
        assert log.end(0) == 1 and values(log) == [b"kept"]
        log._fd = os.open(os.devnull, os.O_WRONLY)  # let close() release something
