"""Alarms: never stale in silence. Each is logged, counted and posted to a webhook.

Kinds: ``lag`` (a segment's lag is above the bound), ``evaluation_failed``, ``disagreement``
(the safety-net refresh moved contacts the live path had wrong), ``job_failed`` (a scheduled
run failed), and ``resolved`` when a lag alarm ends. A lag alarm is raised once when the
bound is crossed and resolved once when the lag is back under it; the others each time.

The webhook gets ``POST`` JSON ``{"alarm", "segment", "at", "details"}`` with the header
``X-Segmentum-Signature: sha256=<hex HMAC of the body>`` when a secret is set; it is posted
from a background thread (a slow receiver never holds up an evaluation), with a 5 s timeout
and three tries; a receiver that stays down is logged, never raised.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import hmac
import logging
import queue
import threading
import time

import orjson

__all__ = ["Alarms"]

log = logging.getLogger("segmentum.live.alarms")


class Alarms:
    """Raises alarms to the log, ``metrics`` (a LiveMetrics or None) and a webhook URL."""

    def __init__(self, *, metrics=None, webhook: str | None = None, secret: str | None = None,
                 lag_seconds: float = 60.0) -> None:
        self.metrics, self.webhook, self.secret, self.lag_seconds = metrics, webhook, secret, lag_seconds
        self.lagging: set[str] = set()
        self.raised: list[dict] = []  # the latest alarms, newest last (at most 100)
        self._queue: queue.Queue = queue.Queue()
        self._thread: threading.Thread | None = None

    def __call__(self, kind: str, segment: str | None, details: dict) -> None:
        alarm = {"alarm": kind, "segment": segment,
                 "at": _dt.datetime.now(_dt.UTC).isoformat(), "details": details}
        (log.info if kind == "resolved" else log.error)("alarm %s for %s: %s", kind, segment, details)
        if self.metrics is not None:
            self.metrics.alarms.labels(kind).inc()
        self.raised = [*self.raised[-99:], alarm]
        if self.webhook:
            self._post(alarm)

    def check_lags(self, report: list[dict]) -> None:
        """Raise ``lag`` for segments over the bound, ``resolved`` for those back under it."""
        for row in report:
            name, lag = row["segment"], row["lag_seconds"]
            if lag > self.lag_seconds and name not in self.lagging:
                self.lagging.add(name)
                self("lag", name, {"lag_seconds": round(lag, 3), "bound_seconds": self.lag_seconds})
            elif lag <= self.lag_seconds and name in self.lagging:
                self.lagging.discard(name)
                self("resolved", name, {"lag_seconds": round(lag, 3), "bound_seconds": self.lag_seconds})

    # -- the webhook ---------------------------------------------------------------------------
    def _post(self, alarm: dict) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._sender, name="alarm-webhook", daemon=True)
            self._thread.start()
        self._queue.put(alarm)

    def _sender(self) -> None:
        import httpx

        with httpx.Client(timeout=5.0) as client:
            while True:
                alarm = self._queue.get()
                if alarm is None:
                    return
                self._send(client, alarm)

    def _send(self, client, alarm: dict) -> None:
        body = orjson.dumps(alarm)
        headers = {"Content-Type": "application/json"}
        if self.secret:
            digest = hmac.new(self.secret.encode(), body, hashlib.sha256).hexdigest()
            headers["X-Segmentum-Signature"] = f"sha256={digest}"
        for attempt in range(3):
            try:
                r = client.post(self.webhook, content=body, headers=headers)
                if r.status_code < 500:
                    return
            except Exception as exc:  # noqa: BLE001 - a receiver that is down is logged, never raised
                log.warning("alarm webhook %s failed: %s", self.webhook, exc)
            time.sleep(0.5 * 2**attempt)
        log.error("alarm webhook %s did not take the %s alarm", self.webhook, alarm["alarm"])

    def close(self, timeout: float = 5.0) -> None:
        """Send what waits (up to ``timeout``), then stop the sender."""
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join(timeout)
