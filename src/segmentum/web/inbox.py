"""A local inbox: an SMTP sink on 127.0.0.1 that keeps every message it is sent, and the
reader the web app's ``/inbox`` page shows them with.

    sink = SmtpSink(inbox_dir("shop.duckdb")).start()     # sink.port: point an smtp channel at it
    ...
    sink.stop()
    read_inbox(inbox_dir("shop.duckdb"))                  # newest first

Messages are files ``<workspace>.inbox/<received>-<n>.eml`` (written to a temporary name,
then renamed, so a reader never sees half a message). The sink accepts any sender and
recipient and never relays: it is for demos and tests, in place of a real mail server.
It needs ``aiosmtpd`` (the ``demo`` and ``test`` extras); reading needs nothing.
"""

from __future__ import annotations

import datetime as _dt
import email
import email.policy
import itertools
import os
from dataclasses import dataclass
from pathlib import Path

__all__ = ["inbox_dir", "SmtpSink", "Message", "read_inbox"]


def inbox_dir(workspace: str | os.PathLike) -> Path:
    """Where the local inbox of a workspace keeps its messages."""
    return Path(f"{Path(workspace).resolve()}.inbox")


class _Keep:
    """aiosmtpd handler: every message of a session becomes one file."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._n = itertools.count()

    async def handle_DATA(self, server, session, envelope) -> str:  # noqa: N802 (aiosmtpd's name)
        stamp = _dt.datetime.now(_dt.UTC).strftime("%Y%m%dT%H%M%S%fZ")
        final = self.folder / f"{stamp}-{next(self._n):06d}.eml"
        tmp = final.with_suffix(".tmp")
        data = envelope.original_content or envelope.content
        tmp.write_bytes(data if isinstance(data, bytes) else data.encode("utf-8"))
        tmp.replace(final)
        return "250 Message accepted for delivery"


class SmtpSink:
    """An SMTP server on ``host:port`` (port 0: a free one) writing into ``folder``."""

    def __init__(self, folder: str | os.PathLike, host: str = "127.0.0.1", port: int = 0) -> None:
        self.folder = Path(folder)
        self.host, self.port = host, port
        self._controller = None

    def start(self) -> SmtpSink:
        import socket

        from aiosmtpd.controller import Controller

        self.folder.mkdir(parents=True, exist_ok=True)
        if self.port == 0:
            with socket.socket() as s:
                s.bind((self.host, 0))
                self.port = s.getsockname()[1]
        self._controller = Controller(_Keep(self.folder), hostname=self.host, port=self.port)
        self._controller.start()
        return self

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def __enter__(self) -> SmtpSink:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


@dataclass(frozen=True)
class Message:
    id: str  # the file's name without .eml
    received_at: _dt.datetime
    sender: str
    to: str
    subject: str
    text: str | None
    html: str | None
    headers: dict[str, str]


def _parse(path: Path) -> Message:
    msg = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
    text = msg.get_body(("plain",))
    html = msg.get_body(("html",))
    received = _dt.datetime.fromtimestamp(path.stat().st_mtime, _dt.UTC)
    return Message(
        id=path.stem, received_at=received, sender=str(msg.get("From", "")),
        to=str(msg.get("To", "")), subject=str(msg.get("Subject", "")),
        text=text.get_content() if text is not None else None,
        html=html.get_content() if html is not None else None,
        headers={k: str(v) for k, v in msg.items()},
    )


def read_inbox(folder: str | os.PathLike, limit: int = 100, offset: int = 0) -> tuple[int, list[Message]]:
    """(how many messages, the newest ``limit`` of them after ``offset``)."""
    folder = Path(folder)
    if not folder.is_dir():
        return 0, []
    files = sorted(folder.glob("*.eml"), reverse=True)
    return len(files), [_parse(p) for p in files[offset:offset + limit]]


def one_message(folder: str | os.PathLike, message_id: str) -> Message | None:
    """One message by its id (None when there is none by that id)."""
    if not message_id or "/" in message_id or message_id.startswith("."):
        return None
    path = Path(folder) / f"{message_id}.eml"
    return _parse(path) if path.is_file() else None
