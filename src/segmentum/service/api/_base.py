"""What every REST router shares: key scopes, running on the workspace, JSON, keyset pages.

    router = APIRouter(prefix="/api/segments", dependencies=[READ])

    @router.get("/{name}/members", response_model=Page[Member])
    async def members(request: Request, name: str, page: PageArgs = Depends()):
        return await on_workspace(request, lib.members_page, name, page)

A route is thin: it parses its arguments (FastAPI), runs one library function on the
workspace thread (:func:`on_workspace`) and returns its result as plain JSON values
(:func:`plain`). Library errors propagate to the handlers of :mod:`segmentum.service.errors`.
Keys: ``READ`` for GET routes, ``WRITE`` for changes, ``ADMIN`` for erasure and webhooks
(the scopes of :mod:`segmentum.service.keys`; ``Authorization: Bearer <key>`` or the key as
the HTTP Basic user), declared in the OpenAPI document as its security schemes.
"""

from __future__ import annotations

import datetime as _dt
import decimal
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ibis.expr.types as ir
from fastapi import Depends, Query, Request
from fastapi.security import HTTPBasic, HTTPBearer

from segmentum.crm.cursors import after, decode_cursor, encode_cursor
from segmentum.service.deps import request_key
from segmentum.service.keys import ApiKey
from segmentum.service.schemas.common import MAX_LIMIT

__all__ = ["READ", "WRITE", "ADMIN", "caller", "on_workspace", "plain", "PageArgs", "keyset_page",
           "list_page", "ERRORS"]

_bearer = HTTPBearer(auto_error=False, description="A REST key: `segmentum keys create NAME --scopes read`")
_basic = HTTPBasic(auto_error=False, description="The key as the user name, an empty password")


def _scope(scope: str) -> Callable[..., ApiKey]:
    def check(request: Request, _b=Depends(_bearer), _u=Depends(_basic)) -> ApiKey:
        key = request_key(request.headers.get("authorization"))
        return request.app.state.service.keys.authenticate(key, scope)

    check.__name__ = f"key_with_{scope}"
    return check


READ, WRITE, ADMIN = (Depends(_scope(s)) for s in ("read", "write", "admin"))


def caller(request: Request) -> str:
    """The name of the key that made this request (for audit records and sources)."""
    key = request_key(request.headers.get("authorization"))
    return request.app.state.service.keys.authenticate(key, "read").name


async def on_workspace(request: Request, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """``fn(ws, *args, **kwargs)`` on the service's workspace thread, as plain JSON values."""
    result = await request.app.state.service.access.run(fn, *args, **kwargs)
    return plain(result)


def plain(obj: Any) -> Any:
    """JSON values for library results: DataFrames as lists of records, times in ISO 8601,
    NaN as null, numpy / Decimal numbers as numbers, dataclasses with ``to_dict``."""
    if hasattr(obj, "to_dict") and not isinstance(obj, type) and not _is_frame(obj):
        obj = obj.to_dict()
    if isinstance(obj, dict):
        return {str(k): plain(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple | set | frozenset):
        return [plain(v) for v in obj]
    if _is_frame(obj):
        return [plain(r) for r in obj.to_dict(orient="records")]
    if hasattr(obj, "item") and type(obj).__module__ == "numpy":
        obj = obj.item()
    if type(obj).__name__ in ("NaTType", "NAType"):
        return None
    if isinstance(obj, float):
        return None if math.isnan(obj) or math.isinf(obj) else obj
    if isinstance(obj, decimal.Decimal):
        return float(obj)
    if isinstance(obj, _dt.datetime):
        return _iso(obj)
    if isinstance(obj, _dt.date):
        return obj.isoformat()
    if isinstance(obj, Path):
        return str(obj)
    return obj


def _is_frame(obj: Any) -> bool:
    return type(obj).__name__ == "DataFrame" and hasattr(obj, "to_dict")


def _iso(t: _dt.datetime) -> str:
    if t.tzinfo is not None:
        t = t.astimezone(_dt.UTC)
    return t.replace(tzinfo=None).isoformat() + "Z"


@dataclass
class PageArgs:
    """``?limit=`` (1..1000, default 50) and ``?cursor=`` of a paginated list."""

    limit: int = Query(50, ge=1, le=MAX_LIMIT, description="items per page")
    cursor: str | None = Query(None, max_length=2000, description="`next` of the previous page")


def keyset_page(t: ir.Table, keys: list[str], page: PageArgs, *, total: bool = True) -> dict:
    """One page of ``t`` in the order of ``keys`` (unique together), after ``page.cursor``:
    ``{items, limit, next, total}``. The rows after a cursor are found by comparing the sort
    key (no offset), so a page is as fast deep in the list as at its start."""
    rows = t
    if page.cursor:
        key = decode_cursor(page.cursor, len(keys))
        rows = t.filter(after(t, keys, key))
    got = rows.order_by(keys).limit(page.limit + 1).to_pyarrow().to_pylist()
    more = len(got) > page.limit
    got = got[: page.limit]
    nxt = encode_cursor([got[-1][k] for k in keys]) if more and got else None
    count = int(t.count().to_pyarrow().as_py()) if total else None
    return {"items": plain(got), "limit": page.limit, "next": nxt, "total": count}


def list_page(items: list[dict], key: str, page: PageArgs) -> dict:
    """A page of a small list held in memory, sorted by ``key`` (unique)."""
    items = sorted(items, key=lambda r: r[key])
    if page.cursor:
        last = str(decode_cursor(page.cursor, 1)[0])
        items_after = [r for r in items if str(r[key]) > last]
    else:
        items_after = items
    shown = items_after[: page.limit]
    more = len(items_after) > page.limit
    return {"items": plain(shown), "limit": page.limit,
            "next": encode_cursor([shown[-1][key]]) if more else None, "total": len(items)}


# the error answers a route may give, for the OpenAPI document
def _errors() -> dict:
    from segmentum.service.schemas.common import ErrorBody

    described = {400: "a bad request: what, where and how to fix it", 401: "no key or an unknown one",
                 403: "a key without the scope this needs", 404: "no such thing",
                 409: "the workspace is not in a state to do this", 422: "can't be computed on this data"}
    return {code: {"model": ErrorBody, "description": text} for code, text in described.items()}


ERRORS = _errors()
