"""``make demo``: the demo workspace served with the web app, and a live demo mode.

    python -m segmentum.web.demo [-w segmentum.duckdb] [--port 8000] [--live] [--rate 3]

Before serving (``segment demo`` has built the workspace): a local SMTP sink starts on
127.0.0.1 (:mod:`segmentum.web.inbox`) and ``segmentum.yaml`` next to the workspace gets
an ``email`` channel pointed at it - only when the file is missing or was written here
(its first line says so); a file of yours is left alone. The workspace gets the demo's
segments (``subscribers``, ``new-buyers``: a first order in the last 7 days) and the
trigger ``welcome-new-buyers`` (a welcome e-mail on entering ``new-buyers``) when it lacks
them. Then ``segmentum serve`` runs in this process and the URL is printed.

``--live`` adds simulated visitors: a thread sends page views, product views and orders
of known and new contacts through the tracking API with the official Segment Python
client (``segment-analytics-python``, the ``demo`` extra), and every 15 s refreshes the
segments as the web app's "Refresh all" does, so new buyers enter ``new-buyers``, the
trigger fires and the welcome e-mails land in the inbox page.
"""

from __future__ import annotations

import argparse
import os
import random
import secrets
import sys
import threading
import uuid
from pathlib import Path

__all__ = ["main", "prepare", "Visitors"]

MARK = "# written by segmentum.web.demo: the local inbox's channel (delete this line to keep edits)"
SEGMENTS = {
    "subscribers": ("email_opt_in", "Everyone who agreed to the newsletter."),
    "new-buyers": ("first(orders) within last 7 days", "A first order in the last 7 days."),
}
TRIGGER = {
    "kind": "trigger", "name": "welcome-new-buyers", "on": {"enter": "new-buyers"},
    "action": {"send": {"channel": "email", "tags": ["transactional"], "transactional": True,
                        "content": {"subject": "Welcome, {{ first_name or 'new friend' }}!",
                                    "text": "Thank you for your first order.\n\nThe shop"}}},
    "reentry": "once",
}


def _channels_yaml(port: int) -> str:
    return (f"{MARK}\ntimezone: Europe/London\nchannels:\n  email:\n    type: smtp\n"
            f"    host: 127.0.0.1\n    port: {port}\n    security: none\n"
            '    from: "Shop <news@shop.example>"\n    unsubscribe:\n'
            '      url: "https://shop.example/unsubscribe?t={token}"\n'
            "      secret_env: UNSUBSCRIBE_SECRET\n")


def prepare(workspace: Path, smtp_port: int) -> dict:
    """Channel file, segments and trigger for the demo (see the module docstring)."""
    import json

    from segmentum.activation.triggers import TriggerStore, loads_trigger
    from segmentum.segments import SegmentEngine
    from segmentum.workspace import open_workspace

    settings = workspace.parent / "segmentum.yaml"
    ours = not settings.exists() or settings.read_text(encoding="utf-8").startswith(MARK)
    if ours:
        settings.write_text(_channels_yaml(smtp_port), encoding="utf-8")
    os.environ.setdefault("UNSUBSCRIBE_SECRET", secrets.token_urlsafe(24))
    with open_workspace(str(workspace), create=False) as ws:
        eng = SegmentEngine(ws)
        for name, (rule, description) in SEGMENTS.items():
            if name not in eng.store.names():
                eng.create(name, rule, description=description)
        store = TriggerStore(ws)
        if TRIGGER["name"] not in {t.name for t, _ in store.all()}:
            store.save(loads_trigger(json.dumps(TRIGGER), "the demo"), "segmentum.web.demo")
        contacts = ws.table("contacts").select("contact_id").limit(5000).to_pyarrow().column(0).to_pylist()
        p = ws.table("products")
        products = p.select("sku", "name", "category", "brand", "price").limit(400).to_pyarrow().to_pylist()
    return {"channel_file": settings, "channel_file_ours": ours, "contacts": contacts, "products": products}


