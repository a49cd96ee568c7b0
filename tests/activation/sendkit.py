"""The send layer's test kit: real local servers, settings, contacts and planned messages.

``SmtpSink()`` listens on 127.0.0.1 (a free port) and keeps every message it accepted
(``messages``: parsed ``email.message.EmailMessage``); ``reject`` maps a recipient to an
SMTP reply (e.g. ``"451 try later"``, ``"550 no such user"``); for a recipient in
``drop_after_data`` the server keeps the message and closes the connection unanswered,
for one in ``stall_after_data`` it keeps it and waits 30 s before answering. ``WebhookSink()`` is an
``http.server`` thread that records each POST and answers from a queue of status codes.
``send_settings(dir, smtp_port=..., webhook_url=...)`` writes a ``segmentum.yaml``;
``contact_rows(n)`` and ``scheduled(origin, ids, at)`` make contacts and planned decisions.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import http.server
import json
import socket
import threading
import time
from pathlib import Path

from aiosmtpd.controller import Controller

from segmentum.activation.message import Decision, Origin, OutboundMessage, message_key

UNSUB_SECRET = "test-unsubscribe-secret"
WEBHOOK_SECRET = "test-webhook-secret"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class _Handler:
    def __init__(self, sink: SmtpSink) -> None:
        self.sink = sink

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        reply = self.sink.reject.get(address)
        if reply:
            return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        session.host_name = hostname
        self.sink.connections += 1
        return responses

    async def handle_DATA(self, server, session, envelope):
        with self.sink.lock:
            self.sink.raw.append(envelope.content)
        if set(envelope.rcpt_tos) & self.sink.drop_after_data:
            server.transport.close()  # took the message, never said so
        if set(envelope.rcpt_tos) & self.sink.stall_after_data:
            await asyncio.sleep(30)  # took the message, says so only much later
        return "250 OK queued"


class SmtpSink:
    """An aiosmtpd server on 127.0.0.1 keeping what it accepts (see the module doc)."""

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.raw: list[bytes] = []
        self.reject: dict[str, str] = {}
        self.drop_after_data: set[str] = set()
        self.stall_after_data: set[str] = set()
        self.connections = 0
        self.lock = threading.Lock()
        self.controller = Controller(_Handler(self), hostname="127.0.0.1", port=self.port)

    def __enter__(self) -> SmtpSink:
        self.controller.start()
        return self

    def __exit__(self, *exc) -> None:
        self.controller.stop()

    def restart(self) -> None:
        """Stop the server (its connections drop) and start a new one on the same port."""
        self.controller.stop()
        self.controller = Controller(_Handler(self), hostname="127.0.0.1", port=self.port)
        self.controller.start()

    @property
    def messages(self) -> list[email.message.EmailMessage]:
        with self.lock:
            raw = list(self.raw)
        return [email.message_from_bytes(b, policy=email.policy.default) for b in raw]


class WebhookSink:
    """An HTTP receiver on 127.0.0.1 recording POSTs, answering ``statuses`` in turn (then 200)."""

    def __init__(self, statuses: list[int] | None = None, delay: float = 0.0) -> None:
        self.statuses = list(statuses or [])
        self.delay = delay
        self.requests: list[dict] = []
        sink = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                sink.requests.append({"headers": dict(self.headers), "body": body,
                                      "at": time.monotonic()})
                status = sink.statuses.pop(0) if sink.statuses else 200
                if sink.delay:
                    time.sleep(sink.delay)
                reply = json.dumps({"id": f"wh-{len(sink.requests)}"}).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(reply)))
                    self.end_headers()
                    self.wfile.write(reply)
                except OSError:  # the client gave up (a timeout test)
                    pass

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def __enter__(self) -> WebhookSink:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()


def send_settings(folder, *, smtp_port: int | None = None, webhook_url: str | None = None,
                  extra: str = "", timeout: float = 5, retries: int = 2) -> Path:
    """A segmentum.yaml in ``folder`` with the channels the tests use."""
    parts = ["timezone: Europe/Warsaw", extra, "channels:"]
    if smtp_port:
        parts.append(f"""  email:
    type: smtp
    host: 127.0.0.1
    port: {smtp_port}
    security: none
    from: "Shop <news@shop.test>"
    timeout: {timeout}
    unsubscribe: {{url: "https://shop.test/u?t={{token}}", secret_env: TEST_UNSUB_SECRET,
                  mailto: unsubscribe@shop.test}}""")
    if webhook_url:
        parts.append(f"""  sms:
    type: webhook
    url: {webhook_url}
    secret_env: TEST_WEBHOOK_SECRET
    address_field: phone
    consent_field: sms_opt_in
    timeout: {timeout}
    retries: {retries}
    backoff: 0.01""")
    parts.append("""  archive:
    type: outbox
    path: outbox/messages.jsonl""")
    path = Path(folder) / "segmentum.yaml"
    path.write_text("\n".join(parts) + "\n", encoding="utf-8")
    return path


def contact_rows(n: int, *, opt_in=lambda i: True, timezone="Europe/Warsaw") -> list[dict]:
    """Contacts C0..C{n-1} with an e-mail and phone, opted in where ``opt_in(i)``."""
    return [{"contact_id": f"C{i}", "email": f"c{i}@example.test", "phone": f"+4860000{i:04d}",
             "created_at": "2026-01-01T00:00:00Z", "timezone": timezone,
             "email_opt_in": opt_in(i), "sms_opt_in": opt_in(i)} for i in range(n)]


def scheduled(origin: Origin, ids, at, *, channel="email", tags=("marketing",), expires_at=None,
              outcome="scheduled", to=None) -> list[Decision]:
    """A scheduled decision with a message for each contact id."""
    out = []
    for cid in ids:
        address = to(cid) if to else f"{cid.lower()}@example.test"
        msg = OutboundMessage(message_key(origin, cid, channel), origin, cid, channel, address,
                              f"Hello {cid}", f"Hello {cid}\n", f"<p>Hello {cid}</p>", tuple(tags),
                              at, expires_at, data={"n": cid})
        out.append(Decision(cid, outcome, "treatment", None, msg, at))
    return out


def secrets_env(monkeypatch) -> None:
    monkeypatch.setenv("TEST_UNSUB_SECRET", UNSUB_SECRET)
    monkeypatch.setenv("TEST_WEBHOOK_SECRET", WEBHOOK_SECRET)
