"""Deduplicator: which messageIds each source has already stored, over at least a window.

A message is known by ``key(source, messageId)``: the 128-bit BLAKE2b digest of the two.
Two different ids share a digest with odds of about n² / 2¹²⁹ (10⁻¹⁹ for ten billion
ids), so "seen" is exact in practice, and nothing is forgotten before ``window`` (7 days by
default) has passed since it was stored.

Keys live in chunks. The newest chunk is a Python set backed by an append-only file
(``<start>.ids``); when it holds ``chunk_entries`` keys or is a day old, the next write
seals it first: kept as one sorted NumPy array (16 bytes a key), its file renamed
``<start>-<newest>.ids``. A sealed chunk whose newest key is older than the window is
dropped with its file; chunk files found on opening are sealed chunks. A file
entry is the key, then the log offset it was stored at (``<16sIQ``).

The files are written after the log's fsync and fsync'd about once a second
(:meth:`flush`), which also records in ``checkpoint`` the log position up to which they
are complete. After a crash, :meth:`Intake.recover <segmentum.live.intake.Intake.recover>`
re-adds the keys of what the log holds past that checkpoint, so a retried message is
still recognised after a power cut.
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import numpy as np

from segmentum.live.log import Offset

__all__ = ["Deduplicator", "dedup_key"]

_ENTRY = np.dtype([("key", "S16"), ("partition", "<u4"), ("position", "<u8")])
_PACK = struct.Struct("<16sIQ").pack
DAY = 86_400.0


def dedup_key(source: str, message_id: str) -> bytes:
    """The 16-byte key of one source's messageId."""
    return hashlib.blake2b(f"{source}\x00{message_id}".encode(), digest_size=16).digest()


class _Sealed:
    __slots__ = ("path", "newest", "keys")

    def __init__(self, path: Path, newest: float, keys: np.ndarray):
        self.path, self.newest, self.keys = path, newest, keys

    def contains(self, queries: np.ndarray) -> np.ndarray:
        if not len(self.keys):
            return np.zeros(len(queries), bool)
        idx = np.searchsorted(self.keys, queries).clip(max=len(self.keys) - 1)
        return self.keys[idx] == queries


class Deduplicator:
    """The set of stored message keys in ``directory`` (see the module docstring)."""

    def __init__(
        self,
        directory: str | os.PathLike,
        *,
        window_seconds: float = 7 * DAY,
        chunk_entries: int = 1 << 20,
        clock: Callable[[], float] = time.time,
    ):
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.window, self._chunk_entries, self._clock = window_seconds, chunk_entries, clock
        self._lock = threading.Lock()
        self._sealed: list[_Sealed] = []
        self._checkpoint: dict[int, int] = self._read_checkpoint()
        self._covered: dict[int, int] = dict(self._checkpoint)  # written up to, not yet fsync'd
        for path in sorted(self.directory.glob("*.ids")):
            self._load(path)
        self._open_active()

    # -- files ---------------------------------------------------------------------------
    def _read_checkpoint(self) -> dict[int, int]:
        try:
            raw = json.loads((self.directory / "checkpoint").read_text())
            return {int(p): int(v) for p, v in raw.items()}
        except (FileNotFoundError, ValueError, AttributeError):
            return {}

    def _load(self, path: Path) -> None:
        """A chunk file from an earlier run becomes a sealed chunk (or is dropped if expired)."""
        data = path.read_bytes()
        data = data[: len(data) - len(data) % _ENTRY.itemsize]  # a torn last entry
        entries = np.frombuffer(data, _ENTRY)
        entries = entries[entries["key"] != b""]  # holes a power cut can leave
        stamps = [int(part) / 1000 for part in path.stem.split("-") if part.isdigit()]
        # a sealed chunk's name ends with its newest key's time; an unsealed one's last write
        newest = stamps[-1] if len(stamps) > 1 else max([path.stat().st_mtime, *stamps])
        if newest < self._clock() - self.window or not len(entries):
            path.unlink(missing_ok=True)
            return
        self._sealed.append(_Sealed(path, newest, np.unique(entries["key"])))

    def _open_active(self) -> None:
        self._active: set[bytes] = set()
        self._active_start = self._active_newest = self._clock()
        self._active_path = self.directory / f"{int(self._active_start * 1000):015d}.ids"
        self._fd = os.open(self._active_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)

    def _seal(self) -> None:
        os.fsync(self._fd)
        os.close(self._fd)
        end = self._active_path.with_name(
            f"{self._active_path.stem}-{int(self._active_newest * 1000):015d}.ids"
        )
        os.replace(self._active_path, end)
        keys = np.array(sorted(self._active), dtype="S16")
        self._sealed.append(_Sealed(end, self._active_newest, keys))
        self._open_active()

    # -- use -----------------------------------------------------------------------------
    def seen(self, keys: Sequence[bytes]) -> list[bool]:
        """For each key: was it stored (within the window)?"""
        with self._lock:
            hits = [k in self._active for k in keys]
            if self._sealed and not all(hits):
                found = np.array(hits)
                queries = np.array(keys, dtype="S16")
                for chunk in self._sealed:
                    found |= chunk.contains(queries)
                hits = found.tolist()
            return hits

    def add(self, entries: Iterable[tuple[bytes, Offset]]) -> None:
        """Remember keys just stored at these log offsets."""
        rows = [(k, o.partition, o.position) for k, o in entries]
        if not rows:
            return
        with self._lock:
            now = self._clock()
            if self._active and (len(self._active) >= self._chunk_entries or now - self._active_start >= DAY):
                self._seal()
            os.write(self._fd, b"".join(_PACK(*row) for row in rows))
            self._active.update(r[0] for r in rows)
            self._active_newest = now
            for _k, partition, position in rows:
                if position + 1 > self._covered.get(partition, 0):
                    self._covered[partition] = position + 1
            self._expire(now)

    def _expire(self, now: float) -> None:
        keep = []
        for chunk in self._sealed:
            if chunk.newest < now - self.window:
                chunk.path.unlink(missing_ok=True)
            else:
                keep.append(chunk)
        self._sealed = keep

    def flush(self) -> None:
        """Make every key added so far durable and record the log position it covers."""
        with self._lock:
            os.fsync(self._fd)
            covered = dict(self._covered)
        if covered != self._checkpoint:
            tmp = self.directory / "checkpoint.tmp"
            tmp.write_text(json.dumps(covered))
            with open(tmp, "rb+") as fh:
                os.fsync(fh.fileno())
            os.replace(tmp, self.directory / "checkpoint")
            self._checkpoint = covered

    def checkpoint(self, partition: int) -> int:
        """The log position of ``partition`` up to which the key files are durable."""
        return self._checkpoint.get(partition, 0)

    def __len__(self) -> int:
        with self._lock:
            return len(self._active) + sum(len(c.keys) for c in self._sealed)

    def close(self) -> None:
        self.flush()
        with self._lock:
            os.close(self._fd)
