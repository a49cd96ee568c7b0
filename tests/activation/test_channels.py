"""Channel settings (segmentum.yaml) and the SMTP channel against a real local aiosmtpd server."""

from __future__ import annotations

import datetime as dt
import email
import email.policy

import pytest

from segmentum.activation.channels import load_channels, load_settings, prepare
from segmentum.activation.channels.mime import mime_bytes
from segmentum.activation.channels.smtp import build_email, email_headers
from segmentum.activation.consent import read_unsubscribe_token
from segmentum.activation.message import Origin, OutboundMessage, message_key
from segmentum.errors import ChannelError, ConfigError

from tests.activation.sendkit import UNSUB_SECRET, SmtpSink, scheduled, secrets_env, send_settings

T = dt.datetime(2026, 11, 1, 9, tzinfo=dt.UTC)
ORIGIN = Origin("campaign", "news", "2026-11-01T09:00:00Z")


# -- settings ----------------------------------------------------------------------------
def test_defaults_without_a_file(tmp_path):
    s = load_settings(None)
    assert s.timezone == "UTC" and s.channels == {} and s.caps == ()


def test_settings_file_is_read_with_channels_caps_and_zone(tmp_path):
    path = send_settings(tmp_path, smtp_port=2525, webhook_url="http://127.0.0.1:9/hook",
                         extra="caps:\n  - {tag: marketing, limit: 2, window: 7d}")
    s = load_settings(path=path)
    assert s.timezone == "Europe/Warsaw"
    assert s.caps[0].window == dt.timedelta(days=7) and s.caps[0].channel == "*"
    ch = load_channels(path=path)
    assert {n: (c.kind, c.address_field, c.consent_field) for n, c in ch.items()} == {
        "email": ("email", "email", "email_opt_in"),
        "sms": ("webhook", "phone", "sms_opt_in"),
        "archive": ("outbox", "email", "email_opt_in"),
    }


@pytest.mark.parametrize(
    "text, where, what",
    [
        ("channels:\n  email:\n    type: smtp\n    host: h\n    from: a@b.test\n    prot: 25\n",
         "channels.email.prot", "unknown key 'prot'"),
        ("channels:\n  email:\n    type: smpt\n    host: h\n", "channels.email", "type is one of"),
        ("channels:\n  hook:\n    type: webhook\n    url: ftp://x\n    secret_env: S\n"
         "    address_field: phone\n    consent_field: sms_opt_in\n", "channels.hook.url", "https://"),
        ("timezone: Europe/Warsa\n", "timezone", "unknown time zone"),
        ("caps:\n  - {limit: 2, window: 7 days}\n", "caps.0.window", "a duration"),
        ("channels:\n  email:\n    type: smtp\n    host: h\n    from: a@b.test\n"
         "    unsubscribe: {url: 'http://x/{token}', secret_env: S}\n",
         "channels.email.unsubscribe.url", "https://"),
    ],
)
def test_config_errors_name_file_key_and_line(tmp_path, text, where, what):
    path = tmp_path / "segmentum.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_settings(path=path)
    err = info.value
    assert err.details["key"] == where and what in str(err)
    assert err.details["file"] == str(path) and err.details["line"] >= 1
    assert str(path) in str(err)


def test_unknown_key_suggests_the_right_one(tmp_path):
    path = tmp_path / "segmentum.yaml"
    path.write_text("channels:\n  email:\n    type: smtp\n    host: h\n    from: a@b.test\n"
                    "    pasword_env: X\n")
    with pytest.raises(ConfigError, match='password_env') as info:
        load_settings(path=path)
    assert info.value.details["line"] == 6


def test_missing_secret_is_named_when_the_channel_is_prepared(tmp_path, monkeypatch):
    monkeypatch.delenv("TEST_UNSUB_SECRET", raising=False)
    ch = load_channels(path=send_settings(tmp_path, smtp_port=2525))
    with pytest.raises(ConfigError, match="TEST_UNSUB_SECRET") as info:
        prepare(ch["email"])
    assert info.value.details["key"] == "channels.email.unsubscribe.secret_env"


def test_bad_yaml_is_located(tmp_path):
    path = tmp_path / "segmentum.yaml"
    path.write_text("channels:\n  email: [unclosed\n")
    with pytest.raises(ConfigError, match="line") as info:
        load_settings(path=path)
    assert info.value.details["line"] >= 2


# -- MIME ----------------------------------------------------------------------------------
CASES = [
    ("Hello Anna\n" * 20, "<p>Hello Anna</p>" * 20, "Hi", "Shop <news@shop.test>"),
    ("Zażółć gęślą jaźń\nline 2", "<p>Cześć – 10 €</p>", "Nowości: żółty", "Sklep Łódź <n@shop.test>"),
    ("only text", None, "x", "a@b.test"),
    ("x" * 1500 + "\n.\n..dot", "<p>" + "y" * 2000 + "</p>", "long", "a@b.test"),
    ("a=b\n\n\nend\n\n", "", "s" * 200, "a@b.test"),
    ("Zażółć\n\n", None, "ż", "a@b.test"),
    ("tab\there  \ntrailing space \n", "x\r\ny", "a", "a@b.test"),
]


