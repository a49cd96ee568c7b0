"""The tracking routes: Segment's HTTP Tracking API, so existing SDKs work unchanged.

``POST /v1/identify|track|page|screen|group|alias`` take one event, ``/v1/batch`` and
``/v1/import`` a batch. The write key is the HTTP Basic user (empty password), a Bearer
token, or ``writeKey`` in the body. A request is answered:

* ``200 {"success": true}`` once every event of it is in the intake log, fsync'd
  (duplicates of stored messageIds count as stored);
* ``400`` for a body that is not JSON or not a batch, or when events are invalid: the valid
  ones are stored and the answer lists exactly the rejected ones (``rejected``: index,
  messageId, field, reason) with ``accepted`` and ``duplicates`` counts;
* ``401`` / ``403`` for a missing, unknown, revoked or track-less key, ``413`` for a body,
  batch or event over its limit;
* ``429`` with ``Retry-After`` when more requests are in flight than ``max_inflight`` or
  the workspace is more than ``max_backlog`` events behind; ``503`` with ``Retry-After``
  when the log could not write (nothing of the request is acknowledged).

The route parses and validates (:mod:`segmentum.live.spec`) and hands the messages to
:class:`~segmentum.live.intake.Intake`; it never touches the workspace.

Each endpoint is a plain ASGI application (no request or response objects, no
dependency solving). It is a route of the application, and ``segmentum serve`` also puts
:class:`TrackingFront` ahead of the whole application, so a tracking request skips
FastAPI's routing and middleware: at 1,000 single events/s these cost more CPU than the
request's own work. Both paths answer alike: library errors through
:func:`~segmentum.service.errors.error_response`, anything else as the application's
``500``.
"""

from __future__ import annotations

import asyncio
import datetime as _dt

from starlette.routing import Route

from segmentum.errors import OverloadedError, PayloadError, PayloadTooLargeError, SegmentumError
from segmentum.live.spec import BATCH_ENDPOINTS, MESSAGE_TYPES, decode_body, messages_of, parse_json
from segmentum.service.deps import request_key
from segmentum.service.errors import _Bugs, error_response
from segmentum.service.state import ServiceState

__all__ = ["routes", "Admission", "TrackingFront"]

_OK_START = {"type": "http.response.start", "status": 200,
             "headers": [(b"content-type", b"application/json"), (b"content-length", b"16")]}
_OK_BODY = {"type": "http.response.body", "body": b'{"success":true}'}


class Admission:
    """Requests being handled now (one event loop: a plain counter is safe)."""

    def __init__(self) -> None:
        self.inflight = 0


class _Gone(Exception):
    """The client disconnected before its body arrived: there is no one to answer."""


class _Head:
    """The three request headers the tracking API reads, from one pass over the ASGI list."""

    __slots__ = ("authorization", "length", "encoding")

    def __init__(self, headers: list[tuple[bytes, bytes]]):
        self.authorization = self.length = self.encoding = None
        for name, value in headers:
            if name == b"authorization":
                self.authorization = value.decode("latin-1")
            elif name == b"content-length":
                self.length = value.decode("latin-1")
            elif name == b"content-encoding":
                self.encoding = value.decode("latin-1")


async def _read(receive, head: _Head, limit: int) -> bytes:
    """The raw body, refusing it as soon as it is certainly over the limit."""
    raw_limit = limit + limit // 512 + 1024  # gzip can grow incompressible data a little
    if head.length and head.length.isdigit() and int(head.length) > raw_limit:
        raise PayloadTooLargeError(
            f"The body is {int(head.length):,} bytes; this endpoint takes at most {limit:,}.",
            hint="Send at most 32 KB per event and 500 KB / 2,500 events per batch.",
            limit=limit,
        )
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            raise _Gone
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > raw_limit:
            raise PayloadTooLargeError(
                f"The body is over {limit:,} bytes, the limit of this endpoint.", limit=limit
            )
        chunks.append(chunk)
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)


class _Endpoint:
    """``POST /v1/<endpoint>`` as an ASGI application (``scope["app"]`` is the service's)."""

    def __init__(self, endpoint: str):
        self.endpoint = endpoint

    async def __call__(self, scope, receive, send) -> None:
        try:
            await self._track(scope, receive)
        except SegmentumError as exc:
            await error_response(exc)(scope, receive, send)
        except _Gone:
            return
        else:
            await send(_OK_START)
            await send(_OK_BODY)

    async def _track(self, scope, receive) -> None:
        app_state = scope["app"].state
        state: ServiceState = app_state.service
        admission: Admission = app_state.admission
        received_at = _dt.datetime.now(_dt.UTC)
        if admission.inflight >= state.settings.max_inflight:
            raise OverloadedError(f"More than {state.settings.max_inflight} requests at once.", retry_after=1)
        backlog = state.log.backlog()
        if backlog > state.settings.max_backlog:
            raise OverloadedError(
                f"The workspace is {backlog:,} events behind the intake log.", retry_after=5
            )
        admission.inflight += 1
        try:
            await self._store(state, _Head(scope["headers"]), receive, received_at)
        finally:
            admission.inflight -= 1

    async def _store(self, state: ServiceState, head: _Head, receive, received_at) -> None:
        endpoint, limit = self.endpoint, state.limits.body_bytes(self.endpoint)
        header_key = request_key(head.authorization)
        # a key in the header is checked before the body is read; else the body's writeKey
        source = state.keys.authenticate(header_key, "track").name if header_key else None
        doc = parse_json(decode_body(await _read(receive, head, limit), head.encoding, limit))
        if source is None:
            body_key = doc.get("writeKey") if isinstance(doc, dict) else None
            source = state.keys.authenticate(body_key if isinstance(body_key, str) else None, "track").name
        parsed = messages_of(doc, endpoint, source=source, received_at=received_at, limits=state.limits)
        receipt = None
        if parsed.messages:
            receipt = await asyncio.wrap_future(state.intake.submit(source, parsed.messages))
        if parsed.problems:
            raise _rejected(parsed.problems, parsed.total, receipt)


class TrackingFront:
    """``app`` behind the tracking endpoints: ``POST /v1/<endpoint>`` is answered here,
    everything else (and the lifespan) goes to ``app``."""

    def __init__(self, app):
        self.app = app
        self._endpoints = {f"/v1/{e}": _Bugs(_Endpoint(e)) for e in (*MESSAGE_TYPES, *BATCH_ENDPOINTS)}

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            endpoint = self._endpoints.get(scope["path"])
            if endpoint is not None:
                scope["app"] = self.app
                await endpoint(scope, receive, send)
                return
        await self.app(scope, receive, send)


def _rejected(problems: list[dict], total: int, receipt) -> PayloadError:
    first = problems[0]
    where = f"event {first['index']}" + (f" (messageId {first['messageId']})" if first["messageId"] else "")
    stored = total - len(problems)
    message = (
        f"{len(problems)} of {total} events were rejected"
        + (f" ({stored} other{' is' if stored == 1 else 's are'} stored)" if stored else " (none is stored)")
        + f"; {where}: {first['reason']}."
    )
    cls = PayloadTooLargeError if total == 1 and first["code"] == "payload_too_large" else PayloadError
    return cls(
        message,
        hint="Fix the events listed in `rejected` and send only those again.",
        accepted=stored,
        duplicates=receipt.duplicates if receipt else 0,
        rejected=problems,
    )


# plain ASGI routes: no dependency solving or validation layer on the hot path
routes = [
    Route(f"/v1/{e}", _Endpoint(e), methods=["POST"], name=f"track_{e}")
    for e in (*MESSAGE_TYPES, *BATCH_ENDPOINTS)
]
