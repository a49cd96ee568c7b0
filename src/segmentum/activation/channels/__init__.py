"""Channels: where messages go, behind one small interface (``base.Channel``).

    smtp      e-mail over SMTP (Message-ID from the key, RFC 8058 one-click unsubscribe)
    webhook   a signed JSON POST per message, retried with backoff (SMS, push, messengers)
    outbox    a JSON Lines file, fsync'd, one line per message key
    config    the ``channels:`` section of ``segmentum.yaml`` (or ``--channels FILE``)

    >>> channels = load_channels(ws)            # {"email": SmtpChannel, ...}
    >>> channels["email"].send(message)          # Receipt(provider_id="<key@shop.example>")

Secrets (SMTP passwords, signing keys) are read from the environment variables the file
names when a channel is prepared (:func:`prepare`, which the Sender calls before sending).
"""

from __future__ import annotations

import os

from segmentum.activation.channels.base import CHANNEL_KINDS, Channel, Configured, Receipt
from segmentum.activation.channels.config import (
    OutboxSpec,
    SendSettings,
    SmtpSpec,
    WebhookSpec,
    load_settings,
    secret,
)

__all__ = [
    "Channel",
    "Receipt",
    "CHANNEL_KINDS",
    "SendSettings",
    "load_settings",
    "load_channels",
    "build_channel",
    "prepare",
]


class _Lazy(Configured):
    """A configured channel whose implementation (and secrets) are made on first use."""

    def __init__(self, name: str, spec, settings: SendSettings) -> None:
        super().__init__(name, spec)
        self.kind = {"smtp": "email"}.get(spec.type, spec.type)
        self._settings = settings
        self._impl = None

    def prepare(self):
        """Build the channel now (reading its secrets): ConfigError if one is missing."""
        if self._impl is None:
            self._impl = build_channel(self.name, self.spec, self._settings)
        return self._impl

    def send(self, msg) -> Receipt:
        return self.prepare().send(msg)

    def close(self) -> None:
        if self._impl is not None:
            self._impl.close()
            self._impl = None

    def __repr__(self) -> str:
        return f"<channel {self.name!r} ({self.spec.type})>"


def build_channel(name: str, spec, settings: SendSettings) -> Channel:
    """The channel implementation for one spec, its secrets read from the environment."""
    file = settings.file
    key = f"channels.{name}"
    if isinstance(spec, SmtpSpec):
        from segmentum.activation.channels.smtp import SmtpChannel

        unsub = spec.unsubscribe
        return SmtpChannel(
            name, spec,
            password=secret(spec.password_env, file=file, key=f"{key}.password_env"),
            unsubscribe_secret=secret(unsub.secret_env, file=file, key=f"{key}.unsubscribe.secret_env")
            if unsub else None,
        )
    if isinstance(spec, WebhookSpec):
        from segmentum.activation.channels.webhook import WebhookChannel

        return WebhookChannel(name, spec, secret=secret(spec.secret_env, file=file, key=f"{key}.secret_env"))
    if isinstance(spec, OutboxSpec):
        from segmentum.activation.channels.outbox import OutboxChannel

        return OutboxChannel(name, spec, settings.folder)
    raise AssertionError(spec)  # the settings model allows only these


def load_channels(ws=None, path: str | os.PathLike | None = None) -> dict[str, Channel]:
    """The configured channels by name (see the module doc); ``{}`` without settings."""
    settings = load_settings(ws, path)
    return {name: _Lazy(name, spec, settings) for name, spec in settings.channels.items()}


def prepare(channel: Channel) -> Channel:
    """A channel ready to send (its secrets read); channels without ``prepare`` as they are."""
    ready = getattr(channel, "prepare", None)
    return ready() if callable(ready) else channel
