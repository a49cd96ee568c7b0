"""Consent, enforced by the send layer itself: opt-ins, unsubscribes and suppressions.

A message to a contact on a channel is allowed when, at the time of the check:

* no **suppression** (a hard bounce, a complaint) is in force for the contact on the
  channel: reason ``suppressed``; this holds for transactional messages too;
* no **unsubscribe** is in force: one of scope ``all`` stops every message on the
  channel, one of scope ``marketing`` (what a List-Unsubscribe click records) stops all but
  transactional ones: reason ``unsubscribed``;
* for marketing messages, the contact's consent column of the channel
  (``email_opt_in``, ``sms_opt_in``, ``push_opt_in``, ...) is true; null counts as no,
  and so does a contact the workspace does not know: reason ``no_consent``.

An unsubscribe or suppression names the channel by its configured name, by its kind
(``email`` covers every e-mail channel) or ``all``. The latest event of each kind per
contact, channel and scope decides (a resubscribe lifts an unsubscribe). Events are
recorded with their source and time in the table ``consent_events`` (contact_id, channel,
scope, action, source, at, recorded_at), created on the first one. The planner filters
whole audiences with :meth:`ConsentPolicy.filter`; the Sender checks again right before
sending, and :func:`changes` tells it when an unsubscribe landed in the meantime.

Unsubscribe links carry a signed token per contact and channel
(:func:`unsubscribe_token`, :func:`read_unsubscribe_token`).
"""

from __future__ import annotations

import base64
import datetime as _dt
import functools
import hashlib
import hmac
import json
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Literal

import ibis
import ibis.expr.types as ir
import pyarrow as pa

from segmentum.clock import to_utc
from segmentum.data.schema import STR, TS
from segmentum.errors import ConfigError, ConsentError, NotFoundError, UsageError

__all__ = [
    "CONSENT_EVENTS",
    "CONSENT_SCHEMA",
    "ConsentPolicy",
    "unsubscribe",
    "resubscribe",
    "suppress",
    "unsuppress",
    "changes",
    "workspace_key",
    "unsubscribe_token",
    "read_unsubscribe_token",
]

CONSENT_EVENTS = "consent_events"
CONSENT_SCHEMA = {
    "contact_id": STR,
    "channel": STR,
    "scope": STR,
    "action": STR,
    "source": STR,
    "at": TS,
    "recorded_at": TS,
}
Scope = Literal["marketing", "all"]
_BLOCKING = ("unsubscribe", "suppress")
_FAMILY = {"unsubscribe": "unsubscribe", "resubscribe": "unsubscribe",
           "suppress": "suppress", "unsuppress": "suppress"}

_lock = threading.Lock()
_changes: dict[str, int] = {}


def workspace_key(ws) -> str:
    """A workspace's identity within this process: its DuckDB file's resolved path."""
    if ws.config.backend != "duckdb":
        return repr(ws)
    return _resolved(ws.config.path)


@functools.lru_cache(maxsize=64)
def _resolved(path: str) -> str:
    return str(Path(path).resolve())


def changes(ws) -> int:
    """How many consent events this process has recorded in the workspace: the Sender
    checks it before each message and re-reads consent when it moved."""
    with _lock:
        return _changes.get(workspace_key(ws), 0)


class ConsentPolicy:
    """Who may get a message on a channel (see the module doc)."""

    def __init__(self, ws) -> None:
        self.ws = ws
        self.wh = ws.warehouse

    def filter(self, contacts: ir.Table | Iterable[str], channel: Any, transactional: bool = False,
               at: Any = None) -> ir.Table:
        """contact_id, allowed, reason (null when allowed) for each contact of ``contacts``
        (a table with contact_id, or ids) on ``channel`` (a Channel or a configured name)."""
        channel = self._channel(channel)
        T = to_utc(at) if at is not None else _dt.datetime.now(_dt.UTC)  # to the microsecond
        ids = _ids_table(contacts)
        c = self.wh.table("contacts")
        if not transactional and channel.consent_field not in c.columns:
            raise ConfigError(
                f"Channel {channel.name!r} reads consent from contacts.{channel.consent_field}, "
                "which the contacts table does not have.",
                hint="set consent_field in the channel's settings to a contacts column",
                key=f"channels.{channel.name}.consent_field",
            )
        consent = ibis.literal(True) if transactional else c[channel.consent_field].cast("boolean")
        known = c.select(c.contact_id, _consent=consent.fill_null(False))
        t = ids.left_join(known, "contact_id").select(ids.contact_id, "_consent")
        flags = self._flags(channel, T)
        if flags is not None:
            t = t.left_join(flags, "contact_id").select(t, "_suppressed", "_unsub_all", "_unsub_mkt")
        else:
            t = t.mutate(_suppressed=ibis.literal(False), _unsub_all=ibis.literal(False),
                         _unsub_mkt=ibis.literal(False))
        unsub = t._unsub_all.fill_null(False)
        if not transactional:
            unsub = unsub | t._unsub_mkt.fill_null(False)
        reason = ibis.cases(
            (t._suppressed.fill_null(False), "suppressed"),
            (unsub, "unsubscribed"),
            (~t._consent.fill_null(False), "no_consent"),
            else_=ibis.null("string"),
        )
        return t.select("contact_id", allowed=reason.isnull(), reason=reason)

    def check(self, contact_ids: Iterable[str], channel: Any, transactional: bool = False,
              at: Any = None) -> dict[str, str | None]:
        """contact id -> None (allowed) or the reason it is not."""
        rows = self.filter(list(contact_ids), channel, transactional, at).to_pyarrow()
        return dict(zip(rows.column("contact_id").to_pylist(), rows.column("reason").to_pylist(),
                        strict=True))

    def _channel(self, channel: Any):
        if not isinstance(channel, str):
            return channel
        from segmentum.activation.channels import load_channels

        channels = load_channels(self.ws)
        if channel not in channels:
            raise UsageError(f"No channel {channel!r} is configured.",
                             hint="configure it in segmentum.yaml (channels:)")
        return channels[channel]

    def _flags(self, channel, T: _dt.datetime) -> ir.Table | None:
        """Per contact with events: suppressed, unsubscribed from all / from marketing."""
        if not self.wh.has_table(CONSENT_EVENTS):
            return None
        e = self.wh.table(CONSENT_EVENTS)
        e = e.filter(e.channel.isin([channel.name, channel.kind, "all"]) & (e.at <= T))
        family = e.action.cases(*_FAMILY.items(), else_="unsubscribe")
        e = e.mutate(_family=family)
        w = ibis.window(group_by=[e.contact_id, e.channel, e.scope, e._family],
                        order_by=[ibis.desc(e.at), ibis.desc(e.recorded_at)])
        latest = e.mutate(_n=ibis.row_number().over(w)).filter(lambda t: t._n == 0)
        latest = latest.filter(latest.action.isin(_BLOCKING))
        return latest.group_by("contact_id").agg(
            _suppressed=(latest.action == "suppress").any(),
            _unsub_all=((latest.action == "unsubscribe") & (latest.scope == "all")).any(),
            _unsub_mkt=((latest.action == "unsubscribe") & (latest.scope == "marketing")).any(),
        )


