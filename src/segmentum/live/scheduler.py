"""The scheduler inside ``segmentum serve``: timers, the safety net, scores, campaigns, alarms.

One thread; every job runs on the workspace thread (``run``: a callable that runs a function
of the workspace there, such as ``WorkspaceAccess.call``), one after another:

    timers      every ``tick`` seconds: the timers due by now (``LiveSegments.run_due``)
    lag         every second: each segment's lag; an alarm past the bound
    retry       every 30 s: a full refresh of the segments whose evaluation failed
    refresh     every ``refresh_minutes``: the safety-net full refresh (disagreements alarmed)
    scores      on a cron schedule (default ``0 3 * * *``, 03:00 UTC): RFM and CLV recomputed
                as of now, then the segments reading them refreshed
    campaigns   every minute: the run due of every scheduled or recurring campaign, planned
                and recorded once (a run already in the delivery log is not planned again)

Every run of a job but an idle timer poll is recorded in ``_scheduler_runs`` (job, started_at,
finished_at, status ``ok`` / ``failed``, detail JSON); a failed run raises a ``job_failed``
alarm and the job runs again at its next time.
"""

from __future__ import annotations

import dataclasses as dc
import datetime as _dt
import json
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import ibis
import pyarrow as pa

from segmentum.data.schema import STR, TS

__all__ = ["Scheduler", "Job", "RUNS", "RUNS_SCHEMA", "record_run", "runs"]

log = logging.getLogger("segmentum.live.scheduler")
RUNS = "_scheduler_runs"
RUNS_SCHEMA = {"job": STR, "started_at": TS, "finished_at": TS, "status": STR, "detail": STR}
_ARROW = pa.schema([("job", pa.string()), ("started_at", pa.timestamp("us", tz="UTC")),
                    ("finished_at", pa.timestamp("us", tz="UTC")), ("status", pa.string()),
                    ("detail", pa.string())])


def record_run(ws, job: str, started: _dt.datetime, status: str, detail: Any) -> None:
    wh = ws.warehouse
    wh.create_table(RUNS, RUNS_SCHEMA)
    row = {"job": job, "started_at": started, "finished_at": _dt.datetime.now(_dt.UTC),
           "status": status, "detail": json.dumps(detail, default=str, sort_keys=True)}
    wh.insert(RUNS, ibis.memtable(pa.Table.from_pylist([row], schema=_ARROW)))


def runs(ws, job: str | None = None, limit: int = 100) -> list[dict]:
    """The latest recorded runs (newest first)."""
    wh = ws.warehouse
    if not wh.has_table(RUNS):
        return []
    t = wh.table(RUNS)
    if job is not None:
        t = t.filter(t.job == job)
    return t.order_by(ibis.desc("started_at")).limit(limit).to_pyarrow().to_pylist()


@dc.dataclass
class Job:
    """A job: ``fn(ws)`` returns a detail dict, or None for "nothing to do" (not recorded).
    ``every`` seconds, or on a ``cron`` schedule (five fields, UTC): a cron job runs once per
    scheduled minute that has come since the scheduler started."""

    name: str
    fn: Callable[[Any], dict | None]
    every: float | None = None
    cron: str | None = None
    next_at: float = 0.0  # monotonic time of the next run (every)
    slot: _dt.datetime | None = None  # the latest scheduled minute already run (cron)

    def due(self, mono: float, wall: _dt.datetime) -> bool:
        if self.every is not None:
            return mono >= self.next_at
        latest = self._cron().latest(wall)
        return latest is not None and (self.slot is None or latest > self.slot)

    def schedule(self, mono: float, wall: _dt.datetime) -> None:
        if self.every is not None:
            self.next_at = mono + self.every
        else:
            self.slot = self._cron().latest(wall)

    def _cron(self):
        from segmentum.activation.cron import Cron

        return Cron.parse(self.cron)


class Scheduler:
    """Runs ``jobs`` on the workspace (through ``run``) from its own thread."""

    def __init__(self, run: Callable[..., Any], jobs: list[Job], *, alarm=None, errors=None,
                 poll: float = 0.05) -> None:
        self.run, self.jobs, self.alarm, self.errors, self.poll = run, jobs, alarm, errors, poll
        self.last: dict[str, dict] = {}  # job -> its latest run (status, detail, seconds)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="live-scheduler", daemon=True)
        wall, mono = _dt.datetime.now(_dt.UTC), time.monotonic()
        for job in jobs:
            if job.cron is not None:
                job.schedule(mono, wall)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()

    def _loop(self) -> None:
        while not self._stop.is_set():
            mono, wall = time.monotonic(), _dt.datetime.now(_dt.UTC)
            for job in self.jobs:
                if self._stop.is_set():
                    return
                if job.due(mono, wall):
                    job.schedule(mono, wall)
                    self.run_job(job)
            self._stop.wait(self.poll)

    def run_job(self, job: Job) -> dict | None:
        """Run one job now on the workspace thread, recording the run."""
        started, t0 = _dt.datetime.now(_dt.UTC), time.perf_counter()

        def work(ws):
            try:
                detail = job.fn(ws)
            except Exception as exc:  # noqa: BLE001 - recorded, alarmed; the job runs again
                detail = {"error": f"{type(exc).__name__}: {exc}"}
                record_run(ws, job.name, started, "failed", detail)
                return "failed", detail
            if detail is not None:
                record_run(ws, job.name, started, "ok", detail)
            return "ok", detail

        try:
            status, detail = self.run(work)
        except Exception as exc:  # noqa: BLE001 - the workspace itself failed; reported, retried
            status, detail = "failed", {"error": f"{type(exc).__name__}: {exc}"}
        if detail is None:
            return None
        self.last[job.name] = {"status": status, "detail": detail, "at": started,
                               "seconds": round(time.perf_counter() - t0, 3)}
        if status == "failed":
            log.error("scheduled job %s failed: %s", job.name, detail["error"])
            if self.errors is not None:
                self.errors.labels("job").inc()
            if self.alarm is not None:
                self.alarm("job_failed", None, {"job": job.name, **detail})
        return detail
