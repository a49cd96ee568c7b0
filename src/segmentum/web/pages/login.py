"""``/login`` and ``/logout``: a REST key for the web app on a non-loopback server
(:mod:`segmentum.web.security`)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse

from segmentum.errors import AuthError, ForbiddenError
from segmentum.web.render import first, form_data, page
from segmentum.web.security import COOKIE, is_loopback

__all__ = ["router"]

router = APIRouter(include_in_schema=False)


def _safe_next(target: str) -> str:
    """Only a path of this app (never another site) to go to after logging in."""
    return target if target.startswith("/") and not target.startswith("//") else "/"


@router.get("/login")
async def login_form(request: Request, next: str = "/"):
    if is_loopback(request.app.state.service.settings.host):
        return RedirectResponse(_safe_next(next), status_code=303)
    return page(request, "login.html", next=_safe_next(next), problem=None)


@router.post("/login")
async def login(request: Request):
    form = await form_data(request)
    key, target = first(form, "key").strip(), _safe_next(first(form, "next", "/"))
    try:
        request.app.state.service.keys.authenticate(key, "read")
    except (AuthError, ForbiddenError) as exc:
        return page(request, "login.html", status=401, next=target, problem=str(exc))
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(COOKIE, key, httponly=True, samesite="strict",
                        secure=request.url.scheme == "https", max_age=12 * 3600)
    return response


@router.post("/logout")
async def logout(request: Request):
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(COOKIE)
    return response
