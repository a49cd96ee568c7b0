"""Library errors -> HTTP answers, at the edge of the service.

A :class:`~segmentum.errors.SegmentumError` answers with its class's ``http_status`` and
``to_dict()`` as the JSON body (``Retry-After`` when it has ``retry_after``); FastAPI's
own request errors (a path or query parameter of the wrong type) and unknown routes get
the same ``{"code", "message", ...}`` shape; anything else is a bug: it is logged with its
traceback and answered ``500 {"code": "internal"}``, never with the traceback.

Handlers are in the application's exception middleware; ``_Bugs`` sits just outside it.
"""

from __future__ import annotations

import logging
import math

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from segmentum.errors import SegmentumError

__all__ = ["install_error_handlers", "error_response"]

log = logging.getLogger("segmentum.service")


def error_response(exc: SegmentumError) -> JSONResponse:
    headers = {}
    retry_after = getattr(exc, "retry_after", None)
    if retry_after is not None:
        headers["Retry-After"] = str(max(1, math.ceil(retry_after)))
    return JSONResponse(exc.to_dict(), status_code=exc.http_status, headers=headers)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(SegmentumError)
    async def _segmentum(_request: Request, exc: SegmentumError) -> JSONResponse:
        return error_response(exc)

    @app.exception_handler(RequestValidationError)
    async def _validation(_request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = [
            {"field": ".".join(str(p) for p in e.get("loc", ())), "reason": e.get("msg", "")}
            for e in exc.errors()
        ]
        first = problems[0] if problems else {"field": "", "reason": "invalid request"}
        return JSONResponse(
            {"code": "invalid_request", "message": f"{first['field']}: {first['reason']}",
             "hint": None, "problems": problems},
            status_code=400,
        )

    @app.exception_handler(HTTPException)
    async def _http(_request: Request, exc: HTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return JSONResponse(
            {"code": code, "message": str(exc.detail), "hint": None},
            status_code=exc.status_code, headers=getattr(exc, "headers", None),
        )

    app.add_middleware(_Bugs)


class _Bugs:
    """Anything no handler took is a bug: logged with its traceback, answered 500 without it
    (Starlette's own last-resort handler would re-raise it and drop the connection)."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def watched(message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, watched)
        except Exception:
            log.exception("unhandled error on %s %s", scope.get("method"), scope.get("path"))
            if started:
                raise
            body = {"code": "internal", "message": "An internal error occurred; it was logged.", "hint": None}
            await JSONResponse(body, status_code=500)(scope, receive, send)
