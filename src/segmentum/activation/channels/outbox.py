"""A file outbox: one JSON Lines line per message, fsync'd, idempotent on the message key.

Each line is the message as a webhook receives it (``channels.webhook.message_json``)
plus ``written_at``. A key already in the file is not written again, so a resend after
a crash leaves one line per message. The receipt's provider id is ``FILE:LINE``.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
from pathlib import Path

from segmentum.activation.channels.base import Configured, Receipt
from segmentum.activation.channels.config import OutboxSpec
from segmentum.activation.channels.webhook import message_json
from segmentum.activation.message import OutboundMessage
from segmentum.errors import ChannelError

__all__ = ["OutboxChannel"]


class OutboxChannel(Configured):
    """The JSON Lines file configured by :class:`OutboxSpec` (see the module doc)."""

    kind = "outbox"

    def __init__(self, name: str, spec: OutboxSpec, folder: Path) -> None:
        super().__init__(name, spec)
        self.path = (folder / spec.path).resolve()
        self._keys: dict[str, int] | None = None
        self._lines = 0
        self._fd: int | None = None

    def _open(self) -> int:
        if self._fd is None:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._keys = self._read_keys()
                self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
            except OSError as exc:
                raise ChannelError(f"Channel {self.name!r}: cannot open the outbox {self.path}: "
                                   f"{exc.strerror or exc}", channel=self.name) from None
        return self._fd

    def _read_keys(self) -> dict[str, int]:
        """Key -> line number of every complete line (a torn last line is rewritten)."""
        keys: dict[str, int] = {}
        if not self.path.exists():
            return keys
        data = self.path.read_bytes()
        complete = data[: data.rfind(b"\n") + 1]
        if len(complete) != len(data):  # a crash in the middle of a write: drop the torn tail
            os.truncate(self.path, len(complete))
        lines = complete.splitlines()
        self._lines = len(lines)
        for number, line in enumerate(lines, start=1):
            try:
                keys[json.loads(line)["key"]] = number
            except (ValueError, KeyError, TypeError):
                continue
        return keys

    def send(self, msg: OutboundMessage) -> Receipt:
        fd = self._open()
        assert self._keys is not None
        if msg.key in self._keys:
            return Receipt(f"{self.path}:{self._keys[msg.key]}", "already in the outbox")
        record = json.loads(message_json(msg))
        record["written_at"] = _dt.datetime.now(_dt.UTC).isoformat()
        line = json.dumps(record, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"
        try:
            os.write(fd, line)
            os.fsync(fd)
        except OSError as exc:
            raise ChannelError(f"Channel {self.name!r}: cannot write the outbox {self.path}: "
                               f"{exc.strerror or exc}", transient=True, uncertain=True,
                               channel=self.name) from None
        self._lines += 1
        self._keys[msg.key] = self._lines
        return Receipt(f"{self.path}:{self._keys[msg.key]}", None)

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
