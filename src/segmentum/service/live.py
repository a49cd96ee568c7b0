"""The live engine inside ``segmentum serve``, and its routes.

:class:`LiveService` keeps the saved segments of the served workspace up to date: it opens
:class:`~segmentum.live.engine.LiveSegments` on the workspace thread (a baseline full
refresh for segments never evaluated live), re-evaluates after every run the consumer
stores (a consumer listener, so before the run's log position is committed: a crash
re-applies and re-evaluates it), and runs the scheduler (:mod:`segmentum.live.scheduler`):
timers, lag checks and alarms, failing segments retried, the safety-net refresh, RFM / CLV
on a cron schedule, scheduled and recurring campaigns.

Routes:

    GET /metrics                       Prometheus text format (key with the read scope)
    GET /api/live/freshness            per segment: watermark, lag, last full refresh, agreed
    GET /api/segments/{name}/freshness one segment's
    GET /api/live/runs?job=&limit=     the scheduler's recorded runs, newest first
    GET /api/live/alarms               the latest alarms raised
"""

from __future__ import annotations

import datetime as _dt
import logging
import time

import orjson
from fastapi import APIRouter, Depends, Query, Request, Response

from segmentum.errors import NotFoundError
from segmentum.live.alarms import Alarms
from segmentum.live.dependencies import Change
from segmentum.live.engine import Evaluation, LiveSegments
from segmentum.live.metrics import CONTENT_TYPE, LiveMetrics
from segmentum.live.scheduler import Job, Scheduler, runs
from segmentum.service.deps import require_scope

__all__ = ["LiveService", "router"]

log = logging.getLogger("segmentum.service.live")
KIND_TABLES = {"contacts": ("contacts",), "orders": ("orders", "order_items"),
               "order_items": ("order_items",), "events": ("events",)}


def _utc(text: str | None) -> _dt.datetime | None:
    if not text:
        return None
    return _dt.datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(_dt.UTC)


class LiveService:
    """Live segments for one running service (see the module docstring)."""

    def __init__(self, settings, access, intake_log, consumer) -> None:
        self.settings, self.access, self.log, self.consumer = settings, access, intake_log, consumer
        self.metrics = LiveMetrics(self._state)
        self.alarms = Alarms(metrics=self.metrics, webhook=settings.live_alarm_webhook,
                             secret=settings.live_alarm_secret, lag_seconds=settings.live_lag_alarm_seconds)
        self.live: LiveSegments = access.call(lambda ws: LiveSegments(ws, alarm=self.alarms))
        self.lags: dict[str, float] = {}
        self.timers_waiting = 0
        self.scheduler = Scheduler(access.call, self._jobs(), alarm=self.alarms, errors=self.metrics.errors)
        consumer.listeners.append(self.on_applied)

    def start(self) -> None:
        baseline = self.access.call(lambda ws: self.live.start())
        if baseline is not None:
            self.metrics.observe(baseline, [])
        self.scheduler.start()

    def stop(self) -> None:
        self.scheduler.stop()
        self.alarms.close()

    # -- after every stored run -------------------------------------------------------------
    def on_applied(self, applied) -> None:
        """Re-evaluate what a stored run changed (on the consumer thread, before its commit)."""
        tables = {t for kind, n in applied.accepted.items() if n for t in KIND_TABLES.get(kind, ())}
        if not tables or not applied.contacts:
            return
        change = Change.of(applied.contacts, tables, applied.event_types)
        try:
            ev = self.access.call(lambda ws: self.live.on_change(change))
        except Exception as exc:  # noqa: BLE001 - stored data must keep flowing; retried in full
            log.exception("live evaluation of a stored run failed")
            self.metrics.errors.labels("evaluation").inc()
            self.access.call(lambda ws: self.live.fail_all(f"{type(exc).__name__}: {exc}"))
            return
        now = _dt.datetime.now(_dt.UTC)
        self.metrics.observe(ev, [(now - _utc(r)).total_seconds() for r in applied.received])

    # -- the scheduler's jobs ---------------------------------------------------------------
    def _jobs(self) -> list[Job]:
        s = self.settings
        jobs = [
            Job("timers", self._timers, every=s.live_tick_seconds),
            Job("lag", self._lag, every=1.0),
            Job("retry", lambda ws: _detail(self.live.retry_failing()), every=30.0),
            Job("campaigns", _campaigns, every=60.0),
        ]
        if s.live_refresh_minutes > 0:
            job = Job("refresh", lambda ws: _detail(self.live.full_refresh()), every=s.live_refresh_minutes * 60)
            job.next_at = time.monotonic() + job.every  # not at start: the baseline was just made
            jobs.append(job)
        if s.live_scores_cron:
            jobs.append(Job("scores", self._scores, cron=s.live_scores_cron))
        return jobs

    def _timers(self, ws) -> dict | None:
        done = self.live.run_due()
        now = _dt.datetime.now(_dt.UTC)
        for ev in done:
            self.metrics.observe(ev, [])
            if ev.due is not None:
                self.metrics.timer_delay.observe(max((now - ev.due).total_seconds(), 0.0))
        if not done:
            return None
        return {"ticks": len(done), "contacts": sum(e.contacts for e in done),
                "entered": sum(e.entered for e in done), "exited": sum(e.exited for e in done),
                "late_seconds": max((now - e.due).total_seconds() for e in done if e.due is not None)}

    def _lag(self, ws) -> None:
        report = self.live.freshness_report(self._pending_since())
        self.lags = {r["segment"]: r["lag_seconds"] for r in report}
        self.timers_waiting = self.live.timers.count()
        self.alarms.check_lags(report)
        return None

    def _scores(self, ws) -> dict:
        from segmentum.analytics.clv import compute_clv
        from segmentum.analytics.rfm import compute_rfm

        now = _dt.datetime.now(_dt.UTC).replace(microsecond=0)
        detail = {"as_of": now.isoformat(), "rfm": compute_rfm(ws, as_of=now) is not None}
        try:
            compute_clv(ws, as_of=now)
            detail["clv"] = True
        except Exception as exc:  # noqa: BLE001 - too few repeat buyers to fit: said, RFM kept
            detail["clv"] = f"{type(exc).__name__}: {exc}"
        ev = self.live.on_change(Change.of(None, {"rfm", "clv"}))
        detail["refreshed"] = ev.segments
        return detail

    def _pending_since(self) -> _dt.datetime | None:
        """When the oldest stored record not yet applied arrived (None: nothing waits)."""
        if not self.log.backlog():
            return None
        got = self.log.read(0, self.log.committed(0), 1)
        if not got:
            return None
        return _utc(orjson.loads(got[0].value).get("receivedAt"))

    def _state(self) -> dict:
        stats = self.log.stats()
        return {"stored": stats["end"], "backlog": self.log.backlog(), "timers": self.timers_waiting,
                "lags": dict(self.lags)}

    # -- for the routes and /health -------------------------------------------------------------
    def freshness(self) -> list[dict]:
        pending = self._pending_since()
        return self.access.call(lambda ws: self.live.freshness_report(pending))

    def stats(self) -> dict:
        return {"evaluations": self.live.evaluations, "jobs": self.scheduler.last,
                "lagging": sorted(self.alarms.lagging)}


