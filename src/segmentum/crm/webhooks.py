"""Webhooks a CRM registers for segment entries and exits, delivered until acknowledged.

A subscription (table ``crm_webhooks``: webhook_id, url, secret, segments, events,
description, created_by, created_at) names the segments it follows (all saved segments
when none are named, new ones included) and the changes it wants (``entered``,
``exited``). It follows each segment's change feed (:func:`segmentum.crm.feeds.
membership_changes`) from where the feed stood when it was created, keeping its position
per segment (``crm_webhook_positions``).

**Queue.** :func:`enqueue` moves what each subscription has not seen yet into the queue
``crm_webhook_deliveries`` (one row per change and subscription: batch_id, seq, event_id,
segment, change, contact_id, at, status, attempts, next_attempt_at, last_error,
delivered_at) and advances its positions, in one transaction: a change is queued exactly
once per subscription. Changes are grouped into batches of at most 100, fixed when queued.

**Delivery.** :func:`due` gives each subscription's oldest pending batch whose time has
come; batches of one subscription go strictly in order (a batch waits for the one before
it), so a CRM never sees an exit before the entry it closes. A batch is one POST of
``{"webhook", "batch", "events": [{"id", "type": "segment.entered" | "segment.exited",
"segment", "contact_id", "email", "at"}]}``, signed like the activation webhook channel
(``X-Segmentum-Timestamp``, ``X-Segmentum-Signature: v1=HMAC-SHA256(secret, "{ts}." +
body)``, check it with :func:`segmentum.activation.channels.webhook.verify`) and carrying
``Idempotency-Key: <batch id>``. A 2xx answer delivers it (:func:`record`); anything else is
retried after 5 s, 10 s, 20 s, ... (at most an hour apart), 12 attempts in all, then the
batch is ``failed`` and the subscription waits until :func:`retry`. A batch sent again after
a crash (sent, but not yet recorded as delivered) carries the same batch id and event ids:
the receiver acts once on each id.
"""

from __future__ import annotations

import datetime as _dt
import json
import secrets
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

import ibis
import pyarrow as pa

from segmentum.data.schema import I64, STR, TS
from segmentum.errors import NotFoundError, UsageError

__all__ = ["WEBHOOKS", "POSITIONS", "QUEUE", "Batch", "create_webhook", "list_webhooks",
           "get_webhook", "delete_webhook", "enqueue", "due", "record", "retry", "queue_rows",
           "batch_body", "MAX_ATTEMPTS", "EVENTS"]

WEBHOOKS, POSITIONS, QUEUE = "crm_webhooks", "crm_webhook_positions", "crm_webhook_deliveries"
WEBHOOKS_SCHEMA = {"webhook_id": STR, "url": STR, "secret": STR, "segments": STR, "events": STR,
                   "description": STR, "created_by": STR, "created_at": TS}
POSITIONS_SCHEMA = {"webhook_id": STR, "segment": STR, "cursor": STR, "updated_at": TS}
QUEUE_SCHEMA = {"webhook_id": STR, "batch_id": STR, "seq": I64, "event_id": STR, "segment": STR,
                "change": STR, "contact_id": STR, "at": TS, "status": STR, "attempts": I64,
                "next_attempt_at": TS, "last_error": STR, "delivered_at": TS, "enqueued_at": TS}
EVENTS = ("entered", "exited")
BATCH = 100
MAX_ATTEMPTS = 12
_FIRST_WAIT, _MAX_WAIT = 5.0, 3600.0


def _ensure(wh) -> None:
    for name, schema in ((WEBHOOKS, WEBHOOKS_SCHEMA), (POSITIONS, POSITIONS_SCHEMA), (QUEUE, QUEUE_SCHEMA)):
        wh.create_table(name, schema)


def _insert(wh, name: str, schema: dict, rows: list[dict]) -> None:
    if rows:
        wh.insert(name, pa.Table.from_pylist(rows, schema=ibis.schema(schema).to_pyarrow()))


def _now() -> _dt.datetime:
    return _dt.datetime.now(_dt.UTC)


def _public(row: dict) -> dict:
    return {**{k: v for k, v in row.items() if k != "secret"},
            "segments": json.loads(row["segments"]) if row["segments"] else None,
            "events": json.loads(row["events"])}


# -- subscriptions ---------------------------------------------------------------------------
def _check_url(url: str) -> str:
    parts = urlsplit(url.strip()) if isinstance(url, str) else None
    if parts is None or parts.scheme not in ("http", "https") or not parts.netloc:
        raise UsageError(f"A webhook URL is http(s)://host/path, not {str(url)[:80]!r}.", field="url")
    return url.strip()


