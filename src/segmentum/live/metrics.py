"""LiveMetrics: what the live engine and the intake did, in the Prometheus text format.

One ``CollectorRegistry`` per service (never the process-global one, so two services in one
process, as in tests, keep their own counts):

    segmentum_events_stored_total            records the intake log holds durably (since it began)
    segmentum_events_applied_total           records applied to the workspace (this run)
    segmentum_queue_depth                    records stored but not yet applied
    segmentum_live_evaluation_lag_seconds    histogram, one per stored record: from its arrival
                                             to its evaluation recorded (and triggers fired)
    segmentum_live_timer_delay_seconds       histogram: from a timer's exact due time to its
                                             evaluation recorded
    segmentum_live_evaluations_total         {kind="change|timers|refresh"}
    segmentum_live_membership_changes_total  {change="entered|exited"}
    segmentum_trigger_occurrences_total      trigger occurrences fired by live evaluations
    segmentum_live_errors_total              {kind="evaluation|consumer|job"}
    segmentum_segment_lag_seconds            {segment}: the lag now (see :mod:`.freshness`)
    segmentum_alarms_total                   {kind="lag|evaluation_failed|disagreement|job_failed"}
    segmentum_live_timers                    timers waiting
"""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

__all__ = ["LiveMetrics", "CONTENT_TYPE"]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
LAG_BUCKETS = (0.025, 0.05, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.6, 0.8, 1.0, 1.25, 1.5, 2.0, 3.0, 5.0,
               10.0, 30.0, 60.0, 300.0)


class _State(Collector):
    """Gauges read at scrape time from the running service (``read`` returns a dict)."""

    def __init__(self, read: Callable[[], dict]) -> None:
        self.read = read

    def collect(self):
        state = self.read()
        stored = GaugeMetricFamily("segmentum_events_stored_total",
                                   "Records the intake log holds durably (since it began).")
        stored.add_metric([], state.get("stored", 0))
        yield stored
        depth = GaugeMetricFamily("segmentum_queue_depth", "Records stored but not yet applied.")
        depth.add_metric([], state.get("backlog", 0))
        yield depth
        timers = GaugeMetricFamily("segmentum_live_timers", "Timers waiting.")
        timers.add_metric([], state.get("timers", 0))
        yield timers
        lag = GaugeMetricFamily("segmentum_segment_lag_seconds", "Lag of each saved segment now.",
                                labels=["segment"])
        for segment, seconds in sorted(state.get("lags", {}).items()):
            lag.add_metric([segment], seconds)
        yield lag


class LiveMetrics:
    """The service's metrics; ``read_state`` gives the scrape-time gauges."""

    def __init__(self, read_state: Callable[[], dict] = dict) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.applied = Counter("segmentum_events_applied", "Records applied to the workspace.", registry=r)
        self.lag = Histogram("segmentum_live_evaluation_lag_seconds",
                             "From a stored record's arrival to its evaluation recorded.",
                             buckets=LAG_BUCKETS, registry=r)
        self.timer_delay = Histogram("segmentum_live_timer_delay_seconds",
                                     "From a timer's exact due time to its evaluation recorded.",
                                     buckets=LAG_BUCKETS, registry=r)
        self.evaluations = Counter("segmentum_live_evaluations", "Live evaluations.", ["kind"], registry=r)
        self.changes = Counter("segmentum_live_membership_changes", "Entries and exits recorded live.",
                               ["change"], registry=r)
        self.triggers = Counter("segmentum_trigger_occurrences", "Trigger occurrences fired live.", registry=r)
        self.errors = Counter("segmentum_live_errors", "Failures.", ["kind"], registry=r)
        self.alarms = Counter("segmentum_alarms", "Alarms raised.", ["kind"], registry=r)
        self.state = _State(read_state)
        r.register(self.state)

    def observe(self, ev, lags: list[float]) -> None:
        """Count one evaluation (a :class:`~segmentum.live.engine.Evaluation`) and the lag of
        each record it covered."""
        self.evaluations.labels(ev.kind).inc()
        self.changes.labels("entered").inc(ev.entered)
        self.changes.labels("exited").inc(ev.exited)
        self.triggers.inc(ev.triggers)
        if ev.failed:
            self.errors.labels("evaluation").inc(len(ev.failed))
        for lag in lags:
            self.lag.observe(max(lag, 0.0))

    def render(self) -> bytes:
        return generate_latest(self.registry)