def _detail(ev: Evaluation | None) -> dict | None:
    if ev is None:
        return None
    return {"as_of": ev.as_of.isoformat(), "segments": len(ev.segments), "entered": ev.entered,
            "exited": ev.exited, "disagreements": ev.disagreements, "failed": ev.failed,
            "seconds": round(ev.seconds, 3)}


def _campaigns(ws) -> dict | None:
    """The due run of every scheduled or recurring campaign, planned and recorded once."""
    from segmentum.activation.campaigns import CampaignStore, run_id
    from segmentum.activation.delivery import DeliveryLog
    from segmentum.activation.message import Origin
    from segmentum.activation.runs import send_campaign
    from segmentum.errors import UsageError

    if not ws.warehouse.has_table("campaigns"):
        return None
    now = _dt.datetime.now(_dt.UTC).replace(microsecond=0)
    sent = {}
    for campaign, _ in CampaignStore(ws).all():
        if campaign.schedule.kind == "now":
            continue
        try:
            run_at = campaign.schedule.run_at(now)
        except UsageError:  # its first run is still ahead
            continue
        if DeliveryLog(ws).has_origin(Origin("campaign", campaign.name, run_id(run_at))):
            continue
        result = send_campaign(ws, campaign, now, run=run_at.isoformat())
        sent[campaign.name] = {"run": result.run, "audience": result.audience, "outcomes": result.outcomes}
    return sent or None


# -- routes ---------------------------------------------------------------------------------------
router = APIRouter(tags=["live"])


def _live(request: Request) -> LiveService:
    live = getattr(request.app.state.service, "live", None)
    if live is None:
        raise NotFoundError("Live segments are off in this service.",
                            hint="start it without SEGMENTUM_SERVE_LIVE=false")
    return live


@router.get("/metrics", response_class=Response)
def metrics(request: Request, _key=Depends(require_scope("read"))) -> Response:
    """The service's metrics in the Prometheus text format."""
    return Response(_live(request).metrics.render(), media_type=CONTENT_TYPE)


@router.get("/api/live/freshness")
def freshness(request: Request, _key=Depends(require_scope("read"))) -> list[dict]:
    """Per saved segment: watermark, lag now, last full refresh and whether it agreed."""
    return _live(request).freshness()


@router.get("/api/segments/{name}/freshness")
def segment_freshness(name: str, request: Request, _key=Depends(require_scope("read"))) -> dict:
    """One saved segment's freshness."""
    for row in _live(request).freshness():
        if row["segment"] == name:
            return row
    raise NotFoundError(f"No saved segment named {name!r}.")


@router.get("/api/live/runs")
def scheduler_runs(request: Request, job: str | None = None, limit: int = Query(100, ge=1, le=1000),
                   _key=Depends(require_scope("read"))) -> list[dict]:
    """The scheduler's recorded runs, newest first."""
    live = _live(request)
    return live.access.call(lambda ws: runs(ws, job, limit))


@router.get("/api/live/alarms")
def alarms(request: Request, _key=Depends(require_scope("read"))) -> list[dict]:
    """The latest alarms raised (at most 100), newest last."""
    return list(_live(request).alarms.raised)
