"""What every page shares: the Jinja2 environment, running library calls, forms, errors.

    router = web_router()

    @router.get("/rfm")
    async def rfm(request: Request):
        data = await run(request, analytics_calls.rfm, None, "contacts")
        return page(request, "rfm.html", data=data)

A route parses its arguments, runs library functions on the service's workspace thread
(:func:`run`, the same thread and functions the REST API uses) and renders a template:
:func:`page` for a whole page, :func:`partial` for an htmx fragment. A library error
(:class:`~segmentum.errors.SegmentumError`) in a page becomes a page that says what went
wrong and how to fix it, with the error's HTTP status; in an htmx fragment it becomes a
fragment with status 200, since a bad rule typed into an editor is an answer, not a
failure of the request (the browser logs failed requests as console errors).
"""

from __future__ import annotations

import datetime as _dt
import json
import math
from collections.abc import Callable, Mapping
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.routing import APIRoute
from jinja2 import ChainableUndefined, Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup

from segmentum.errors import SegmentumError, UsageError
from segmentum.service.api._base import plain
from segmentum.web import assets, builder
from segmentum.web.security import LoginRequired, web_user

__all__ = ["web_router", "run", "page", "partial", "form_data", "first", "save_from_form", "is_htmx",
           "env", "NAV"]

TEMPLATES = Path(__file__).resolve().parent / "templates"
MAX_FORM = 256 * 1024

# the navigation: (path, label); the first page whose path starts a request's path is current
NAV = (
    ("/", "Dashboard"),
    ("/rfm", "RFM"),
    ("/cohorts", "Cohorts"),
    ("/segments", "Segments"),
    ("/contacts", "Contacts"),
    ("/personas", "Personas"),
    ("/campaigns", "Campaigns"),
    ("/triggers", "Triggers"),
    ("/exports", "Exports"),
    ("/inbox", "Inbox"),
)


# -- formatting filters ------------------------------------------------------------------
def _number(value: Any, digits: int = 0) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return f"{value:,.{digits}f}"


def _pct(value: Any, digits: int = 1) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return f"{value * 100:.{digits}f}%"


def _when(value: Any, fmt: str = "%Y-%m-%d %H:%M") -> str:
    """An ISO 8601 time (as the API gives it) or a datetime, in UTC."""
    if value in (None, ""):
        return "–"
    if isinstance(value, str):
        try:
            value = _dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return value
    if isinstance(value, _dt.datetime) and value.tzinfo is not None:
        value = value.astimezone(_dt.UTC)
    return value.strftime(fmt)


def _tojson_attr(value: Any) -> str:
    """JSON for an HTML attribute or a ``<script type="application/json">`` block."""
    text = json.dumps(plain(value), separators=(",", ":"))
    return Markup(text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026"))


@cache
def env() -> Environment:
    e = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(["html"]),
        undefined=ChainableUndefined,  # an optional key the library left out renders empty
        trim_blocks=True,
        lstrip_blocks=True,
    )
    e.filters.update(number=_number, pct=_pct, when=_when, json_data=_tojson_attr,
                     urlq=lambda v: quote(str(v), safe=""), tuple_pair=lambda v: (v, v),
                     first_pair=lambda p: (p[0], p[0]))
    e.globals.update(nav=NAV, vendor_missing=assets.missing, build_hint=assets.BUILD_HINT,
                     B=builder, label_of=builder.node_label)
    return e


# -- rendering ---------------------------------------------------------------------------
def is_htmx(request: Request) -> bool:
    return request.headers.get("hx-request") == "true"


def _context(request: Request, values: Mapping[str, Any]) -> dict[str, Any]:
    path = request.url.path
    current = max((p for p, _ in NAV if path == p or (p != "/" and path.startswith(p + "/"))
                   or path == p), key=len, default="/")
    return {"request": request, "current": current, "user": getattr(request.state, "web_user", None),
            **values}


def page(request: Request, template: str, status: int = 200, **values: Any) -> HTMLResponse:
    """A whole page (``template`` extends ``base.html``)."""
    html = env().get_template(template).render(_context(request, values))
    return HTMLResponse(html, status_code=status)


def partial(request: Request, template: str, status: int = 200, headers: dict | None = None,
            **values: Any) -> HTMLResponse:
    """An htmx fragment."""
    html = env().get_template(template).render(_context(request, values))
    return HTMLResponse(html, status_code=status, headers=headers)


def error_page(request: Request, exc: SegmentumError) -> HTMLResponse:
    """A library error as a page (or, for htmx, a fragment with status 200)."""
    error = exc.to_dict()
    if is_htmx(request):
        return partial(request, "partials/error.html", error=error)
    return page(request, "error.html", status=exc.http_status, error=error)


# -- running library calls ---------------------------------------------------------------
async def run(request: Request, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """``fn(ws, *args, **kwargs)`` on the workspace thread, as plain JSON values."""
    result = await request.app.state.service.access.run(fn, *args, **kwargs)
    return plain(result)


async def form_data(request: Request) -> dict[str, list[str]]:
    """An urlencoded body (what htmx and plain forms send) as name -> values."""
    body = await request.body()
    if len(body) > MAX_FORM:
        raise UsageError(f"A form is at most {MAX_FORM:,} bytes.")
    out: dict[str, list[str]] = {}
    for key, value in parse_qsl(body.decode("utf-8", errors="replace"), keep_blank_values=True):
        out.setdefault(key, []).append(value)
    return out


async def save_from_form(request: Request, save: Callable[..., dict], document: Callable[[dict], dict],
                         base: str) -> Response:
    """A change made from a form: the document it describes saved by ``save(ws, doc, user)``
    (write scope), then the browser sent to ``{base}/{name}`` (htmx's HX-Redirect)."""
    from segmentum.web.security import require

    require(request, "write")
    doc = document(await form_data(request))
    saved = await run(request, save, doc, request.state.web_user.name)
    return Response(status_code=204, headers={"HX-Redirect": f"{base}/{quote(saved['name'], safe='')}"})


def first(form: Mapping[str, list[str]], key: str, default: str = "") -> str:
    values = form.get(key)
    return values[0] if values else default


class _WebRoute(APIRoute):
    """A route whose library errors become pages (see the module docstring)."""

    def get_route_handler(self) -> Callable:
        handler = super().get_route_handler()

        async def handle(request: Request) -> Response:
            try:
                return await handler(request)
            except LoginRequired:
                target = "/login?next=" + quote(request.url.path, safe="/")
                if is_htmx(request):
                    return Response(status_code=204, headers={"HX-Redirect": target})
                return RedirectResponse(target, status_code=303)
            except SegmentumError as exc:
                return error_page(request, exc)

        return handle


def web_router(**kwargs: Any) -> APIRouter:
    """A router for pages: out of the OpenAPI document, errors rendered as pages."""
    return APIRouter(route_class=_WebRoute, include_in_schema=False,
                     dependencies=[Depends(web_user)], **kwargs)
