"""Opaque cursors over a sort key, and the keyset comparison that reads after one.

A cursor is base64url of a row's sort key as JSON; :func:`after` is the Ibis condition
"sorts after this key" (lexicographic over the key's columns), so a page or a feed read
after a cursor needs no offset and is not shifted by rows added before it.
"""

from __future__ import annotations

import base64
import binascii
import datetime as _dt
import json
from typing import Any

import ibis
import ibis.expr.types as ir

from segmentum.errors import UsageError

__all__ = ["encode_cursor", "decode_cursor", "after", "key_value"]


def encode_cursor(key: list[Any]) -> str:
    """An opaque cursor for a row's sort key (JSON values)."""
    raw = json.dumps([key_value(v) for v in key], separators=(",", ":"), ensure_ascii=False).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, size: int, field: str = "cursor") -> list[Any]:
    """The sort key a cursor holds (``size`` values), or a UsageError for any other text."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        key = json.loads(raw)
    except (binascii.Error, ValueError, UnicodeDecodeError):
        key = None
    if not isinstance(key, list) or len(key) != size or not all(
        isinstance(v, str | int | float) and not isinstance(v, bool) for v in key
    ):
        raise UsageError(
            f"The {field} {cursor[:40]!r} is not a cursor this list gave out.",
            hint=f"Pass the `next` value of the previous answer unchanged as {field}, or leave "
            "it out to start from the beginning.",
            field=field,
        )
    return key


def key_value(v: Any) -> Any:
    """A sort-key value as JSON: times as ISO 8601 in UTC with Z."""
    if isinstance(v, _dt.datetime):
        v = v.astimezone(_dt.UTC) if v.tzinfo else v.replace(tzinfo=_dt.UTC)
        return v.replace(tzinfo=None).isoformat() + "Z"
    return v


def after(t: ir.Table, keys: list[str], values: list[Any], field: str = "cursor") -> ir.BooleanValue:
    """Rows whose (k1, k2, ...) sorts after ``values``."""
    cond, equal = None, None
    for k, v in zip(keys, values, strict=True):
        col = t[k]
        lit = ibis.literal(_typed(col, v, field), type=col.type())
        here = col > lit if equal is None else equal & (col > lit)
        cond = here if cond is None else cond | here
        equal = (col == lit) if equal is None else equal & (col == lit)
    return cond


def _typed(col: ir.Column, v: Any, field: str) -> Any:
    dtype = col.type()
    try:
        if dtype.is_timestamp():
            t = _dt.datetime.fromisoformat(str(v).replace("Z", "+00:00"))
            return t if t.tzinfo else t.replace(tzinfo=_dt.UTC)
        if dtype.is_integer():
            return int(v)
        if dtype.is_floating():
            return float(v)
        return str(v)
    except (TypeError, ValueError, OverflowError):
        raise UsageError(f"The {field} is not a cursor this list gave out.", field=field) from None