class Visitors:
    """Simulated shoppers sent through the tracking API (see the module docstring)."""

    def __init__(self, url: str, write_key: str, contacts: list[str],
                 products: list[dict], rate: float = 3.0, seed: int = 0) -> None:
        from segment.analytics import Client

        self.url, self.rate = url, rate
        self.client = Client(write_key, host=url, upload_size=20, upload_interval=0.5,
                             on_error=lambda exc, batch: print(f"tracking error: {exc}", file=sys.stderr))
        self.contacts, self.products = contacts, products
        self.random = random.Random(seed)
        self.stop_event = threading.Event()
        self.sent = 0

    def start(self) -> Visitors:
        threading.Thread(target=self._visits, name="demo-visitors", daemon=True).start()
        threading.Thread(target=self._refreshes, name="demo-refresh", daemon=True).start()
        return self

    def stop(self) -> None:
        self.stop_event.set()
        self.client.flush()

    def _visits(self) -> None:
        while not self.stop_event.wait(1.0 / self.rate):
            self.visit()

    def visit(self) -> None:
        """One visitor's step: a new sign-up who buys, or a known contact browsing / buying."""
        r = self.random
        if r.random() < 0.25:
            user = f"live-{uuid.uuid4().hex[:10]}"
            first = r.choice(["Ada", "Jan", "Mia", "Noah", "Lena", "Omar", "Zoe", "Ivo"])
            self.client.identify(user, {"email": f"{user}@example.com", "first_name": first,
                                        "email_opt_in": True, "created_at": _now()})
            self._order(user)
            return
        user = r.choice(self.contacts)
        product = r.choice(self.products)
        self.client.track(user, "Product Viewed", {"sku": product["sku"], "category": product["category"],
                                                   "brand": product["brand"]})
        if r.random() < 0.2:
            self._order(user)
        self.sent += 1

    def _order(self, user: str) -> None:
        lines = self.random.sample(self.products, k=self.random.randint(1, 3))
        total = round(sum(float(p["price"] or 10) for p in lines), 2)
        self.client.track(user, "Order Completed", {
            "order_id": f"LIVE-{uuid.uuid4().hex[:12]}", "total": total, "currency": "EUR",
            "products": [{"product_id": p["sku"], "sku": p["sku"], "name": p["name"],
                          "price": float(p["price"] or 10), "quantity": 1} for p in lines]})
        self.sent += 1

    def _refreshes(self) -> None:
        import httpx

        while not self.stop_event.wait(15):
            self.client.flush()
            try:
                httpx.post(f"{self.url}/segments/refresh", headers={"HX-Request": "true"}, timeout=120)
            except httpx.HTTPError as exc:
                print(f"refresh failed: {exc}", file=sys.stderr)


def _now() -> str:
    import datetime as _dt

    return _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m segmentum.web.demo", description=__doc__.split("\n\n")[0])
    parser.add_argument("-w", "--workspace", default=os.environ.get("SEGMENTUM_WORKSPACE", "segmentum.duckdb"))
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--live", action="store_true", help="simulated visitors through the tracking API")
    parser.add_argument("--rate", type=float, default=3.0, help="visitor steps per second (--live)")
    args = parser.parse_args(argv)
    return run_demo(Path(args.workspace).resolve(), args.host, args.port, args.live, args.rate)


def run_demo(workspace: Path, host: str, port: int, live: bool, rate: float) -> int:
    from segmentum.errors import SegmentumError
    from segmentum.service.keys import KeyStore, keys_path
    from segmentum.service.server import serve
    from segmentum.service.settings import ServeSettings
    from segmentum.web.inbox import SmtpSink, inbox_dir

    if not workspace.exists():
        print(f"Error: no workspace at {workspace}: build it with `segmentum demo` (or `make demo`).",
              file=sys.stderr)
        return 2
    sink = SmtpSink(inbox_dir(workspace)).start()
    visitors: list[Visitors] = []
    try:
        ready = prepare(workspace, sink.port)
        if not ready["channel_file_ours"]:
            print(f"Note: {ready['channel_file']} is yours and stays as it is; the inbox page shows "
                  f"only mail sent to the local sink at 127.0.0.1:{sink.port}.")

        def on_ready(info) -> None:
            print(f"Segmentum web app: {info.url}/  (workspace {info.workspace}; local inbox: {info.url}/inbox; "
                  "Ctrl-C stops)", flush=True)
            if live:
                key = KeyStore(keys_path(workspace)).create("demo-visitors", ["track"])[1]
                visitors.append(Visitors(info.url, key, ready["contacts"], ready["products"], rate).start())
                print(f"Live demo: simulated visitors at {rate:g} steps/s through {info.url}/v1; segments "
                      "refresh every 15 s.", flush=True)

        serve(ServeSettings(workspace=str(workspace), host=host, port=port), on_ready=on_ready)
    except SegmentumError as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        pass
    finally:
        for v in visitors:
            v.stop()
        sink.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
