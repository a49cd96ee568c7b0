"""The intake log interface: what the tracking API acknowledged, durably, in arrival order.

A log is split into partitions; a record is ``(key, value)`` bytes, where the key says which
partition it goes to (the contact it is about, so one contact's records keep their order).
A record's :class:`Offset` is its partition and its position there (0, 1, 2, ...).

* ``submit(batch)`` appends records; the returned future resolves with their offsets once
  they are durable (fsync'd, or acknowledged by every replica), or fails with
  :class:`~segmentum.errors.StorageError`. It raises :class:`~segmentum.errors.OverloadedError`
  at once when more is waiting to be written than the log takes.
* ``read(partition, position)`` returns durable records from a position on;
  ``wait(partition, position, timeout)`` blocks until there is one.
* ``commit(offset)`` records that everything up to and including ``offset`` was applied;
  ``committed(partition)`` is where a consumer starts again after a restart.

:class:`~segmentum.live.segment_log.SegmentLog` (local segment files, one partition) is the
default. A distributed log (Kafka with a topic partitioned by contact: ``submit`` =
produce with ``acks=all``, ``commit`` = the consumer group's offset) implements the same
methods; routes and the consumer only see this interface.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from typing import NamedTuple

from segmentum.errors import StorageError

__all__ = ["Offset", "LogRecord", "IntakeLog"]


class Offset(NamedTuple):
    """Where a record is: its partition and its position there (ordered as such; a tuple,
    cheap to make for every record read)."""

    partition: int
    position: int

    def __str__(self) -> str:
        return f"{self.partition}:{self.position}"


class LogRecord(NamedTuple):
    """One durable record: its offset, partition key and value."""

    offset: Offset
    key: bytes
    value: bytes


class IntakeLog(ABC):
    """An append-only, partitioned, durable log (see the module docstring)."""

    @property
    @abstractmethod
    def partitions(self) -> int:
        """How many partitions there are (numbered from 0)."""

    @abstractmethod
    def submit(self, batch: Sequence[tuple[bytes, bytes]]) -> Future[list[Offset]]:
        """Append ``(key, value)`` records; the future gives their offsets once durable."""

    def append(self, batch: Sequence[tuple[bytes, bytes]]) -> list[Offset]:
        """Append and wait until the records are durable."""
        return self.submit(batch).result()

    @abstractmethod
    def read(self, partition: int, position: int, max_records: int = 1000) -> list[LogRecord]:
        """Durable records of ``partition`` from ``position`` on, at most ``max_records``."""

    @abstractmethod
    def wait(self, partition: int, position: int, timeout: float) -> bool:
        """Block until ``partition`` holds a record at ``position`` (True) or time runs out."""

    @abstractmethod
    def end(self, partition: int) -> int:
        """The position the next record appended to ``partition`` will get."""

    @abstractmethod
    def committed(self, partition: int) -> int:
        """The first position of ``partition`` not yet applied by the consumer."""

    @abstractmethod
    def commit(self, offset: Offset) -> None:
        """Record, durably, that every record up to and including ``offset`` is applied."""

    def redact(self, replace: Callable[[bytes, bytes], tuple[bytes, bytes] | None]) -> int:
        """Rewrite every record for which ``replace(key, value)`` gives a new ``(key,
        value)``, at the same offset (erasing a person); how many. A log that cannot rewrite
        its records (one whose retention is the only way to forget) raises StorageError."""
        raise StorageError(
            f"{type(self).__name__} cannot rewrite records: erased data stay until its "
            "retention removes them.",
            hint="Erase with the local intake log, or set a short retention on this one.",
        )

    def backlog(self) -> int:
        """Records appended but not yet applied, over all partitions."""
        return sum(self.end(p) - self.committed(p) for p in range(self.partitions))

    @abstractmethod
    def close(self) -> None:
        """Write what is waiting, then release the log."""

    def __enter__(self) -> IntakeLog:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
