"""Who may use the web app, and the checks that keep other sites out of it.

* **On a loopback address** (``segmentum serve``'s default, 127.0.0.1 or ::1) the app is
  the local user's, as a notebook is: no login. The ``Host`` header must then name the
  loopback too, so a page elsewhere cannot reach it through DNS rebinding.
* **On any other address** every page asks for a REST key (``segmentum keys create NAME
  --scopes read|write|admin``) once; it is kept in an HttpOnly, SameSite=Strict cookie and
  checked against the key store on every request, so a revoked key is out at once. A
  ``read`` key sees everything and changes nothing.
* **Every change** (any method but GET / HEAD) must come from the app's own pages: the
  browser's ``Sec-Fetch-Site`` (or ``Origin``) header must say same origin, so another
  site cannot post a form into it (CSRF).
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from fastapi import Request

from segmentum.errors import AuthError, ForbiddenError

__all__ = ["WebUser", "web_user", "require", "COOKIE", "is_loopback", "LoginRequired"]

COOKIE = "segmentum_key"
_LOOPBACK = {"127.0.0.1", "::1", "localhost", "[::1]"}


@dataclass(frozen=True)
class WebUser:
    name: str
    scopes: tuple[str, ...]
    key: object | None = None  # the ApiKey entry, when logged in with one

    def allows(self, scope: str) -> bool:
        return self.key is None or self.key.allows(scope)


class LoginRequired(Exception):
    """No valid key cookie on a non-loopback server: the app answers with its login page."""


def is_loopback(host: str) -> bool:
    host = host.strip("[]")
    return host in _LOOPBACK or host.startswith("127.")


def _hostname(header: str) -> str:
    return (urlsplit(f"//{header}").hostname or "").lower()


def _same_origin(request: Request) -> bool:
    site = request.headers.get("sec-fetch-site")
    if site is not None:
        return site in ("same-origin", "none")
    origin = request.headers.get("origin")
    if origin is None:  # not a browser (curl, a test client): nothing to forge
        return True
    return urlsplit(origin).netloc.lower() == request.headers.get("host", "").lower()


def web_user(request: Request) -> WebUser:
    """The dependency of every page: the user, or an error / the login page (module doc)."""
    settings = request.app.state.service.settings
    local = is_loopback(settings.host)
    if local and not is_loopback(_hostname(request.headers.get("host", ""))):
        raise ForbiddenError(
            "This server listens on the loopback address only: open it by that address.",
            hint=f"Go to {settings.url}/ (another host name could be a DNS rebinding attack).",
        )
    if request.method not in ("GET", "HEAD") and not _same_origin(request):
        raise ForbiddenError("Changes are accepted from the app's own pages only.")
    if local:
        user = WebUser("local user", ("admin",))
    else:
        key = request.cookies.get(COOKIE)
        try:
            entry = request.app.state.service.keys.authenticate(key, "read")
        except (AuthError, ForbiddenError):  # none, unknown, revoked, or a track-only key
            raise LoginRequired() from None
        user = WebUser(entry.name, tuple(entry.scopes), entry)
    request.state.web_user = user
    return user


def require(request: Request, scope: str) -> None:
    """Refuse a change the logged-in key's scopes do not allow."""
    user: WebUser = request.state.web_user
    if not user.allows(scope):
        raise ForbiddenError(
            f"The key {user.name!r} may not do this: it needs the {scope!r} scope.",
            hint=f"Log in with a key made by `segmentum keys create NAME --scopes {scope}`.",
        )