def create_webhook(ws, url: str, *, segments: Iterable[str] | None = None,
                   events: Iterable[str] = EVENTS, description: str | None = None,
                   by: str) -> tuple[dict, str]:
    """A new subscription (its row, without the secret) and its signing secret (shown once)."""
    from segmentum.crm.feeds import feed_cursor, membership_change_table
    from segmentum.segments.store import SegmentStore

    url = _check_url(url)
    events = list(dict.fromkeys(events))
    bad = [e for e in events if e not in EVENTS]
    if bad or not events:
        raise UsageError(f"events are entered and / or exited, not {bad or events!r}.", field="events")
    store = SegmentStore(ws)
    named = list(dict.fromkeys(segments)) if segments is not None else None
    for name in named or []:
        store.require(name)
    wh = ws.warehouse
    _ensure(wh)
    now, secret = _now(), secrets.token_urlsafe(32)
    row = {"webhook_id": uuid.uuid4().hex[:12], "url": url, "secret": secret,
           "segments": json.dumps(named) if named is not None else None,
           "events": json.dumps(events), "description": description, "created_by": by,
           "created_at": now}
    positions = []
    for name in named if named is not None else store.names():
        t = membership_change_table(ws, name)
        last = t.order_by([ibis.desc("at"), ibis.desc("change"), ibis.desc("contact_id")]).limit(1)
        end = last.to_pyarrow().to_pylist()
        key = [end[0][k] for k in ("at", "change", "contact_id")] if end else None
        positions.append({"webhook_id": row["webhook_id"], "segment": name,
                          "cursor": feed_cursor(key), "updated_at": now})
    with wh.transaction():
        _insert(wh, WEBHOOKS, WEBHOOKS_SCHEMA, [row])
        _insert(wh, POSITIONS, POSITIONS_SCHEMA, positions)
    return _public(row), secret


def _rows(wh) -> list[dict]:
    if not wh.has_table(WEBHOOKS):
        return []
    return wh.table(WEBHOOKS).order_by("created_at").to_pyarrow().to_pylist()


def _counts(wh) -> dict[tuple[str, str], int]:
    if not wh.has_table(QUEUE):
        return {}
    q = wh.table(QUEUE)
    rows = q.group_by(["webhook_id", "status"]).agg(n=q.count()).to_pyarrow().to_pylist()
    return {(r["webhook_id"], r["status"]): r["n"] for r in rows}


def list_webhooks(ws) -> list[dict]:
    """Every subscription with how many changes are pending, delivered and failed."""
    counts = _counts(ws.warehouse)
    return [{**_public(r), **{s: counts.get((r["webhook_id"], s), 0)
                              for s in ("pending", "delivered", "failed")}}
            for r in _rows(ws.warehouse)]


def get_webhook(ws, webhook_id: str) -> dict:
    for r in list_webhooks(ws):
        if r["webhook_id"] == webhook_id:
            return r
    raise NotFoundError(f"No webhook {webhook_id!r}.", hint="GET /api/crm/webhooks lists them.")


def delete_webhook(ws, webhook_id: str) -> None:
    """Forget a subscription with its positions and its queue."""
    get_webhook(ws, webhook_id)
    wh = ws.warehouse
    with wh.transaction():
        for table in (QUEUE, POSITIONS, WEBHOOKS):
            if wh.has_table(table):
                wh.delete_where(table, "webhook_id", [webhook_id])


# -- the queue -------------------------------------------------------------------------------
def enqueue(ws, now: _dt.datetime | None = None, *, limit: int = 5000) -> int:
    """Queue the changes each subscription has not seen yet (module doc); how many."""
    from segmentum.crm.feeds import membership_changes
    from segmentum.segments.store import SegmentStore

    wh = ws.warehouse
    hooks = _rows(wh)
    if not hooks:
        return 0
    now = now or _now()
    names = SegmentStore(ws).names()
    p = wh.table(POSITIONS).to_pyarrow().to_pylist()
    positions = {(r["webhook_id"], r["segment"]): r["cursor"] for r in p}
    seq = _next_seq(wh)
    queued = 0
    for hook in hooks:
        wanted = set(json.loads(hook["events"]))
        segments = json.loads(hook["segments"]) if hook["segments"] else names
        rows, moved = [], []
        for segment in segments:
            if segment not in names:
                continue  # deleted since: nothing more will come
            since = positions.get((hook["webhook_id"], segment))
            feed = membership_changes(ws, segment, since, limit)
            if feed["next"] == since:
                continue
            moved.append({"webhook_id": hook["webhook_id"], "segment": segment,
                          "cursor": feed["next"], "updated_at": now})
            rows += [(segment, c) for c in feed["items"] if c["change"] in wanted]
        out = []
        for n, (segment, c) in enumerate(rows):
            if n % BATCH == 0:
                batch = uuid.uuid4().hex[:16]
            out.append({"webhook_id": hook["webhook_id"], "batch_id": batch, "seq": seq,
                        "event_id": c["id"], "segment": segment, "change": c["change"],
                        "contact_id": c["contact_id"], "at": _ts(c["at"]), "status": "pending",
                        "attempts": 0, "next_attempt_at": now, "last_error": None,
                        "delivered_at": None, "enqueued_at": now})
            seq += 1
        if not moved:
            continue
        with wh.transaction():
            wh.raw.execute(f"DELETE FROM {POSITIONS} WHERE webhook_id = $1 AND segment IN "
                           "(SELECT unnest($2))", [hook["webhook_id"], [m["segment"] for m in moved]])
            _insert(wh, POSITIONS, POSITIONS_SCHEMA, moved)
            _insert(wh, QUEUE, QUEUE_SCHEMA, out)
        queued += len(out)
    return queued


