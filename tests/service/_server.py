"""A real `segmentum serve` in a subprocess on 127.0.0.1 (port 0), for the service tests."""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from segmentum.service.keys import KeyStore, keys_path

BIN = Path(sys.executable).parent / "segmentum"


class Server:
    """``segmentum -w WS serve --port 0 --json``; ``url`` once it listens."""

    def __init__(self, workspace: Path, env: dict[str, str] | None = None):
        self.workspace = workspace
        self.env = {**os.environ, **(env or {})}
        self.proc: subprocess.Popen | None = None
        self.url = ""

    def start(self, timeout: float = 60.0) -> Server:
        self.proc = subprocess.Popen(
            [str(BIN), "-w", str(self.workspace), "serve", "--port", "0", "--json"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=self.env, text=True,
        )
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"segmentum serve did not start: {self.proc.stderr.read()}")
        self.info = json.loads(line)
        self.url = self.info["url"]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if httpx.get(self.url + "/health", timeout=2).status_code == 200:
                    return self
            except httpx.HTTPError:
                time.sleep(0.05)
        raise RuntimeError("segmentum serve does not answer /health")

    def health(self) -> dict:
        return httpx.get(self.url + "/health", timeout=10).json()

    def wait_applied(self, timeout: float = 60.0) -> dict:
        """Until the consumer has applied everything in the log."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            h = self.health()
            if h["consumer"]["backlog"] == 0:
                return h
            time.sleep(0.05)
        raise AssertionError(f"the consumer did not catch up: {h}")

    def stop(self) -> int:
        """SIGTERM and wait: a clean shutdown."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(timeout=60)
        return self.proc.returncode

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait(timeout=30)

    def __enter__(self) -> Server:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def new_key(workspace: Path, name: str = "web", scopes: str = "track") -> str:
    return KeyStore(keys_path(workspace)).create(name, scopes.split(","))[1]


def basic(key: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{key}:".encode()).decode()}
