"""The types every activation module speaks: a message's origin and key, the message, a decision.

* :class:`Origin` says what a message belongs to: a campaign's send run, a trigger's
  occurrence, a transactional send or a test.
* :func:`message_key` is the message's identity, a 32-hex-digit SHA-256 of (origin,
  contact, channel): planning the same run again yields the same keys, so the delivery log
  records each message once and the Sender sends it at most once.
* :class:`OutboundMessage` is one rendered message ready for a channel.
* :class:`Decision` is one contact's outcome in a plan; a plan's audience size equals the
  sum of its outcomes.
"""

from __future__ import annotations

import dataclasses as dc
import datetime as _dt
import hashlib
from collections.abc import Mapping
from typing import Any, Literal, get_args

__all__ = [
    "Outcome",
    "OUTCOMES",
    "OriginKind",
    "ORIGIN_KINDS",
    "Origin",
    "message_key",
    "OutboundMessage",
    "Decision",
    "TRANSACTIONAL_TAG",
]

Outcome = Literal[
    "sent",
    "control",
    "global_control",
    "no_consent",
    "unsubscribed",
    "capped",
    "capped_deferred",
    "quiet_hours_deferred",
    "scheduled",
    "no_address",
    "render_error",
    "channel_error",
    "unknown",
    "suppressed",
    "duplicate",
    "expired",
]
OUTCOMES: tuple[str, ...] = get_args(Outcome)

OriginKind = Literal["campaign", "trigger", "transactional", "test"]
ORIGIN_KINDS: tuple[str, ...] = get_args(OriginKind)

TRANSACTIONAL_TAG = "transactional"
"""The tag that exempts a message from frequency caps and the global control group."""

_SEP = "\x1f"  # unit separator: cannot occur in names, ids or channel names typed by people


@dc.dataclass(frozen=True)
class Origin:
    """What a message belongs to.

    ``name`` is the campaign's or trigger's name; ``occurrence`` is the campaign's send run
    id (e.g. ``"2026-11-01T09:00:00Z"``) or the trigger occurrence's deterministic id.
    """

    kind: OriginKind
    name: str
    occurrence: str

    def __post_init__(self) -> None:
        if self.kind not in ORIGIN_KINDS:
            raise ValueError(f"Origin kind must be one of {', '.join(ORIGIN_KINDS)}, not {self.kind!r}.")


def message_key(origin: Origin, contact_id: str, channel: str) -> str:
    """The message's identity: SHA-256 of origin, contact and channel, 32 hex digits."""
    parts = (origin.kind, origin.name, origin.occurrence, str(contact_id), channel)
    return hashlib.sha256(_SEP.join(parts).encode("utf-8")).hexdigest()[:32]


@dc.dataclass(frozen=True)
class OutboundMessage:
    """One rendered message for one contact on one configured channel.

    ``to`` is the address the channel uses (e-mail, phone, push token, webhook target id);
    ``send_at`` (UTC) is the earliest time it may go out, ``expires_at`` the time after
    which it must not. ``headers`` are extra headers (the SMTP channel adds List-Unsubscribe
    itself); ``data`` is a JSON-able payload for webhooks and the outbox.
    """

    key: str
    origin: Origin
    contact_id: str
    channel: str
    to: str
    subject: str | None
    text: str | None
    html: str | None
    tags: tuple[str, ...]
    send_at: _dt.datetime
    expires_at: _dt.datetime | None
    headers: Mapping[str, str] = dc.field(default_factory=dict, hash=False)
    data: Mapping[str, Any] = dc.field(default_factory=dict, hash=False)

    @property
    def transactional(self) -> bool:
        """True for transactional mail: exempt from caps and the global control group."""
        return TRANSACTIONAL_TAG in self.tags or self.origin.kind == "transactional"


@dc.dataclass(frozen=True)
class Decision:
    """One contact's outcome in a plan.

    ``arm`` is ``"treatment"``, ``"control"`` or a variant's name; ``message`` is set for
    the contacts who get one (outcome ``scheduled`` / deferred); ``send_at`` is when.
    """

    contact_id: str
    outcome: Outcome
    arm: str | None
    reason: str | None
    message: OutboundMessage | None
    send_at: _dt.datetime | None

    def with_outcome(self, outcome: Outcome, reason: str | None = None, **changes: Any) -> Decision:
        """The same decision with another outcome (and reason, and any other field changed)."""
        return dc.replace(self, outcome=outcome, reason=reason, **changes)
