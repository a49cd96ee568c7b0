"""E-mail over SMTP: one connection reused across messages, STARTTLS / SSL / auth.

Each message is text, or text + HTML as multipart/alternative, written by
``channels.mime`` (the same bytes ``email.message.EmailMessage`` would build, which
:func:`build_email` still does for what ``mime`` leaves to it). Its Message-ID is derived
from the message key (``<KEY@domain>``), so a resent message can be recognised by the
receiver. Marketing mail
carries ``List-Unsubscribe`` (the signed https link, and a mailto if configured) and
``List-Unsubscribe-Post: List-Unsubscribe=One-Click`` (RFC 8058); transactional mail
carries neither.

The envelope is sent step by step (MAIL, RCPT, DATA), so a failure is classified by
where it happened: before DATA nothing was handed over (a dropped connection is
reconnected and tried once more); a reply of 4xx is transient, 5xx permanent; a broken
connection after the DATA content went out is *uncertain* (the server may have queued it).
"""

from __future__ import annotations

import email.utils
import smtplib
import socket
import ssl
from email.message import EmailMessage

from segmentum.activation.channels.base import Configured, Receipt
from segmentum.activation.channels.config import SmtpSpec
from segmentum.activation.channels.mime import mime_bytes
from segmentum.activation.consent import unsubscribe_token
from segmentum.activation.message import OutboundMessage
from segmentum.errors import ChannelError

__all__ = ["SmtpChannel", "email_headers", "email_bytes", "build_email"]

_NETWORK = (smtplib.SMTPServerDisconnected, ConnectionError, socket.timeout, TimeoutError, OSError)


