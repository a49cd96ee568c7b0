"""Acknowledged means durable: SIGKILL the server at random moments under load, restart it,
let the clients retry what was not acknowledged; every event is then stored exactly once,
in the intake log and in the workspace."""

from __future__ import annotations

import random
import threading
import time
from collections import Counter

import httpx
import orjson
import pytest

from segmentum import open_workspace
from segmentum.live.segment_log import SegmentLog
from tests.service._server import Server, basic, new_key

N_EVENTS = 3000
KILLS = 3


class Client(threading.Thread):
    """Sends its events in random batches, retrying every batch until it gets a 200."""

    def __init__(self, name: str, ids: list[str], key: str, url: list[str], seed: int):
        super().__init__(name=name, daemon=True)
        self.todo, self.key, self.url, self.rng = list(ids), key, url, random.Random(seed)
        self.acked: list[str] = []
        self.failures = 0

    def run(self) -> None:
        with httpx.Client(timeout=5) as http:
            while self.todo:
                batch = self.todo[: self.rng.randint(1, 25)]
                body = {"batch": [{"type": "track", "userId": f"u{int(m[2:]) % 40}", "event": "Product Viewed",
                                   "messageId": m, "properties": {"n": m}} for m in batch]}
                try:
                    r = http.post(self.url[0] + "/v1/batch", content=orjson.dumps(body), headers=basic(self.key))
                except httpx.HTTPError:
                    r = None
                if r is not None and r.status_code == 200:
                    self.acked += batch
                    del self.todo[: len(batch)]
                    time.sleep(self.rng.uniform(0, 0.04))  # keep sending through the kills
                else:  # not acknowledged: send it again (the server may have stored it)
                    self.failures += 1
                    time.sleep(0.02)


@pytest.mark.slow
def test_sigkill_loses_no_acknowledged_event_and_stores_none_twice(tmp_path):
    ws = tmp_path / "ws.duckdb"
    key = new_key(ws, "web")
    rng = random.Random(16)
    server = Server(ws).start()
    url = [server.url]
    ids = [f"m-{i}" for i in range(N_EVENTS)]
    clients = [Client(f"c{n}", ids[n::4], key, url, seed=n) for n in range(4)]
    for c in clients:
        c.start()
    for _ in range(KILLS):
        time.sleep(rng.uniform(0.2, 1.0))
        assert any(c.todo for c in clients), "the clients finished before the kills"
        server.kill()  # SIGKILL: no shutdown, no flush
        server = Server(ws).start()
        url[0] = server.url
    for c in clients:
        c.join(timeout=120)
        assert not c.is_alive() and not c.todo
    server.wait_applied()
    assert server.stop() in (0, -15)
    assert sum(c.failures for c in clients) > 0  # the kills did hit requests in flight
    acked = [m for c in clients for m in c.acked]
    assert sorted(acked) == sorted(ids)

    with SegmentLog(str(ws) + ".intake/log") as log:
        stored, pos = Counter(), 0
        while records := log.read(0, pos, 1000):
            stored.update(orjson.loads(r.value)["messageId"] for r in records)
            pos = records[-1].offset.position + 1
    assert set(stored) == set(ids) and max(stored.values()) == 1
    with open_workspace(ws) as w:
        events = w.to_pandas(w.table("events").select("event_id"))
    assert sorted(events.event_id) == sorted(f"web:{m}" for m in ids)
