"""SegmentLog: the default intake log, append-only segment files on a local disk.

Its folder holds::

    LOCK                          flock'ed by the one process that writes the log (its pid inside)
    00000000000000000000.log      segments, each named by the position of its first record
    committed                     the consumer's position, replaced atomically

A record is framed as ``u32 value length, u32 key length, u64 position, u32 CRC-32`` (of the
lengths, the position, the key and the value; little-endian), then the key and the value.

**Group commit.** One writer thread takes every batch waiting, writes them all with one
``write`` and one ``fdatasync``, and only then resolves their futures: a request is
acknowledged once its records are on disk, and concurrent requests share the fsync. A
failed write or fsync cuts the file back to where it was and fails every future of that
group with :class:`~segmentum.errors.StorageError` (nothing of it was acknowledged).

**Recovery.** On open, the last segment is read back: the first frame that is short, has a
bad CRC or the wrong position ends the log, and the file is cut there. Such bytes were never
acknowledged (the fsync that would have acknowledged them did not return).

**Retention.** A segment is deleted once the consumer has committed past its end and its
last write is older than ``retention_seconds``; the segment being written is always kept.

**Redaction.** ``redact(replace)`` (erasing a person) writes each segment holding a record
to replace anew, with the same positions, to a temporary file renamed over the old one while
the writer waits; a read that meets the swap sees fewer valid frames and returns early.
"""

from __future__ import annotations

import bisect
import fcntl
import os
import struct
import threading
import time
import zlib
from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import Future
from pathlib import Path

from segmentum.errors import OverloadedError, StorageError, UsageError, WorkspaceBusyError
from segmentum.live.log import IntakeLog, LogRecord, Offset

__all__ = ["SegmentLog"]

HEADER = struct.Struct("<IIQI")  # value length, key length, position, crc32
_MARK_EVERY = 256  # records between two entries of a segment's in-memory position index
_CHUNK = 1 << 20
_MAX_KEY = 1 << 16


class _Segment:
    """One segment file: its first position, size and a sparse position -> byte index."""

    __slots__ = ("base", "path", "size", "mark_pos", "mark_byte")

    def __init__(self, base: int, path: Path, size: int = 0):
        self.base, self.path, self.size = base, path, size
        self.mark_pos: list[int] | None = None  # None: not indexed yet (sealed, not read)
        self.mark_byte: list[int] = []

    def mark(self, position: int, byte: int) -> None:
        if (position - self.base) % _MARK_EVERY == 0:
            assert self.mark_pos is not None
            self.mark_pos.append(position)
            self.mark_byte.append(byte)


def _frame(position: int, key: bytes, value: bytes) -> bytes:
    head = struct.pack("<IIQ", len(value), len(key), position)
    crc = zlib.crc32(value, zlib.crc32(key, zlib.crc32(head)))
    return b"".join((head, struct.pack("<I", crc), key, value))


