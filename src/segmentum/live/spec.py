"""The Segment Spec at the door: request bodies become validated, time-corrected messages.

Pure functions of a request: no I/O, no clock (``received_at`` is passed in).

* Bodies: ``Content-Encoding: gzip`` is decompressed with a bound (a small gzip cannot
  become a large body); a body above its limit is :class:`PayloadTooLargeError` (413);
  JSON that does not parse is :class:`PayloadError` (400) with its line and column.
* Limits (Segment's HTTP Tracking API): 32 KB per event, 500 KB and 2,500 events per
  batch (``/v1/batch``, ``/v1/import``).
* Each event is checked on its own: a known ``type`` (batches), ``userId`` or
  ``anonymousId`` (text or a number, at most 255 characters), ``event`` for track,
  ``groupId`` for group, ``userId`` and ``previousId`` for alias, objects for
  ``properties`` / ``traits`` / ``context`` / ``integrations``, ISO 8601 times. A problem
  names the event's index in the batch, its messageId, the field and how to fix it.
* Time: ``originalTimestamp`` is what the client said (its ``originalTimestamp``, else its
  ``timestamp``), ``sentAt`` the event's or the batch's, ``receivedAt`` the server's. With
  both, ``timestamp = receivedAt - (sentAt - originalTimestamp)`` corrects the client's
  clock skew; otherwise it is ``originalTimestamp``, else ``receivedAt``. An event cannot
  happen after it was received: a later ``timestamp`` becomes ``receivedAt``. All UTC.
* A batch's top-level ``context`` and ``integrations`` are merged under each event's own.
  ``writeKey`` is never stored. A missing ``messageId`` gets a random one (such an event
  cannot be recognised when retried).

A valid event becomes a :class:`Message`: its messageId, its partition key (the contact:
``userId``, else ``anonymousId``) and its record, the JSON the intake log stores: the
event as sent plus ``type``, ``messageId``, ``userId`` / ``anonymousId`` as text, the four
times and ``source`` (the write key's name).
"""

from __future__ import annotations

import datetime as _dt
import uuid
import zlib
from dataclasses import dataclass
from typing import Any

import orjson

from segmentum.errors import PayloadError, PayloadTooLargeError

__all__ = [
    "MESSAGE_TYPES",
    "BATCH_ENDPOINTS",
    "Limits",
    "Message",
    "Parsed",
    "decode_body",
    "parse_json",
    "messages_of",
]

MESSAGE_TYPES = ("identify", "track", "page", "screen", "group", "alias")
BATCH_ENDPOINTS = ("batch", "import")
_MAX_ID = 255
_OBJECTS = ("properties", "traits", "context", "integrations")


@dataclass(frozen=True)
class Limits:
    event_bytes: int = 32 * 1024
    batch_bytes: int = 500 * 1024
    batch_events: int = 2500

    def body_bytes(self, endpoint: str) -> int:
        return self.batch_bytes if endpoint in BATCH_ENDPOINTS else self.event_bytes


@dataclass(frozen=True, slots=True)
class Message:
    """One valid event: where it was in the request, its id, partition key and record."""

    index: int
    message_id: str
    key: bytes
    record: bytes


@dataclass
class Parsed:
    """A request's events: the valid ones and one problem per invalid one."""

    messages: list[Message]
    problems: list[dict[str, Any]]
    total: int


class _Invalid(Exception):
    def __init__(self, field: str, reason: str, code: str = "invalid_payload"):
        super().__init__(reason)
        self.field, self.reason, self.code = field, reason, code


# -- bodies ---------------------------------------------------------------------------------
def decode_body(body: bytes, content_encoding: str | None, limit: int) -> bytes:
    """The request body, gunzipped when so encoded, at most ``limit`` bytes."""
    encoding = (content_encoding or "identity").strip().lower()
    if encoding == "gzip":
        inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
        try:
            body = inflater.decompress(body, limit + 1)
        except zlib.error as exc:
            raise PayloadError(
                f"The body says Content-Encoding: gzip but is not valid gzip ({exc}).",
                hint="Send the gzip of the JSON, or leave out the Content-Encoding header.",
            ) from None
        if not inflater.eof and len(body) <= limit:
            raise PayloadError("The gzip body ends before its end of stream.", hint="Send it whole.")
    elif encoding != "identity":
        raise PayloadError(
            f"Content-Encoding {content_encoding!r} is not supported.",
            hint="Send plain JSON or gzip.",
        )
    if len(body) > limit:
        raise PayloadTooLargeError(
            f"The body is over {limit:,} bytes (uncompressed), the limit of this endpoint.",
            hint="Send at most 32 KB per event and 500 KB / 2,500 events per batch.",
            limit=limit,
        )
    return body


