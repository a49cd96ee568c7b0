"""The official clients, unchanged, pointed at `segmentum serve`: the data reach the workspace.

segment-analytics-python 2.4.x (installed: Basic auth and writeKey in the body) and the
2.3.x behaviour (writeKey in the body only, no Authorization header, success only on exactly
200: sent byte for byte as 2.3.6's request.post builds it, and by 2.3.6 itself when pip can
fetch it), and rudder-sdk-python (gzip, Basic auth).
"""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys

import pytest
import requests

from segmentum import open_workspace
from tests.service._server import Server, new_key

T0 = dt.datetime(2026, 10, 30, 9, 0, tzinfo=dt.UTC)


def send_with(client, prefix: str) -> None:
    """identify / track / page / a batch of tracks, as an application would."""
    client.identify(f"{prefix}-u1", {"email": f"{prefix}@example.com", "firstName": "Ann"}, anonymous_id=f"{prefix}-a1")
    client.track(f"{prefix}-u1", "Product Viewed", {"sku": "SKU-1", "category": "Phones"}, timestamp=T0)
    client.page(f"{prefix}-u1", "Shop", "Home", {"url": "https://shop.example/"})
    for i in range(30):  # flushed as batches
        client.track(f"{prefix}-u2", "Email Opened", {"campaign_id": f"c{i}"}, message_id=f"{prefix}-m{i}")
    client.flush()


def check(ws_path, prefix: str, source: str) -> None:
    with open_workspace(ws_path) as ws:
        c = ws.table("contacts")
        assert ws.to_pandas(c.filter(c.contact_id == f"{prefix}-u1"))["email"].tolist() == [f"{prefix}@example.com"]
        e = ws.table("events")
        mine = ws.to_pandas(e.filter(e.contact_id.startswith(f"{prefix}-")))
        assert sorted(mine.type.unique()) == ["email_open", "page_view", "product_view"]
        assert (mine.source == source).all() and len(mine) == 32
        view = mine[mine.type == "product_view"].iloc[0]
        assert (view.sku, view.category) == ("SKU-1", "Phones")
        assert abs((view.occurred_at.to_pydatetime() - T0).total_seconds()) < 60  # skew-corrected
        i = ws.table("_identities")
        assert ws.to_pandas(i.filter(i.contact_id == f"{prefix}-u1"))["anonymous_id"].tolist() == [f"{prefix}-a1"]


def test_segment_analytics_python_24_and_rudderstack(tmp_path):
    from rudderstack.analytics import Client as RudderClient
    from segment.analytics import Client as SegmentClient

    ws = tmp_path / "ws.duckdb"
    seg_key, rudder_key = new_key(ws, "python-backend"), new_key(ws, "rudder-web")
    with Server(ws) as server:
        errors = []
        seg = SegmentClient(seg_key, host=server.url, sync_mode=False, upload_size=10, on_error=lambda e, b: errors.append(e))
        send_with(seg, "seg")
        seg.shutdown()
        rudder = RudderClient(rudder_key, host=server.url, gzip=True, upload_size=10,
                              on_error=lambda e, b: errors.append(e))
        send_with(rudder, "rud")
        rudder.shutdown()
        assert errors == []
        server.wait_applied()
    check(ws, "seg", "python-backend")
    check(ws, "rud", "rudder-web")


def post_as_23x(url: str, write_key: str, batch: list[dict]) -> requests.Response:
    """What segment-analytics-python 2.3.6's request.post sends: the key only in the body, no
    Authorization header; it treats anything but exactly 200 as a failure."""
    body = {"batch": batch, "sentAt": dt.datetime.now(dt.UTC).isoformat(), "writeKey": write_key}
    headers = {"Content-Type": "application/json", "User-Agent": "analytics-python/2.3.6"}
    return requests.post(url.rstrip("/") + "/v1/batch", data=json.dumps(body), headers=headers, timeout=15)


def _23x_messages(prefix: str) -> list[dict]:
    base = {"context": {"library": {"name": "analytics-python", "version": "2.3.6"}}, "integrations": {}}
    stamp = T0.isoformat(timespec="milliseconds")
    return [
        {**base, "type": "identify", "userId": f"{prefix}-u1", "anonymousId": f"{prefix}-a1", "messageId": f"{prefix}-i",
         "timestamp": stamp, "traits": {"email": f"{prefix}@example.com"}},
        {**base, "type": "track", "userId": f"{prefix}-u1", "event": "Product Viewed", "messageId": f"{prefix}-t",
         "timestamp": stamp, "properties": {"sku": "SKU-1", "category": "Phones"}},
        {**base, "type": "page", "userId": f"{prefix}-u1", "name": "Home", "messageId": f"{prefix}-p",
         "timestamp": stamp, "properties": {"url": "https://shop.example/"}},
        *({**base, "type": "track", "userId": f"{prefix}-u2", "event": "Email Opened", "messageId": f"{prefix}-m{i}",
           "timestamp": stamp, "properties": {}} for i in range(30)),
    ]


@pytest.fixture(scope="session")
def analytics_23(tmp_path_factory):
    """segment-analytics-python 2.3.6 in a folder of its own (its dependencies are the main
    venv's); None when pip cannot fetch it here."""
    target = tmp_path_factory.mktemp("analytics-2.3")
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(target),
         "segment-analytics-python==2.3.6"],
        capture_output=True, text=True, timeout=120,
    )
    return target if proc.returncode == 0 else None


def test_segment_analytics_python_23_behaviour(tmp_path, analytics_23):
    ws = tmp_path / "ws.duckdb"
    key = new_key(ws, "legacy")
    with Server(ws) as server:
        r = post_as_23x(server.url, key, _23x_messages("old"))
        assert r.status_code == 200 and r.json() == {"success": True}
        assert post_as_23x(server.url, "sgm_00000000_" + "x" * 43, _23x_messages("x")).status_code == 401
        if analytics_23 is not None:  # and the real 2.3.6, in its own process
            code = (
                "import sys, datetime as dt; sys.path.insert(0, sys.argv[1]);"
                "import segment.analytics.version as v; assert v.VERSION.startswith('2.3'), v.VERSION;"
                "from segment.analytics import Client; errors = [];"
                "c = Client(sys.argv[2], host=sys.argv[3], upload_size=10, on_error=lambda e, b: errors.append(e));"
                "c.identify('real-u1', {'email': 'real@example.com'}, anonymous_id='real-a1');"
                "c.track('real-u1', 'Product Viewed', {'sku': 'SKU-1', 'category': 'Phones'}, timestamp=dt.datetime(2026, 10, 30, 9, tzinfo=dt.timezone.utc));"
                "c.page('real-u1', 'Shop', 'Home', {'url': 'https://shop.example/'});"
                "[c.track('real-u2', 'Email Opened', {}, message_id=f'real-m{i}') for i in range(30)];"
                "c.flush(); c.shutdown(); assert not errors, errors"
            )
            subprocess.run([sys.executable, "-c", code, str(analytics_23), key, server.url], check=True, timeout=120)
        server.wait_applied()
    check(ws, "old", "legacy")
    if analytics_23 is not None:
        check(ws, "real", "legacy")
