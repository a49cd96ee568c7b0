"""Live counts on the service's one workspace thread (a real DuckDB workspace): a count a
newer edit made stale never runs, and one that is running is interrupted - the Mautic #6324
case (a 20-minute count running on after the filter changed)."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from segmentum.service.access import WorkspaceAccess
from segmentum.web.previews import SUPERSEDED, Previews
from segmentum.workspace import open_workspace

SLOW = "SELECT count(*) FROM range(20000000) a(i), range(20000000) b(j) WHERE i * j % 7 = 3"


def arun(coro):
    """``asyncio.run`` on a thread of its own (the session's Playwright keeps a loop on this one)."""
    out: dict = {}

    def main() -> None:
        try:
            out["value"] = asyncio.run(coro)
        except BaseException as exc:  # re-raised on the test's thread
            out["error"] = exc

    t = threading.Thread(target=main)
    t.start()
    t.join()
    if "error" in out:
        raise out["error"]
    return out["value"]


def _access(tmp_path) -> WorkspaceAccess:
    return WorkspaceAccess(lambda: open_workspace(str(tmp_path / "ws.duckdb")))


def test_only_the_newest_waiting_count_runs(tmp_path):
    access = _access(tmp_path)
    previews, ran = Previews(), []
    gate = threading.Event()
    try:
        access._executor.submit(gate.wait)  # the thread is busy (the consumer's run, say)

        async def edits():
            tasks = [asyncio.ensure_future(previews.count(access, "ed", seq, lambda ws, s=seq: ran.append(s) or s))
                     for seq in (1, 2, 3)]
            await asyncio.sleep(0.2)
            gate.set()
            return await asyncio.gather(*tasks)

        results = arun(edits())
        assert results == [SUPERSEDED, SUPERSEDED, 3]
        assert ran == [3]
        # a late arrival of an older request is refused at once
        assert arun(previews.count(access, "ed", 2, lambda ws: ran.append(2))) is SUPERSEDED
    finally:
        gate.set()
        access.close()


@pytest.mark.timeout(120)  # without the interrupt the cross join runs for hours
def test_a_newer_edit_interrupts_the_running_count(tmp_path):
    access = _access(tmp_path)
    previews = Previews()
    try:
        def slow(ws):
            return ws.con.raw_sql(SLOW).fetchall()

        async def edits():
            started = time.monotonic()
            first = asyncio.ensure_future(previews.count(access, "ed", 1, slow))
            await asyncio.sleep(1.0)
            other = await previews.count(access, "other-editor", 1, lambda ws: "other")  # queued
            return await first, other, time.monotonic() - started

        async def newer():
            await asyncio.sleep(0.5)
            return await previews.count(access, "ed", 2, lambda ws: "newest")

        async def both():
            return await asyncio.gather(edits(), newer())

        (first, other, seconds), newest = arun(both())
        assert first is SUPERSEDED and newest == "newest" and other == "other"
        assert seconds < 30  # the cross join alone would take hours
    finally:
        access.close()


def test_another_editor_never_interrupts(tmp_path):
    access = _access(tmp_path)
    previews = Previews()
    try:
        def short_slow(ws):
            time.sleep(0.5)
            return "done"

        async def run():
            a = asyncio.ensure_future(previews.count(access, "a", 1, short_slow))
            await asyncio.sleep(0.1)
            b = await previews.count(access, "b", 5, lambda ws: "b")
            return await a, b

        assert arun(run()) == ("done", "b")
    finally:
        access.close()