def _ts(value) -> _dt.datetime:
    if isinstance(value, str):
        return _dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    return value if value.tzinfo else value.replace(tzinfo=_dt.UTC)


def _next_seq(wh) -> int:
    if not wh.has_table(QUEUE):
        return 0
    top = wh.table(QUEUE).seq.max().to_pyarrow().as_py()
    return 0 if top is None else int(top) + 1


@dataclass(frozen=True)
class Batch:
    """One POST to make: a subscription's oldest pending batch."""

    webhook_id: str
    batch_id: str
    url: str
    secret: str
    attempts: int
    events: tuple[dict, ...]


def due(ws, now: _dt.datetime | None = None) -> list[Batch]:
    """Each subscription's oldest pending batch, if its next attempt is due."""
    wh = ws.warehouse
    if not wh.has_table(QUEUE):
        return []
    now = now or _now()
    q = wh.table(QUEUE)
    pending = q.filter(q.status == "pending")
    head = pending.group_by("webhook_id").agg(seq=pending.seq.min())
    first = pending.join(head, ["webhook_id", "seq"]).select("webhook_id", "batch_id", "next_attempt_at")
    ready = first.filter(first.next_attempt_at <= ibis.literal(now, type=TS)).to_pyarrow().to_pylist()
    if not ready:
        return []
    hooks = {r["webhook_id"]: r for r in _rows(wh)}
    batches = [r["batch_id"] for r in ready]
    rows = q.filter(q.batch_id.isin(batches)).order_by("seq").to_pyarrow().to_pylist()
    c = wh.table("contacts")
    ids = sorted({r["contact_id"] for r in rows})
    found = c.filter(c.contact_id.isin(ids)).select("contact_id", "email").to_pyarrow().to_pylist()
    emails = {r["contact_id"]: r["email"] for r in found}
    out = []
    for r in ready:
        mine = [x for x in rows if x["batch_id"] == r["batch_id"]]
        hook = hooks[r["webhook_id"]]
        events = tuple({"id": x["event_id"], "type": f"segment.{x['change']}", "segment": x["segment"],
                        "contact_id": x["contact_id"], "email": emails.get(x["contact_id"]),
                        "at": x["at"].astimezone(_dt.UTC).isoformat().replace("+00:00", "Z")}
                       for x in mine)
        out.append(Batch(r["webhook_id"], r["batch_id"], hook["url"], hook["secret"],
                         int(mine[0]["attempts"]), events))
    return out


def batch_body(batch: Batch) -> bytes:
    """The JSON body of a batch's POST."""
    return json.dumps({"webhook": batch.webhook_id, "batch": batch.batch_id,
                       "events": list(batch.events)}, separators=(",", ":"),
                      ensure_ascii=False).encode()


def record(ws, batch: Batch, error: str | None, now: _dt.datetime | None = None) -> str:
    """Record a POST's outcome (``error`` None: acknowledged); the batch's new status."""
    now = now or _now()
    attempts = batch.attempts + 1
    if error is None:
        status, wait = "delivered", None
    elif attempts >= MAX_ATTEMPTS:
        status, wait = "failed", None
    else:
        status, wait = "pending", min(_MAX_WAIT, _FIRST_WAIT * 2 ** (attempts - 1))
    nxt = now + _dt.timedelta(seconds=wait) if wait is not None else None
    ws.warehouse.raw.execute(
        f"UPDATE {QUEUE} SET status = $1, attempts = $2, last_error = $3, next_attempt_at = "
        "coalesce($4, next_attempt_at), delivered_at = $5 WHERE batch_id = $6",
        [status, attempts, error, nxt, now if error is None else None, batch.batch_id],
    )
    return status


def retry(ws, webhook_id: str) -> int:
    """Put a subscription's failed batches back in the queue; how many changes."""
    get_webhook(ws, webhook_id)
    row = ws.warehouse.raw.execute(
        f"UPDATE {QUEUE} SET status = 'pending', attempts = 0, next_attempt_at = $2 "
        "WHERE webhook_id = $1 AND status = 'failed'", [webhook_id, _now()]).fetchone()
    return int(row[0])


def queue_rows(ws, webhook_id: str, status: str | None = None):
    """A subscription's queue as an Ibis table (for paging), oldest first."""
    get_webhook(ws, webhook_id)
    q = ws.warehouse.table(QUEUE) if ws.warehouse.has_table(QUEUE) else None
    if q is None:
        return None
    q = q.filter(q.webhook_id == webhook_id)
    return q.filter(q.status == status) if status else q