def _frames(fd: int, byte: int, position: int, stop: int) -> Iterator[tuple[int, bytes, bytes, int]]:
    """Valid frames of a file from ``byte`` (holding ``position``) up to ``stop``:
    ``(position, key, value, next byte)``; ends at the first frame that is not valid.
    The file is read a chunk at a time (a frame larger than a chunk: in one read) and each
    chunk's frames parsed in place."""
    want = _CHUNK
    while byte + HEADER.size <= stop:
        buf = os.pread(fd, min(want, stop - byte), byte)
        view, size, off = memoryview(buf), len(buf), 0
        while off + HEADER.size <= size:
            vlen, klen, pos, crc = HEADER.unpack_from(buf, off)
            start, end = off + HEADER.size, off + HEADER.size + klen + vlen
            if pos != position or klen > _MAX_KEY or byte + end > stop:
                return
            if end > size:
                break
            if zlib.crc32(view[start:end], zlib.crc32(view[off : off + 16])) != crc:
                return
            yield pos, buf[start : start + klen], buf[start + klen : end], byte + end
            off, position = end, position + 1
        if off == 0:  # not one whole frame in this read: the next reads the first one whole
            if size < min(want, stop - byte):
                return  # the file is shorter than it should be
            vlen, klen = struct.unpack_from("<II", buf, 0)
            want = max(_CHUNK, HEADER.size + klen + vlen)
        else:
            want = _CHUNK
        byte += off


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        _write_all(fd, text.encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    _fsync_dir(path.parent)


class SegmentLog(IntakeLog):
    """The local intake log (one partition) in ``directory``; see the module docstring."""

    def __init__(
        self,
        directory: str | os.PathLike,
        *,
        segment_bytes: int = 64 << 20,
        max_pending_bytes: int = 64 << 20,
        retention_seconds: float = 86_400.0,
        fsync: bool = True,
    ):
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self._segment_bytes, self._max_pending = segment_bytes, max_pending_bytes
        self._retention, self._fsync = retention_seconds, fsync
        self._lock_fd = self._take_lock()
        self._cv = threading.Condition()
        self._write_lock = threading.Lock()  # held by a write, a redaction, a deletion
        self._pending: deque[tuple[list[tuple[bytes, bytes]], Future]] = deque()
        self._pending_bytes = 0
        self._closing = False
        self._broken: OSError | None = None
        self.groups = 0  # write + fsync rounds, for tests and stats
        self._segments, self._end = self._open_segments()
        last = self._segments[-1]
        self._fd = os.open(last.path, os.O_WRONLY | os.O_APPEND | os.O_CLOEXEC)
        self._committed = self._read_committed()
        if self._committed > self._end:
            os.close(self._fd)
            raise StorageError(
                f"The intake log {self.directory} ends at {self._end} but its consumer "
                f"position says {self._committed}: segment files are missing.",
                hint="Restore the missing *.log files, or remove the file `committed` to apply "
                "the log again from its start (loads are upserts: nothing is stored twice).",
                path=str(self.directory),
            )
        self._writer = threading.Thread(target=self._run, name="intake-log-writer", daemon=True)
        self._writer.start()

    # -- opening -------------------------------------------------------------------------
    def _take_lock(self) -> int:
        fd = os.open(self.directory / "LOCK", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
            os.close(fd)
            raise WorkspaceBusyError(
                f"Another process (pid {holder}) writes the intake log {self.directory}.",
                hint="Stop that `segmentum serve` first, or give this one another workspace.",
                path=str(self.directory),
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        return fd

    def _open_segments(self) -> tuple[list[_Segment], int]:
        segments = [
            _Segment(int(p.stem), p, p.stat().st_size)
            for p in sorted(self.directory.glob("*.log"))
            if p.stem.isdigit()
        ]
        if not segments:
            segments = [self._create_segment(self._read_committed())]
        return segments, segments[-1].base + self._recover(segments[-1])

    def _create_segment(self, base: int) -> _Segment:
        path = self.directory / f"{base:020d}.log"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        _fsync_dir(self.directory)
        seg = _Segment(base, path)
        seg.mark_pos = []
        return seg

    def _recover(self, seg: _Segment) -> int:
        """Index the last segment, cut it after its last valid frame; its record count."""
        seg.mark_pos, seg.mark_byte = [], []
        fd = os.open(seg.path, os.O_RDWR | os.O_CLOEXEC)
        count = byte = 0
        try:
            for position, _k, _v, nxt in _frames(fd, 0, seg.base, seg.size):
                seg.mark(position, byte)
                byte, count = nxt, count + 1
            if byte < seg.size:
                os.ftruncate(fd, byte)
                os.fsync(fd)
                seg.size = byte
        finally:
            os.close(fd)
        return count

    def _read_committed(self) -> int:
        path = self.directory / "committed"
        try:
            return int(path.read_text().strip() or 0)
        except FileNotFoundError:
            return 0
        except ValueError:
            raise StorageError(
                f"The intake log's consumer position {path} is not a number.",
                hint="Restore it from a backup, or write the first position not yet applied.",
                path=str(path),
            ) from None

    # -- appending -----------------------------------------------------------------------
    @property
    def partitions(self) -> int:
        return 1

    def submit(self, batch: Sequence[tuple[bytes, bytes]]) -> Future[list[Offset]]:
        records = list(batch)
        fut: Future[list[Offset]] = Future()
        fut.set_running_or_notify_cancel()  # a waiter giving up must not cancel a write
        if not records:
            fut.set_result([])
            return fut
        size = sum(HEADER.size + len(k) + len(v) for k, v in records)
        with self._cv:
            if self._closing or self._broken is not None:
                raise StorageError(
                    "The intake log is not accepting writes"
                    + (f" after a failed write ({self._broken})." if self._broken else " (closing)."),
                    hint="Restart `segmentum serve` once the disk is healthy; nothing was acknowledged.",
                    path=str(self.directory),
                )
            if self._pending and self._pending_bytes + size > self._max_pending:
                raise OverloadedError(
                    "The intake log has more waiting to be written than it takes.", retry_after=1
                )
            self._pending.append((records, fut))
            self._pending_bytes += size
            self._cv.notify_all()
        return fut

    def _run(self) -> None:
        while True:
            with self._cv:
                while not self._pending and not self._closing:
                    self._cv.wait()
                if not self._pending:
                    return
                items, self._pending, self._pending_bytes = self._pending, deque(), 0
            with self._write_lock:
                self._write(items)

    def _write(self, items: deque[tuple[list[tuple[bytes, bytes]], Future]]) -> None:
        seg = self._segments[-1]
        position, byte = self._end, seg.size
        frames: list[bytes] = []
        marks: list[tuple[int, int]] = []
        results: list[tuple[Future, list[Offset]]] = []
        for records, fut in items:
            offsets = []
            for key, value in records:
                if (position - seg.base) % _MARK_EVERY == 0:
                    marks.append((position, byte))
                frame = _frame(position, key, value)
                frames.append(frame)
                offsets.append(Offset(0, position))
                byte += len(frame)
                position += 1
            results.append((fut, offsets))
        try:
            _write_all(self._fd, b"".join(frames))
            if self._fsync:
                os.fdatasync(self._fd)
        except OSError as exc:
            self._undo(seg, exc)
            error = StorageError(
                f"Writing the intake log failed: {exc.strerror or exc}.",
                hint="Nothing of these requests was acknowledged: retry once the disk is healthy.",
                path=str(seg.path),
            )
            for fut, _ in results:
                fut.set_exception(error)
            return
        with self._cv:
            seg.size = byte
            for p, b in marks:
                seg.mark_pos.append(p)
                seg.mark_byte.append(b)
            self._end = position
            self.groups += 1
            self._cv.notify_all()
        for fut, offsets in results:
            fut.set_result(offsets)
        if seg.size >= self._segment_bytes:
            self._roll()

    def _undo(self, seg: _Segment, exc: OSError) -> None:
        try:
            os.ftruncate(self._fd, seg.size)
            os.fdatasync(self._fd)
        except OSError:
            with self._cv:
                self._broken = exc

    def _roll(self) -> None:
        try:
            seg = self._create_segment(self._end)
            fd = os.open(seg.path, os.O_WRONLY | os.O_APPEND | os.O_CLOEXEC)
        except OSError:
            return  # keep writing the current segment; rolling is tried after the next group
        old, self._fd = self._fd, fd
        os.close(old)
        with self._cv:
            self._segments.append(seg)

    # -- reading -------------------------------------------------------------------------
    def _check(self, partition: int) -> None:
        if partition != 0:
            raise UsageError(f"The local intake log has one partition (0), not {partition}.")

    def end(self, partition: int) -> int:
        self._check(partition)
        with self._cv:
            return self._end

    def wait(self, partition: int, position: int, timeout: float) -> bool:
        self._check(partition)
        with self._cv:
            return self._cv.wait_for(lambda: self._end > position or self._closing, timeout) and (
                self._end > position
            )

    def read(self, partition: int, position: int, max_records: int = 1000) -> list[LogRecord]:
        self._check(partition)
        with self._cv:
            if position >= self._end:
                return []
            bases = [s.base for s in self._segments]
            i = bisect.bisect_right(bases, position) - 1
            if i < 0:
                raise UsageError(
                    f"Position {position} of the intake log was deleted (it starts at {bases[0]})."
                )
            seg = self._segments[i]
            stop = seg.size
        if seg.mark_pos is None:
            self._index(seg)
        j = bisect.bisect_right(seg.mark_pos, position) - 1
        byte, at = (seg.mark_byte[j], seg.mark_pos[j]) if j >= 0 else (0, seg.base)
        out: list[LogRecord] = []
        fd = os.open(seg.path, os.O_RDONLY | os.O_CLOEXEC)
        try:
            for pos, key, value, _nxt in _frames(fd, byte, at, stop):
                if pos >= position:
                    out.append(LogRecord(Offset(0, pos), key, value))
                    if len(out) >= max_records:
                        break
        finally:
            os.close(fd)
        return out

    def _index(self, seg: _Segment) -> None:
        """Build a sealed segment's position index on first read."""
        pos_list, byte_list = [], []
        fd = os.open(seg.path, os.O_RDONLY | os.O_CLOEXEC)
        try:
            byte = 0
            for pos, _k, _v, nxt in _frames(fd, 0, seg.base, seg.size):
                if (pos - seg.base) % _MARK_EVERY == 0:
                    pos_list.append(pos)
                    byte_list.append(byte)
                byte = nxt
        finally:
            os.close(fd)
        seg.mark_byte, seg.mark_pos = byte_list, pos_list

    # -- the consumer's position ---------------------------------------------------------
    def committed(self, partition: int) -> int:
        self._check(partition)
        return self._committed

    def commit(self, offset: Offset) -> None:
        self._check(offset.partition)
        position = offset.position + 1
        if position > self.end(0):
            raise UsageError(f"Cannot commit {offset}: the log ends at {self.end(0)}.")
        if position <= self._committed:
            return
        _atomic_write(self.directory / "committed", str(position))
        self._committed = position
        self._expire()

    def _expire(self) -> None:
        cutoff = time.time() - self._retention
        with self._cv:
            doomed = []
            while len(self._segments) > 1:
                seg, nxt = self._segments[0], self._segments[1]
                if nxt.base > self._committed or seg.path.stat().st_mtime > cutoff:
                    break
                doomed.append(self._segments.pop(0))
        with self._write_lock:
            for seg in doomed:
                seg.path.unlink(missing_ok=True)

    # -- redaction -----------------------------------------------------------------------
    def redact(self, replace) -> int:
        """See :meth:`IntakeLog.redact` and the module docstring."""
        with self._write_lock:
            with self._cv:
                segments = list(self._segments)
            return sum(self._redact(seg, seg is segments[-1], replace) for seg in segments)

    def _redact(self, seg: _Segment, active: bool, replace) -> int:
        frames, marks, changed, byte = [], ([], []), 0, 0
        fd = os.open(seg.path, os.O_RDONLY | os.O_CLOEXEC)
        try:
            for pos, key, value, _nxt in _frames(fd, 0, seg.base, seg.size):
                new = replace(key, value)
                if new is not None:
                    key, value = new
                    changed += 1
                if (pos - seg.base) % _MARK_EVERY == 0:
                    marks[0].append(pos)
                    marks[1].append(byte)
                frames.append(_frame(pos, key, value))
                byte += len(frames[-1])
        finally:
            os.close(fd)
        if not changed:
            return 0
        data = b"".join(frames)
        tmp = seg.path.with_name(seg.path.name + ".redact")
        out = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
        try:
            _write_all(out, data)
            os.fsync(out)
        finally:
            os.close(out)
        os.replace(tmp, seg.path)
        _fsync_dir(self.directory)
        with self._cv:  # the new index at once, never none (readers use it unlocked)
            seg.size, seg.mark_pos, seg.mark_byte = len(data), marks[0], marks[1]
        if active:
            old, self._fd = self._fd, os.open(seg.path, os.O_WRONLY | os.O_APPEND | os.O_CLOEXEC)
            os.close(old)
        return changed

    def stats(self) -> dict:
        with self._cv:
            return {
                "end": self._end,
                "committed": self._committed,
                "segments": len(self._segments),
                "bytes": sum(s.size for s in self._segments),
                "groups": self.groups,
                "pending_bytes": self._pending_bytes,
            }

    def close(self) -> None:
        with self._cv:
            if self._closing:
                return
            self._closing = True
            self._cv.notify_all()
        self._writer.join()
        os.close(self._fd)
        os.close(self._lock_fd)