class SmtpChannel(Configured):
    """An SMTP server configured by :class:`SmtpSpec` (see the module doc)."""

    kind = "email"

    def __init__(self, name: str, spec: SmtpSpec, *, password: str | None = None,
                 unsubscribe_secret: str | None = None) -> None:
        super().__init__(name, spec)
        self._password = password
        self._unsub_secret = unsubscribe_secret
        self._conn: smtplib.SMTP | None = None
        self.domain = spec.message_id_domain or _domain(spec.from_)
        self._envelope_from = email.utils.parseaddr(spec.from_)[1]

    # -- the connection ------------------------------------------------------------------
    def _connect(self) -> smtplib.SMTP:
        s = self.spec
        try:
            if s.security == "ssl":
                conn: smtplib.SMTP = smtplib.SMTP_SSL(s.host, s.port, timeout=s.timeout,
                                                      context=ssl.create_default_context())
            else:
                conn = smtplib.SMTP(s.host, s.port, timeout=s.timeout)
                if s.security == "starttls":
                    conn.starttls(context=ssl.create_default_context())
            conn.ehlo_or_helo_if_needed()
            if s.username:
                conn.login(s.username, self._password or "")
        except smtplib.SMTPAuthenticationError as exc:
            raise self._error(f"the server refused the login of {s.username!r}", exc) from None
        except (smtplib.SMTPException, ssl.SSLError, *_NETWORK) as exc:
            raise self._error(f"cannot connect to {s.host}:{s.port}", exc, transient=True) from None
        return conn

    def _error(self, what: str, exc: BaseException | None = None, *, transient: bool = False,
               uncertain: bool = False) -> ChannelError:
        detail = f": {_describe(exc)}" if exc is not None else ""
        return ChannelError(f"Channel {self.name!r} (SMTP): {what}{detail}", transient=transient,
                            uncertain=uncertain, channel=self.name)

    def close(self) -> None:
        if self._conn is not None:
            try:
                self._conn.quit()
            except (smtplib.SMTPException, *_NETWORK):
                self._conn.close()
            self._conn = None

    # -- sending ---------------------------------------------------------------------------
    def send(self, msg: OutboundMessage) -> Receipt:
        headers = email_headers(msg, self.spec.from_, self.domain, reply_to=self.spec.reply_to,
                                unsubscribe=self._unsubscribe_headers(msg))
        data = email_bytes(headers, msg.text, msg.html)
        for attempt in (1, 2):
            if self._conn is None:
                self._conn = self._connect()
            try:
                self._transaction(self._conn, data, msg.to)
                return Receipt(provider_id=dict(headers)["Message-ID"], detail=None)
            except _Reconnect as exc:
                self._drop()
                if attempt == 2:
                    raise self._error("the server closed the connection before the message",
                                      exc.__cause__, transient=True) from None
        raise AssertionError("unreachable")

    def _transaction(self, conn: smtplib.SMTP, data: bytes, to: str) -> None:
        """MAIL, RCPT, DATA, each failure classified (see the module doc)."""
        try:
            code, reply = conn.mail(self._envelope_from)
            if code != 250:
                self._refused(conn, "MAIL FROM", code, reply)
            code, reply = conn.rcpt(to)
            if code not in (250, 251):
                self._refused(conn, f"recipient {to}", code, reply)
        except _NETWORK as exc:
            raise _Reconnect() from exc
        try:
            code, reply = conn.data(data)
        except smtplib.SMTPDataError as exc:
            self._rset(conn)
            raise self._error("the server refused the message", exc,
                              transient=400 <= exc.smtp_code < 500) from None
        except _NETWORK as exc:
            self._drop()
            raise self._error("the connection broke while the message was handed over; it may "
                              "have been delivered", exc, transient=True, uncertain=True) from None
        if code != 250:
            self._refused(conn, "the message", code, reply)

    def _refused(self, conn, what: str, code: int, reply: bytes) -> None:
        self._rset(conn)
        text = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else str(reply)
        raise self._error(f"the server refused {what}: {code} {text}", transient=400 <= code < 500)

    def _rset(self, conn) -> None:
        try:
            conn.rset()
        except (smtplib.SMTPException, *_NETWORK):
            self._drop()

    def _drop(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            finally:
                self._conn = None

    def _unsubscribe_headers(self, msg: OutboundMessage) -> dict[str, str]:
        """List-Unsubscribe and List-Unsubscribe-Post for marketing mail (none for transactional)."""
        if msg.transactional:
            return {}
        u = self.spec.unsubscribe
        if u is None or not self._unsub_secret:
            raise self._error("marketing mail needs an unsubscribe link: configure "
                              f"channels.{self.name}.unsubscribe (url, secret_env)")
        token = unsubscribe_token(self._unsub_secret, msg.contact_id, self.name)
        links = [f"<{u.url.replace('{token}', token)}>"]
        if u.mailto:
            links.append(f"<mailto:{u.mailto}?subject=unsubscribe%20{token}>")
        return {"List-Unsubscribe": ", ".join(links),
                "List-Unsubscribe-Post": "List-Unsubscribe=One-Click"}


class _Reconnect(Exception):
    """The connection was gone before the message was handed over: safe to try again."""


def email_headers(msg: OutboundMessage, sender: str, domain: str, *, reply_to: str | None = None,
                  unsubscribe: dict[str, str] | None = None) -> list[tuple[str, str]]:
    """The headers of one outbound message, in order (the MIME ones are added on writing)."""
    headers = [("From", sender), ("To", msg.to), ("Subject", msg.subject or ""),
               ("Date", email.utils.format_datetime(msg.send_at)),
               ("Message-ID", f"<{msg.key}@{domain}>")]
    if reply_to:
        headers.append(("Reply-To", reply_to))
    headers.extend({**(unsubscribe or {}), **dict(msg.headers)}.items())
    return headers


def email_bytes(headers: list[tuple[str, str]], text: str | None, html: str | None) -> bytes:
    """SMTP DATA bytes: written by ``channels.mime``, or by EmailMessage when it declines."""
    if text is None:
        text = _text_of(html or "")
    fast = mime_bytes(headers, text, html)
    if fast is not None:
        return fast
    mail = build_email(headers, text, html)
    return mail.as_bytes(policy=mail.policy.clone(linesep="\r\n"))


def build_email(headers: list[tuple[str, str]], text: str | None, html: str | None) -> EmailMessage:
    """The same message as an ``email.message.EmailMessage``."""
    mail = EmailMessage()
    for name, value in headers:
        mail[name] = value
    mail.set_content(text if text is not None else _text_of(html or ""))
    if html is not None:
        mail.add_alternative(html, subtype="html")
    return mail


def _text_of(html: str) -> str:
    """A plain-text part for an HTML-only message (tags dropped, entities read)."""
    import html as _html
    import re

    text = re.sub(r"(?is)<(script|style).*?</\1>", "", html)
    text = re.sub(r"(?i)<br\s*/?>|</p>|</div>|</h\d>|</li>", "\n", text)
    return _html.unescape(re.sub(r"<[^>]+>", "", text)).strip() + "\n"


def _domain(address: str) -> str:
    addr = email.utils.parseaddr(address)[1]
    return addr.rpartition("@")[2] or "segmentum.invalid"


def _describe(exc: BaseException) -> str:
    if isinstance(exc, smtplib.SMTPResponseException):
        text = exc.smtp_error.decode("utf-8", "replace") if isinstance(exc.smtp_error, bytes) else exc.smtp_error
        return f"{exc.smtp_code} {text}"
    return str(exc) or type(exc).__name__