def parse_json(body: bytes) -> Any:
    """The body as JSON, or a PayloadError saying where it stops being JSON."""
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        if "UTF-8" in exc.msg and "BOM" not in exc.msg:
            raise _not_utf8(body) from None
        raise PayloadError(
            f"The body is not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}.",
            hint="Send one JSON object (Content-Type: application/json).",
            line=exc.lineno,
            column=exc.colno,
        ) from None


def _not_utf8(body: bytes) -> PayloadError:
    """Where a body stops being UTF-8, by byte offset, line and column."""
    try:
        body.decode("utf-8")
        start, byte = 0, None  # valid UTF-8 that encodes a surrogate code point
    except UnicodeDecodeError as exc:
        start, byte = exc.start, body[exc.start]
    line = body.count(b"\n", 0, start) + 1
    column = start - (body.rfind(b"\n", 0, start) + 1) + 1
    what = f"byte 0x{byte:02X}" if byte is not None else "a surrogate code point"
    return PayloadError(
        f"The body is not UTF-8: {what} at offset {start:,} (line {line}, column {column}).",
        hint="Encode the JSON as UTF-8 (latin-1 or Windows-1252 text must be converted first).",
        line=line, column=column, offset=start,
    )


# -- events ---------------------------------------------------------------------------------
def messages_of(
    body: Any, endpoint: str, *, source: str, received_at: _dt.datetime, limits: Limits
) -> Parsed:
    """Validate a parsed body of ``/v1/{endpoint}`` into messages and problems."""
    if not isinstance(body, dict):
        raise PayloadError(
            f"The body is JSON {type(body).__name__}, not an object.",
            hint='Send {"userId": ..., ...} or, to /v1/batch, {"batch": [...]}.',
        )
    if endpoint in BATCH_ENDPOINTS:
        events, shared = _batch(body, limits)
    else:
        events, shared = [body], {}
    messages, problems = [], []
    for index, event in enumerate(events):
        try:
            messages.append(_message(index, event, endpoint, shared, source, received_at, limits))
        except _Invalid as bad:
            mid = event.get("messageId") if isinstance(event, dict) else None
            problems.append({
                "index": index,
                "messageId": mid if isinstance(mid, str | int) else None,
                "field": bad.field,
                "code": bad.code,
                "reason": bad.reason,
            })
    return Parsed(messages, problems, len(events))


def _batch(body: dict, limits: Limits) -> tuple[list, dict]:
    events = body.get("batch")
    if not isinstance(events, list):
        raise PayloadError(
            'A batch body needs "batch": a list of events.',
            hint='Send {"batch": [{"type": "track", ...}, ...]}.',
            field="batch",
        )
    if len(events) > limits.batch_events:
        raise PayloadTooLargeError(
            f"The batch has {len(events):,} events; the limit is {limits.batch_events:,}.",
            hint="Split it into smaller batches.",
            limit=limits.batch_events,
        )
    shared = {}
    for name in ("context", "integrations"):
        if isinstance(body.get(name), dict):
            shared[name] = body[name]
    try:
        shared["sentAt"] = _time(body, "sentAt")
    except _Invalid as bad:
        raise PayloadError(f"The batch's {bad.reason}.", field="sentAt") from None
    return events, shared


_MAX_DEPTH = 254  # the event itself is level 1


