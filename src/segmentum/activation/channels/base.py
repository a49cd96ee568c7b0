"""The one small interface every channel implements, and what a send returns.

A channel is like an httpx transport: it takes one :class:`OutboundMessage` and hands it
to the outside world, returning a :class:`Receipt` or raising
:class:`~segmentum.errors.ChannelError` (``transient``: worth trying again later;
``uncertain``: it may have been delivered all the same). It knows nothing about plans,
consent or the delivery log: the Sender (``activation.delivery``) decides what to send.
"""

from __future__ import annotations

import dataclasses as dc
from typing import Protocol, runtime_checkable

from segmentum.activation.message import OutboundMessage

__all__ = ["Channel", "Receipt", "CHANNEL_KINDS", "Configured"]

CHANNEL_KINDS = ("email", "webhook", "outbox")


@dc.dataclass(frozen=True)
class Receipt:
    """What a channel says about a message it took: the provider's id for it, and detail."""

    provider_id: str | None
    detail: str | None = None


@runtime_checkable
class Channel(Protocol):
    """A configured channel: its name, kind, the contacts' address and consent columns."""

    name: str
    kind: str  # "email", "webhook" or "outbox"
    address_field: str  # contacts column used as a message's ``to`` (email, phone, ...)
    consent_field: str  # contacts column of the marketing consent (email_opt_in, ...)

    def send(self, msg: OutboundMessage) -> Receipt:
        """Deliver one message, or raise ChannelError."""
        ...

    def close(self) -> None:
        """Release connections and files."""
        ...


class Configured:
    """What the channels built from settings share: the name and spec they were given."""

    kind: str

    def __init__(self, name: str, spec) -> None:
        self.name = name
        self.spec = spec
        self.address_field = spec.address_field
        self.consent_field = spec.consent_field
