"""Dispatcher: the thread of ``segmentum serve`` that delivers the CRM webhooks.

Every ``interval`` seconds (and at once when :meth:`Dispatcher.wake` is called) it queues
new segment changes and takes the due batches (:mod:`segmentum.crm.webhooks`) on the
workspace thread, POSTs them off it (so a slow CRM never holds the workspace), then records
each outcome on the workspace thread again. ``call`` runs a function on the workspace
(:meth:`segmentum.service.access.WorkspaceAccess.call`).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

import httpx

from segmentum.crm import webhooks as W

__all__ = ["Dispatcher", "post"]

log = logging.getLogger("segmentum.crm")


def post(client: httpx.Client, batch: W.Batch) -> str | None:
    """POST one batch, signed; None when acknowledged (2xx), else what went wrong."""
    from segmentum.activation.channels.webhook import SIGNATURE, TIMESTAMP, sign

    body = W.batch_body(batch)
    ts = str(int(time.time()))
    headers = {"Content-Type": "application/json", TIMESTAMP: ts,
               SIGNATURE: sign(batch.secret, ts, body), "Idempotency-Key": batch.batch_id,
               "User-Agent": "segmentum-crm-webhook/1"}
    try:
        reply = client.post(batch.url, content=body, headers=headers)
    except httpx.HTTPError as exc:
        return f"{type(exc).__name__}: {exc}"[:500]
    return None if reply.is_success else f"HTTP {reply.status_code}: {reply.text[:200]}"


class Dispatcher:
    """Delivers the webhooks of one workspace (see the module doc)."""

    def __init__(self, call: Callable, *, interval: float = 1.0, timeout: float = 10.0):
        self.call, self.interval = call, interval
        self.delivered = self.failed = 0
        self.last_error: str | None = None
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._client = httpx.Client(timeout=timeout)
        self._thread = threading.Thread(target=self._loop, name="crm-webhooks", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def wake(self) -> None:
        self._wake.set()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join()
        self._client.close()

    def run_once(self) -> int:
        """Queue, send what is due, record; how many batches were sent."""
        batches = self.call(_prepare)
        for batch in batches:
            error = post(self._client, batch)
            status = self.call(W.record, batch, error)
            if error is None:
                self.delivered += 1
            else:
                self.failed += status == "failed"
                log.warning("webhook %s batch %s: %s (%s)", batch.webhook_id, batch.batch_id, error, status)
        return len(batches)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                busy = self.run_once()
                self.last_error = None
            except Exception as exc:  # noqa: BLE001 - reported in stats, retried
                busy, self.last_error = 0, f"{type(exc).__name__}: {exc}"
                log.exception("delivering CRM webhooks failed")
            if not busy:
                self._wake.wait(self.interval)
                self._wake.clear()

    def stats(self) -> dict:
        return {"delivered_batches": self.delivered, "failed_batches": self.failed,
                "last_error": self.last_error}


def _prepare(ws) -> list[W.Batch]:
    W.enqueue(ws)
    return W.due(ws)