def _message(index: int, event: Any, endpoint: str, shared: dict, source: str,
             received_at: _dt.datetime, limits: Limits) -> Message:
    if not isinstance(event, dict):
        raise _Invalid("", f"event {index} is JSON {type(event).__name__}, not an object")
    try:
        size = len(orjson.dumps(event))
    except TypeError:  # orjson writes at most 254 levels of objects and lists
        raise _Invalid(
            "", f"the event nests objects or lists more than {_MAX_DEPTH} levels deep; flatten it"
        ) from None
    if size > limits.event_bytes:
        raise _Invalid(
            "", f"the event is {size:,} bytes; the limit is {limits.event_bytes:,} per event",
            code="payload_too_large",
        )
    kind = _type(event, endpoint)
    record = dict(event)
    record.pop("writeKey", None)
    for name in ("context", "integrations"):
        if name in shared:
            own = event.get(name)
            record[name] = {**shared[name], **own} if isinstance(own, dict) else shared[name]
    for name in _OBJECTS:
        if record.get(name) is not None and not isinstance(record[name], dict):
            raise _Invalid(name, f"`{name}` must be an object, not {type(record[name]).__name__}")
    user_id, anonymous_id = _id(event, "userId"), _id(event, "anonymousId")
    _require(kind, event, user_id, anonymous_id)
    message_id = _id(event, "messageId") or f"api-{uuid.uuid4()}"
    record.update(type=kind, messageId=message_id, source=source)
    if user_id:
        record["userId"] = user_id
    if anonymous_id:
        record["anonymousId"] = anonymous_id
    record.update(_times(event, shared, received_at))
    record = orjson.dumps(record, option=orjson.OPT_UTC_Z)
    return Message(index, message_id, (user_id or anonymous_id).encode(), record)


def _type(event: dict, endpoint: str) -> str:
    if endpoint not in BATCH_ENDPOINTS:
        return endpoint
    kind = event.get("type")
    if kind not in MESSAGE_TYPES:
        raise _Invalid(
            "type",
            f"unknown type {kind!r}: an event of a batch needs `type`, one of "
            + ", ".join(MESSAGE_TYPES),
        )
    return kind


def _id(event: dict, name: str) -> str | None:
    value = event.get(name)
    if value is None:
        return None
    if type(value) is str and len(value) <= _MAX_ID:  # the common case, at once
        return value.strip() or None
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise _Invalid(name, f"`{name}` must be text or a number, not {type(value).__name__}")
    if isinstance(value, float) and value.is_integer():
        value = int(value)  # 42.0 from a JavaScript client is the id 42
    text = str(value).strip()
    if len(text) > _MAX_ID:
        raise _Invalid(name, f"`{name}` is {len(text)} characters long; at most {_MAX_ID}")
    return text or None


def _require(kind: str, event: dict, user_id: str | None, anonymous_id: str | None) -> None:
    if kind == "alias":
        if not user_id:
            raise _Invalid("userId", "an alias call needs `userId`, the id it aliases to")
        if not _id(event, "previousId"):
            raise _Invalid("previousId", "an alias call needs `previousId`, the id it replaces")
    elif not (user_id or anonymous_id):
        article = "an" if kind == "identify" else "a"
        raise _Invalid("userId", f"{article} {kind} call needs `userId` or `anonymousId`")
    if kind == "track":
        name = event.get("event")
        if not isinstance(name, str) or not name.strip():
            raise _Invalid("event", "a track call needs `event`, the name of the action (text)")
        if len(name) > _MAX_ID:
            raise _Invalid("event", f"`event` is {len(name)} characters long; at most {_MAX_ID}")
    if kind == "group" and not _id(event, "groupId"):
        raise _Invalid("groupId", "a group call needs `groupId`")


def _times(event: dict, shared: dict, received_at: _dt.datetime) -> dict[str, _dt.datetime | None]:
    original = _time(event, "originalTimestamp") or _time(event, "timestamp")
    sent = _time(event, "sentAt") or shared.get("sentAt")
    if original and sent:
        try:
            when = received_at - (sent - original)
        except OverflowError:
            raise _Invalid("sentAt", "`sentAt` and `originalTimestamp` are too far apart") from None
    else:
        when = original or received_at
    return {"originalTimestamp": original, "sentAt": sent, "receivedAt": received_at,
            "timestamp": min(when, received_at)}


def _time(obj: dict, name: str) -> _dt.datetime | None:
    value = obj.get(name)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise _Invalid(name, f"`{name}` must be an ISO 8601 text, e.g. 2026-10-31T12:00:00Z")
    try:
        when = _dt.datetime.fromisoformat(value.strip().replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise _Invalid(
            name, f"`{name}` {value[:40]!r} is not an ISO 8601 time, e.g. 2026-10-31T12:00:00Z"
        ) from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=_dt.UTC)
    try:
        return when.astimezone(_dt.UTC)
    except OverflowError:
        raise _Invalid(name, f"`{name}` {value[:40]!r} is out of range") from None
