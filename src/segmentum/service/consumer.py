"""Consumer: applies the intake log to the workspace, run after run, and commits its position.

One thread per service. For each partition it waits for records past the committed
position, applies up to ``batch`` of them in one workspace transaction
(:func:`~segmentum.live.apply.apply_records`, on the workspace thread), and then commits
the last one's offset. A crash between the two applies the run again on restart, which
changes nothing (loads are upserts on ids derived from the messages). A run that fails
(the disk is full, the workspace cannot be written) is retried with a growing pause, up
to 30 s, and never skipped; ``last_error`` says why it waits.

**Pacing.** A run costs a fixed part (the loader's queries, about a quarter of a second of
CPU) plus a part per record, so many small runs cost far more than one large one. After a
run that took ``d`` seconds, the next one starts once ``batch`` records wait, or after
``linger * d`` seconds (at most ``max_linger``): while the consumer keeps up it spends at
most ``1 / (1 + linger)`` of its time applying, and a run grows with the rate of arrival,
up to ``batch`` records per transaction once it falls behind. The first run after an idle
spell starts at once.

``listeners`` are called on the consumer thread with each run's
:class:`~segmentum.live.apply.Applied` (the contacts it touched, what it stored), after the
run is stored and before its position is committed: the hook for work that must follow
every stored batch, such as re-evaluating segments. A crash before the commit applies the
run again and calls them again; a listener that raises has the run retried.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from segmentum.live.apply import Applied, apply_records
from segmentum.live.log import IntakeLog
from segmentum.live.mapping import MappingConfig
from segmentum.service.access import WorkspaceAccess

__all__ = ["Consumer"]

log = logging.getLogger("segmentum.service.consumer")


class Consumer:
    """Applies ``intake_log`` to the workspace behind ``access`` (see the module docstring)."""

    def __init__(self, intake_log: IntakeLog, access: WorkspaceAccess, mapping: MappingConfig, *,
                 batch: int = 50_000, linger: float = 2.0, max_linger: float = 1.0):
        self.log, self.access, self.mapping, self.batch = intake_log, access, mapping, batch
        self.linger, self.max_linger = linger, max_linger
        self.listeners: list[Callable[[Applied], None]] = []
        self.applied = 0  # records applied since start
        self.runs = 0
        self.last_error: str | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="intake-consumer", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Finish the run under way, then stop."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()

    def _loop(self) -> None:
        pause = 0.0
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                busy = any([self.run_once(p) for p in range(self.log.partitions)])
                pause, self.last_error = 0.0, None
            except Exception as exc:  # noqa: BLE001 - kept, reported, retried; never skipped
                pause = min(30.0, max(0.5, pause * 2))
                self.last_error = f"{type(exc).__name__}: {exc}"
                log.exception("applying the intake log failed; retrying in %.1f s", pause)
                self._stop.wait(pause)
                continue
            if busy:
                self._gather(min(self.max_linger, self.linger * (time.monotonic() - started)))
            else:
                self.log.wait(0, self.log.committed(0), 0.2)

    def _gather(self, seconds: float) -> None:
        """Wait up to ``seconds`` for a full run's worth of records (see Pacing)."""
        deadline = time.monotonic() + seconds
        while self.log.backlog() < self.batch and not self._stop.is_set():
            left = deadline - time.monotonic()
            if left <= 0:
                return
            self._stop.wait(min(left, 0.05))

    def run_once(self, partition: int = 0) -> bool:
        """Apply what waits in ``partition`` (up to ``batch`` records); whether there was any."""
        position = self.log.committed(partition)
        records = []
        while len(records) < self.batch:
            got = self.log.read(partition, position, self.batch - len(records))
            if not got:
                break
            records += got
            position = got[-1].offset.position + 1
        if not records:
            return False
        started = time.perf_counter()
        applied = self.access.call(apply_records, records, self.mapping)
        for listener in self.listeners:
            listener(applied)
        self.log.commit(records[-1].offset)
        self.applied += len(records)
        self.runs += 1
        log.debug("applied %d records in %.2f s", len(records), time.perf_counter() - started)
        return True

    def stats(self) -> dict:
        return {
            "applied": self.applied, "runs": self.runs, "backlog": self.log.backlog(),
            "last_error": self.last_error,
        }
