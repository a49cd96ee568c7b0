"""The live demo end to end: simulated visitors through the tracking API with the official
Segment client, a refresh as the web app's button does, new buyers entering ``new-buyers``
and the welcome trigger's e-mails landing in the local inbox."""

from __future__ import annotations

import time

import httpx
import pytest

from segmentum.service.keys import KeyStore, keys_path
from segmentum.web.demo import MARK, Visitors, prepare
from segmentum.web.inbox import SmtpSink, inbox_dir, read_inbox
from tests.service._server import Server
from tests.workspaces import generated_workspace

pytestmark = pytest.mark.slow


def test_visitors_fill_segments_and_the_welcome_mail_lands(tmp_path):
    ws, _manifest, _data = generated_workspace(tmp_path, contacts=400, seed=2)
    ws.close()
    path = tmp_path / "ws.duckdb"
    with SmtpSink(inbox_dir(path)) as sink:
        ready = prepare(path, sink.port)
        assert (tmp_path / "segmentum.yaml").read_text().startswith(MARK)
        assert prepare(path, sink.port)["channel_file_ours"]  # a second run keeps it ours
        with Server(path, env={"UNSUBSCRIBE_SECRET": "s"}) as server:
            key = KeyStore(keys_path(path)).create("demo-visitors", ["track"])[1]
            visitors = Visitors(server.url, key, ready["contacts"], ready["products"], seed=4)
            httpx.post(f"{server.url}/segments/refresh", headers={"HX-Request": "true"}, timeout=120)
            for _ in range(60):  # about 15 sign-ups who order
                visitors.visit()
            visitors.client.flush()
            server.wait_applied()
            page = httpx.post(f"{server.url}/segments/refresh", headers={"HX-Request": "true"}, timeout=120)
            assert page.status_code == 200 and "new-buyers" in page.text
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and not read_inbox(inbox_dir(path))[0]:
                time.sleep(0.5)
            total, messages = read_inbox(inbox_dir(path))
            assert total > 0 and all(m.subject.startswith("Welcome") for m in messages)
            assert all(m.to.startswith("live-") for m in messages)  # the new buyers, nobody else
            inbox = httpx.get(f"{server.url}/inbox").text
            assert messages[0].subject.split(",")[0] in inbox


def test_a_channel_file_of_your_own_is_left_alone(tmp_path):
    ws, _manifest, _data = generated_workspace(tmp_path, contacts=150, seed=1)
    ws.close()
    mine = tmp_path / "segmentum.yaml"
    mine.write_text("channels: {}\n")
    assert prepare(tmp_path / "ws.duckdb", 2525)["channel_file_ours"] is False
    assert mine.read_text() == "channels: {}\n"