def _ids_table(contacts: ir.Table | Iterable[str]) -> ir.Table:
    if isinstance(contacts, ir.Table):
        return contacts.select("contact_id")
    ids = list(dict.fromkeys(str(c) for c in contacts))
    return ibis.memtable(pa.table({"contact_id": pa.array(ids, pa.string())}))


# -- recording ---------------------------------------------------------------------------
def _record(ws, contact_id: str, channel: str, action: str, source: str, at: Any,
            scopes: tuple[str, ...]) -> None:
    if not str(channel).strip():
        raise UsageError("Name the channel (a configured name, a kind such as email, or all).")
    if not str(source).strip():
        raise UsageError("Say where the request came from (source), e.g. list-unsubscribe, support.")
    wh = ws.warehouse
    c = wh.table("contacts")
    found = c.filter(c.contact_id == str(contact_id)).count().to_pyarrow().as_py()
    if not found:
        raise NotFoundError(f"No contact {contact_id!r} in this workspace.")
    now = _dt.datetime.now(_dt.UTC)
    when = to_utc(at) if at is not None else now
    rows = [{"contact_id": str(contact_id), "channel": str(channel), "scope": s, "action": action,
             "source": str(source), "at": when, "recorded_at": now} for s in scopes]
    wh.create_table(CONSENT_EVENTS, CONSENT_SCHEMA)
    wh.insert(CONSENT_EVENTS, pa.Table.from_pylist(rows, schema=ibis.schema(CONSENT_SCHEMA).to_pyarrow()))
    with _lock:
        key = workspace_key(ws)
        _changes[key] = _changes.get(key, 0) + 1


def _scope(scope: str) -> str:
    if scope not in ("marketing", "all"):
        raise UsageError(f'An unsubscribe\'s scope is "marketing" or "all", not {scope!r}.')
    return scope


def unsubscribe(ws, contact_id: str, channel: str, source: str, at: Any = None,
                scope: Scope = "marketing") -> None:
    """Stop marketing messages (scope ``marketing``) or every message (``all``) to the
    contact on ``channel`` (a name, a kind, or ``all``), from ``at`` (default now)."""
    _record(ws, contact_id, channel, "unsubscribe", source, at, (_scope(scope),))


def resubscribe(ws, contact_id: str, channel: str, source: str, at: Any = None,
                scope: Scope = "all") -> None:
    """Lift the contact's unsubscribes on ``channel``: of scope ``marketing``, or (``all``,
    the default) both scopes. Marketing still needs the channel's opt-in."""
    scopes = ("marketing", "all") if _scope(scope) == "all" else ("marketing",)
    _record(ws, contact_id, channel, "resubscribe", source, at, scopes)


def suppress(ws, contact_id: str, channel: str, source: str, at: Any = None) -> None:
    """Stop every message to the contact on ``channel`` (a hard bounce, a complaint)."""
    _record(ws, contact_id, channel, "suppress", source, at, ("all",))


def unsuppress(ws, contact_id: str, channel: str, source: str, at: Any = None) -> None:
    """Lift a suppression (the address works again)."""
    _record(ws, contact_id, channel, "unsuppress", source, at, ("all",))


# -- unsubscribe tokens ------------------------------------------------------------------
def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(secret: str, payload: str) -> str:
    return _b64(hmac.new(secret.encode(), payload.encode("ascii"), hashlib.sha256).digest()[:16])


def unsubscribe_token(secret: str, contact_id: str, channel: str) -> str:
    """A URL-safe token naming the contact and channel, signed with HMAC-SHA256."""
    payload = _b64(json.dumps([str(contact_id), channel], separators=(",", ":")).encode())
    return f"{payload}.{_mac(secret, payload)}"


def read_unsubscribe_token(secret: str, token: str) -> tuple[str, str]:
    """(contact_id, channel) from a token made with the same secret; ConsentError otherwise."""
    payload, _, mac = str(token).partition(".")
    if not payload or not mac or not hmac.compare_digest(mac, _mac(secret, payload)):
        raise ConsentError("This unsubscribe link is not valid (its signature does not match).",
                           hint="use the link from the message as it came")
    try:
        contact_id, channel = json.loads(_unb64(payload))
    except (ValueError, TypeError):
        raise ConsentError("This unsubscribe link is not valid.") from None
    return str(contact_id), str(channel)
