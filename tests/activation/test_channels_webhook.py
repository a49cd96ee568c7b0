"""The webhook channel against a real local HTTP receiver, and the file outbox."""

from __future__ import annotations

import datetime as dt
import json
import os

import pytest

from segmentum.activation.channels import load_channels
from segmentum.activation.channels.webhook import SIGNATURE, TIMESTAMP, verify
from segmentum.activation.message import Origin
from segmentum.errors import ChannelError

from tests.activation.sendkit import WEBHOOK_SECRET, WebhookSink, scheduled, secrets_env, send_settings

T = dt.datetime(2026, 11, 1, 9, tzinfo=dt.UTC)
ORIGIN = Origin("trigger", "back-in-stock", "occ-1")


def sms(tmp_path, url, **kw):
    return load_channels(path=send_settings(tmp_path, webhook_url=url, **kw))["sms"]


def message(cid="C1"):
    return scheduled(ORIGIN, [cid], T, channel="sms", to=lambda c: "+48600000001")[0].message


def test_signed_json_post_with_idempotency_key(tmp_path, monkeypatch):
    secrets_env(monkeypatch)
    with WebhookSink() as hook:
        channel = sms(tmp_path, hook.url)
        receipt = channel.send(message())
        channel.close()
    [req] = hook.requests
    body, headers = req["body"], req["headers"]
    assert verify(WEBHOOK_SECRET, headers[TIMESTAMP], body, headers[SIGNATURE])
    assert not verify("wrong", headers[TIMESTAMP], body, headers[SIGNATURE])
    assert not verify(WEBHOOK_SECRET, headers[TIMESTAMP], body + b" ", headers[SIGNATURE])
    data = json.loads(body)
    assert data["to"] == "+48600000001" and data["origin"]["kind"] == "trigger"
    assert headers["Idempotency-Key"] == data["key"] == message().key
    assert receipt.provider_id == "wh-1"


def test_5xx_is_retried_with_backoff_then_succeeds(tmp_path, monkeypatch):
    secrets_env(monkeypatch)
    with WebhookSink(statuses=[500, 503]) as hook:
        channel = sms(tmp_path, hook.url, retries=3)
        assert channel.send(message()).provider_id == "wh-3"
    assert len(hook.requests) == 3
    keys = {r["headers"]["Idempotency-Key"] for r in hook.requests}
    assert len(keys) == 1  # the same message each time


def test_4xx_is_not_retried_and_is_permanent(tmp_path, monkeypatch):
    secrets_env(monkeypatch)
    with WebhookSink(statuses=[422]) as hook:
        with pytest.raises(ChannelError, match="HTTP 422") as info:
            sms(tmp_path, hook.url, retries=3).send(message())
    assert len(hook.requests) == 1
    assert not info.value.transient and not info.value.uncertain


def test_retries_run_out_transient(tmp_path, monkeypatch):
    secrets_env(monkeypatch)
    with WebhookSink(statuses=[500, 500, 500]) as hook:
        with pytest.raises(ChannelError, match="after 3 attempts") as info:
            sms(tmp_path, hook.url, retries=2).send(message())
    assert len(hook.requests) == 3 and info.value.transient and not info.value.uncertain


def test_timeout_is_uncertain(tmp_path, monkeypatch):
    secrets_env(monkeypatch)
    with WebhookSink(delay=0.5) as hook:
        with pytest.raises(ChannelError, match="no reply within") as info:
            sms(tmp_path, hook.url, retries=1, timeout=0.2).send(message())
    assert len(hook.requests) == 2  # the timeout was retried
    assert info.value.transient and info.value.uncertain


def test_backoff_is_exponential_with_full_jitter(tmp_path, monkeypatch):
    secrets_env(monkeypatch)
    waits = []
    with WebhookSink(statuses=[500] * 4) as hook:
        channel = sms(tmp_path, hook.url, retries=3)
        impl = channel.prepare()
        impl._sleep = waits.append
        with pytest.raises(ChannelError):
            channel.send(message())
    assert len(waits) == 3
    for attempt, wait in enumerate(waits, start=1):
        assert 0 <= wait <= 0.01 * 2 ** (attempt - 1)


# -- outbox --------------------------------------------------------------------------------
def test_outbox_writes_one_line_per_key_and_survives_a_torn_tail(tmp_path):
    path = send_settings(tmp_path)
    channel = load_channels(path=path)["archive"]
    msgs = [d.message for d in scheduled(ORIGIN, ["C1", "C2"], T, channel="archive")]
    first = channel.send(msgs[0])
    again = channel.send(msgs[0])
    channel.send(msgs[1])
    channel.close()
    outbox = tmp_path / "outbox" / "messages.jsonl"
    lines = outbox.read_text().splitlines()
    assert [json.loads(x)["key"] for x in lines] == [msgs[0].key, msgs[1].key]
    assert first.provider_id == again.provider_id == f"{outbox}:1"
    assert again.detail == "already in the outbox"
    with open(outbox, "ab") as f:  # a crash in the middle of writing a third line
        f.write(b'{"key": "torn')
    channel = load_channels(path=path)["archive"]
    channel.send(msgs[1])  # already there: nothing added
    [d3] = scheduled(ORIGIN, ["C3"], T, channel="archive")
    assert channel.send(d3.message).provider_id == f"{outbox}:3"
    channel.close()
    keys = [json.loads(x)["key"] for x in outbox.read_text().splitlines()]
    assert keys == [msgs[0].key, msgs[1].key, d3.message.key]


def test_outbox_that_cannot_be_opened_is_a_channel_error(tmp_path):
    (tmp_path / "outbox").write_text("a file where the folder should be")
    channel = load_channels(path=send_settings(tmp_path))["archive"]
    with pytest.raises(ChannelError, match="cannot open the outbox"):
        channel.send(scheduled(ORIGIN, ["C1"], T, channel="archive")[0].message)
    assert not os.path.isdir(tmp_path / "outbox")
