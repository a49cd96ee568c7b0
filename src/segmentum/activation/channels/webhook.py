"""A webhook: one JSON POST per message, signed, with timeouts and retries.

The body is the message as JSON (key, origin, contact_id, channel, to, subject, text,
html, tags, send_at, expires_at, data). Headers:

    X-Segmentum-Timestamp   Unix seconds at signing
    X-Segmentum-Signature   v1=HEX(HMAC-SHA256(secret, "{timestamp}." + body))
    Idempotency-Key         the message key: the same message always carries the same one

A 2xx reply is delivered (its JSON ``id`` or the ``X-Request-Id`` header is the provider
id). 5xx, 429 and timeouts are retried with exponential backoff and full jitter (429's
``Retry-After`` is honoured), other 4xx are not. When the retries run out the error is
transient; after a timeout it is also uncertain (the receiver may have acted on it; the
Idempotency-Key lets it tell).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import random
import time
from collections.abc import Callable

import httpx

from segmentum.activation.channels.base import Configured, Receipt
from segmentum.activation.channels.config import WebhookSpec
from segmentum.activation.message import OutboundMessage
from segmentum.errors import ChannelError

__all__ = ["WebhookChannel", "sign", "verify", "message_json"]

SIGNATURE = "X-Segmentum-Signature"
TIMESTAMP = "X-Segmentum-Timestamp"


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """The signature header's value for a body sent at ``timestamp``."""
    mac = hmac.new(secret.encode(), timestamp.encode("ascii") + b"." + body, hashlib.sha256)
    return "v1=" + mac.hexdigest()


def verify(secret: str, timestamp: str, body: bytes, signature: str, *, tolerance: float = 300,
           now: float | None = None) -> bool:
    """True when ``signature`` is the body's and the timestamp is within ``tolerance`` s."""
    try:
        fresh = abs((now or time.time()) - int(timestamp)) <= tolerance
    except ValueError:
        return False
    return fresh and hmac.compare_digest(sign(secret, timestamp, body), signature)


def message_json(msg: OutboundMessage) -> bytes:
    """The message as the JSON body a webhook (or the outbox) receives."""
    body = {
        "key": msg.key,
        "origin": {"kind": msg.origin.kind, "name": msg.origin.name,
                   "occurrence": msg.origin.occurrence},
        "contact_id": msg.contact_id,
        "channel": msg.channel,
        "to": msg.to,
        "subject": msg.subject,
        "text": msg.text,
        "html": msg.html,
        "tags": list(msg.tags),
        "send_at": msg.send_at.isoformat(),
        "expires_at": msg.expires_at.isoformat() if msg.expires_at else None,
        "headers": dict(msg.headers),
        "data": dict(msg.data),
    }
    return json.dumps(body, ensure_ascii=False, separators=(",", ":"), default=str).encode()


class WebhookChannel(Configured):
    """An HTTP endpoint configured by :class:`WebhookSpec` (see the module doc)."""

    kind = "webhook"

    def __init__(self, name: str, spec: WebhookSpec, *, secret: str,
                 transport: httpx.BaseTransport | None = None,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        super().__init__(name, spec)
        self._secret = secret
        self._sleep = sleep
        self._client = httpx.Client(timeout=spec.timeout, transport=transport,
                                    headers={"User-Agent": "segmentum-webhook/1", **spec.headers})

    def close(self) -> None:
        self._client.close()

    def send(self, msg: OutboundMessage) -> Receipt:
        body = message_json(msg)
        failure, transient, wait, maybe = "", True, None, False
        for attempt in range(self.spec.retries + 1):
            if attempt:
                self._sleep(self._delay(attempt, wait))
            try:
                reply = self._client.post(self.spec.url, content=body, headers=self._headers(msg, body))
            except httpx.TimeoutException as exc:
                failure, wait, maybe = f"no reply within {self.spec.timeout:g} s ({type(exc).__name__})", None, True
                continue
            except httpx.HTTPError as exc:
                failure, wait = f"cannot reach the endpoint ({type(exc).__name__})", None
                continue
            if reply.is_success:
                return Receipt(provider_id=_provider_id(reply), detail=f"HTTP {reply.status_code}")
            failure, wait = f"HTTP {reply.status_code}: {reply.text[:200]}", _retry_after(reply)
            transient = reply.status_code >= 500 or reply.status_code == 429
            if not transient:
                break
        tries = f" after {attempt + 1} attempts" if attempt else ""
        raise ChannelError(f"Channel {self.name!r} (webhook {self.spec.url}): {failure}{tries}",
                           transient=transient, uncertain=maybe, channel=self.name)

    def _headers(self, msg: OutboundMessage, body: bytes) -> dict[str, str]:
        ts = str(int(time.time()))
        return {"Content-Type": "application/json", TIMESTAMP: ts,
                SIGNATURE: sign(self._secret, ts, body), "Idempotency-Key": msg.key}

    def _delay(self, attempt: int, retry_after: float | None) -> float:
        """Full jitter: a random wait up to backoff x 2^(attempt-1), capped; Retry-After wins."""
        if retry_after is not None:
            return min(retry_after, self.spec.max_backoff)
        return random.uniform(0, min(self.spec.max_backoff, self.spec.backoff * 2 ** (attempt - 1)))


def _provider_id(reply: httpx.Response) -> str | None:
    try:
        data = reply.json()
    except ValueError:
        data = None
    if isinstance(data, dict) and data.get("id") is not None:
        return str(data["id"])
    return reply.headers.get("X-Request-Id")


def _retry_after(reply: httpx.Response) -> float | None:
    try:
        return float(reply.headers["Retry-After"])
    except (KeyError, ValueError):
        return None