@pytest.mark.parametrize("text, html, subject, sender", CASES)
def test_mime_writer_builds_what_email_message_builds(text, html, subject, sender):
    msg = OutboundMessage(message_key(ORIGIN, "C1", "email"), ORIGIN, "C1", "email", "c1@x.test",
                          subject, text, html, ("marketing",), T, None)
    headers = email_headers(msg, sender, "shop.test",
                            unsubscribe={"List-Unsubscribe": "<https://shop.test/u?t=abc>"})
    ours = email.message_from_bytes(mime_bytes(headers, text, html), policy=email.policy.default)
    ref_msg = build_email(headers, text, html)
    ref = email.message_from_bytes(ref_msg.as_bytes(policy=email.policy.SMTP),
                                   policy=email.policy.default)
    for name in ("From", "To", "Subject", "Date", "Message-ID", "List-Unsubscribe"):
        assert str(ours[name]) == str(ref[name])
    assert [p.get_content_type() for p in ours.walk()] == [p.get_content_type() for p in ref.walk()]
    leaves = [p.get_content() for p in ours.walk() if not p.is_multipart()]
    assert leaves == [p.get_content() for p in ref.walk() if not p.is_multipart()]
    assert not ours.defects


def test_mime_writer_declines_what_it_does_not_handle():
    assert mime_bytes([("To", "żółw@przykład.pl")], "x", None) is None  # a non-ASCII address
    assert mime_bytes([("X-Long", "y" * 1000)], "x", None) is None
    assert mime_bytes([("Subject", "a\r\nBcc: evil@x")], "x", None) is None  # header injection


# -- SMTP ----------------------------------------------------------------------------------
@pytest.fixture
def smtp(tmp_path, monkeypatch):
    secrets_env(monkeypatch)
    with SmtpSink() as sink:
        channels = load_channels(path=send_settings(tmp_path, smtp_port=sink.port, timeout=2))
        yield sink, channels["email"]
        channels["email"].close()


def test_marketing_mail_has_key_message_id_and_one_click_unsubscribe(smtp):
    sink, channel = smtp
    [d] = scheduled(ORIGIN, ["C7"], T)
    receipt = channel.send(d.message)
    [got] = sink.messages
    assert got["Message-ID"] == f"<{d.message.key}@shop.test>" == receipt.provider_id
    assert got["To"] == "c7@example.test" and got["Subject"] == "Hello C7"
    assert got["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    links = [x.strip(" <>") for x in str(got["List-Unsubscribe"]).split(",")]
    assert links[0].startswith("https://shop.test/u?t=") and links[1].startswith("mailto:")
    assert read_unsubscribe_token(UNSUB_SECRET, links[0].split("t=")[1]) == ("C7", "email")
    assert got.get_content_type() == "multipart/alternative"
    parts = [p.get_content_type() for p in got.iter_parts()]
    assert parts == ["text/plain", "text/html"]
    assert got.get_body(("html",)).get_content().strip() == "<p>Hello C7</p>"


def test_transactional_mail_carries_no_unsubscribe_headers(smtp):
    sink, channel = smtp
    [d] = scheduled(Origin("transactional", "receipt", "o-1"), ["C1"], T, tags=("transactional",))
    channel.send(d.message)
    [got] = sink.messages
    assert got["List-Unsubscribe"] is None and got["List-Unsubscribe-Post"] is None


def test_one_connection_is_reused_and_a_dropped_one_reconnected(smtp):
    sink, channel = smtp
    for d in scheduled(ORIGIN, [f"C{i}" for i in range(5)], T):
        channel.send(d.message)
    assert sink.connections == 1 and len(sink.messages) == 5
    sink.restart()  # the server drops the connection (an idle timeout, a restart)
    channel.send(scheduled(ORIGIN, ["C9"], T)[0].message)
    assert sink.connections == 2 and len(sink.messages) == 6


def test_replies_are_classified_transient_permanent_uncertain(smtp):
    sink, channel = smtp
    sink.reject["c1@example.test"] = "451 4.7.1 try again later"
    sink.reject["c2@example.test"] = "550 5.1.1 no such user"
    sink.drop_after_data.add("c3@example.test")
    msgs = {d.contact_id: d.message for d in scheduled(ORIGIN, ["C1", "C2", "C3", "C4"], T)}
    with pytest.raises(ChannelError, match="451") as e1:
        channel.send(msgs["C1"])
    assert e1.value.transient and not e1.value.uncertain
    with pytest.raises(ChannelError, match="550") as e2:
        channel.send(msgs["C2"])
    assert not e2.value.transient and not e2.value.uncertain
    with pytest.raises(ChannelError, match="may have been delivered") as e3:
        channel.send(msgs["C3"])
    assert e3.value.uncertain
    channel.send(msgs["C4"])  # the channel carries on after each of them
    assert [m["To"] for m in sink.messages] == ["c3@example.test", "c4@example.test"]


def test_an_unreachable_server_is_a_transient_error(tmp_path, monkeypatch):
    secrets_env(monkeypatch)
    from tests.activation.sendkit import free_port

    ch = load_channels(path=send_settings(tmp_path, smtp_port=free_port(), timeout=1))["email"]
    with pytest.raises(ChannelError, match="cannot connect") as info:
        ch.send(scheduled(ORIGIN, ["C1"], T)[0].message)
    assert info.value.transient and not info.value.uncertain
