"""FastAPI dependencies shared by every router: the service, the caller's key, the workspace.

    @router.get("/api/segments")
    async def list_segments(key: ApiKey = Depends(require_scope("read")),
                            access: WorkspaceAccess = Depends(workspace)):
        return await access.run(list_saved_segments)

A key comes as ``Authorization: Bearer <key>`` or as the HTTP Basic user (empty password);
the tracking routes also take ``writeKey`` in the body (they read it themselves).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable

from fastapi import Request

from segmentum.service.access import WorkspaceAccess
from segmentum.service.keys import ApiKey
from segmentum.service.state import ServiceState

__all__ = ["service", "workspace", "request_key", "require_scope"]


def service(request: Request) -> ServiceState:
    return request.app.state.service


def workspace(request: Request) -> WorkspaceAccess:
    return request.app.state.service.access


def request_key(authorization: str | None) -> str | None:
    """The key in an Authorization header: Bearer, or the Basic user name."""
    if not authorization:
        return None
    scheme, _, value = authorization.strip().partition(" ")
    scheme = scheme.lower()
    if scheme == "bearer":
        return value.strip() or None
    if scheme == "basic":
        try:
            decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return None
        return decoded.partition(":")[0] or None
    return None


def require_scope(scope: str) -> Callable[[Request], ApiKey]:
    """A dependency giving the caller's key entry if it allows ``scope`` (else 401 / 403)."""

    def check(request: Request) -> ApiKey:
        key = request_key(request.headers.get("authorization"))
        return request.app.state.service.keys.authenticate(key, scope)

    check.__name__ = f"require_{scope}"
    return check
