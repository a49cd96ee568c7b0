"""Intake: each message of a source stored once, and acknowledged only once durable.

``submit(source, messages)`` returns a future that resolves when every message of the
request is in the intake log (fsync'd), with how many were new and how many duplicates:

* a messageId the source already stored (the :class:`Deduplicator` knows it) is a
  duplicate: acknowledged, not stored again;
* one that a concurrent request is storing right now waits for that request: if its
  write fails, this request fails too (it was not stored; the client retries);
* one that appears twice in the same request is stored once.

The claim of a key (pending while its write runs) and its entry in the deduplicator once
written happen under one lock, so two requests never both store the same message.
:meth:`recover` re-adds the keys of records the log holds past the deduplicator's durable
checkpoint (a crash between the log's fsync and the key files' fsync).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import dataclass

import orjson

from segmentum.live.dedup import Deduplicator, dedup_key
from segmentum.live.log import IntakeLog, Offset
from segmentum.live.spec import Message

__all__ = ["Intake", "Receipt"]


@dataclass(frozen=True)
class Receipt:
    """What a request stored: new messages and duplicates (acknowledged, not stored again)."""

    stored: int
    duplicates: int


class Intake:
    """De-duplicating, durable intake in front of an :class:`IntakeLog`."""

    def __init__(self, log: IntakeLog, dedup: Deduplicator, *, flush_seconds: float = 1.0):
        self.log, self.dedup = log, dedup
        self._lock = threading.Lock()
        self._pending: dict[bytes, Future] = {}
        self._stop = threading.Event()
        self._flusher = threading.Thread(
            target=self._flush_loop, args=(flush_seconds,), name="intake-dedup-flush", daemon=True
        )
        self._flusher.start()

    def submit(self, source: str, messages: Sequence[Message]) -> Future[Receipt]:
        """Store the new messages; the future resolves once all of the request is durable."""
        keys = [dedup_key(source, m.message_id) for m in messages]
        with self._lock:
            seen = self.dedup.seen(keys) if keys else []
            fresh: dict[bytes, Message] = {}
            waits: set[Future] = set()
            for message, key, known in zip(messages, keys, seen, strict=True):
                if known or key in fresh:
                    continue
                if key in self._pending:
                    waits.add(self._pending[key])
                else:
                    fresh[key] = message
            written = self.log.submit([(m.key, m.record) for m in fresh.values()])
            for key in fresh:
                self._pending[key] = written
        receipt = Receipt(len(fresh), len(messages) - len(fresh))
        done: Future[Receipt] = Future()
        done.set_running_or_notify_cancel()
        written.add_done_callback(lambda f: self._written(f, list(fresh), waits, done, receipt))
        return done

    def _written(self, written: Future, keys: list[bytes], waits: set[Future], done: Future,
                 receipt: Receipt) -> None:
        with self._lock:
            for key in keys:
                self._pending.pop(key, None)
            if written.exception() is None:
                self.dedup.add(zip(keys, written.result(), strict=True))
        if written.exception() is not None:
            done.set_exception(written.exception())
        elif not waits:
            done.set_result(receipt)
        else:  # duplicates of messages other requests were writing: their outcome decides
            _all_of(list(waits), receipt).add_done_callback(lambda f: _copy(f, done))

    def recover(self) -> int:
        """Re-add the keys of records past the deduplicator's checkpoint; how many."""
        added = 0
        for partition in range(self.log.partitions):
            position, end = self.dedup.checkpoint(partition), self.log.end(partition)
            while position < end:
                records = self.log.read(partition, position, 5000)
                if not records:
                    break
                entries: list[tuple[bytes, Offset]] = []
                for rec in records:
                    doc = orjson.loads(rec.value)
                    entries.append((dedup_key(doc["source"], doc["messageId"]), rec.offset))
                known = self.dedup.seen([k for k, _ in entries])
                new = [e for e, k in zip(entries, known, strict=True) if not k]
                with self._lock:
                    self.dedup.add(new)
                added += len(new)
                position = records[-1].offset.position + 1
        self.dedup.flush()
        return added

    def _flush_loop(self, every: float) -> None:
        while not self._stop.wait(every):
            self.dedup.flush()

    def close(self) -> None:
        """Stop flushing and close the deduplicator (the log is its owner's to close)."""
        self._stop.set()
        self._flusher.join()
        self.dedup.close()


def _copy(source: Future, target: Future) -> None:
    if source.exception() is not None:
        target.set_exception(source.exception())
    else:
        target.set_result(source.result())


def _all_of(futures: list[Future], result: Receipt) -> Future[Receipt]:
    """A future that gives ``result`` once all ``futures`` succeed, or the first failure."""
    out: Future[Receipt] = Future()
    out.set_running_or_notify_cancel()
    remaining = [len(futures)]
    lock = threading.Lock()

    def one_done(f: Future) -> None:
        with lock:
            if out.done():
                return
            if f.exception() is not None:
                out.set_exception(f.exception())
                return
            remaining[0] -= 1
            if remaining[0] == 0:
                out.set_result(result)

    for f in futures:
        f.add_done_callback(one_done)
    return out
