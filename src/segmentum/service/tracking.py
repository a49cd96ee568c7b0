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
"""

from __future__ import annotations

import asyncio
import datetime as _dt

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from segmentum.errors import OverloadedError, PayloadError, PayloadTooLargeError
from segmentum.live.spec import BATCH_ENDPOINTS, MESSAGE_TYPES, decode_body, messages_of, parse_json
from segmentum.service.deps import request_key
from segmentum.service.state import ServiceState

__all__ = ["routes", "Admission"]

_OK = b'{"success":true}'


class Admission:
    """Requests being handled now (one event loop: a plain counter is safe)."""

    def __init__(self) -> None:
        self.inflight = 0


async def _read(request: Request, limit: int) -> bytes:
    """The raw body, refusing it as soon as it is certainly over the limit."""
    raw_limit = limit + limit // 512 + 1024  # gzip can grow incompressible data a little
    length = request.headers.get("content-length")
    if length and length.isdigit() and int(length) > raw_limit:
        raise PayloadTooLargeError(
            f"The body is {int(length):,} bytes; this endpoint takes at most {limit:,}.",
            hint="Send at most 32 KB per event and 500 KB / 2,500 events per batch.",
            limit=limit,
        )
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > raw_limit:
            raise PayloadTooLargeError(
                f"The body is over {limit:,} bytes, the limit of this endpoint.", limit=limit
            )
        chunks.append(chunk)
    return b"".join(chunks)


async def _track(request: Request, endpoint: str) -> Response:
    state: ServiceState = request.app.state.service
    admission: Admission = request.app.state.admission
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
        return await _handle(request, endpoint, state, received_at)
    finally:
        admission.inflight -= 1


async def _handle(request: Request, endpoint: str, state: ServiceState, received_at) -> Response:
    limit = state.limits.body_bytes(endpoint)
    header_key = request_key(request.headers.get("authorization"))
    # a key in the header is checked before the body is read; else the body's writeKey
    source = state.keys.authenticate(header_key, "track").name if header_key else None
    body = decode_body(await _read(request, limit), request.headers.get("content-encoding"), limit)
    doc = parse_json(body)
    if source is None:
        body_key = doc.get("writeKey") if isinstance(doc, dict) else None
        source = state.keys.authenticate(body_key if isinstance(body_key, str) else None, "track").name
    parsed = messages_of(doc, endpoint, source=source, received_at=received_at, limits=state.limits)
    receipt = None
    if parsed.messages:
        receipt = await asyncio.wrap_future(state.intake.submit(source, parsed.messages))
    if parsed.problems:
        raise _rejected(parsed.problems, parsed.total, receipt)
    return Response(_OK, media_type="application/json")


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


def _route(endpoint: str):
    async def handler(request: Request) -> Response:
        return await _track(request, endpoint)

    handler.__name__ = f"track_{endpoint}"
    handler.__doc__ = (
        "A batch of events (Segment HTTP Tracking API)." if endpoint in BATCH_ENDPOINTS
        else f"One {endpoint} call (Segment HTTP Tracking API)."
    )
    return handler


# plain Starlette routes: no dependency solving or validation layer on the hot path
routes = [
    Route(f"/v1/{e}", _route(e), methods=["POST"], name=f"track_{e}")
    for e in (*MESSAGE_TYPES, *BATCH_ENDPOINTS)
]
