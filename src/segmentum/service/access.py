"""WorkspaceAccess: the one place the service touches its workspace.

DuckDB allows one writing process per file, and one DuckDB connection must not be used
by two threads at once. So a running service opens its workspace once, on one dedicated
thread (``workspace``), and every use of it - the consumer applying the intake log,
REST routes reading or writing - is a function run on that thread, one after another:

    rows = await access.run(lambda ws: ws.to_pandas("contacts", limit=10))   # async routes
    report = access.call(apply_records, records, config)                    # other threads

A call waits behind the one running; the consumer applies at most ``consumer_batch``
records per call, so a REST request waits for at most one such run. Functions get the
:class:`~segmentum.workspace.Workspace` as their first argument and must not keep it or
any Ibis expression bound to it after they return.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

__all__ = ["WorkspaceAccess"]

T = TypeVar("T")


class WorkspaceAccess:
    """Serialised access to one open workspace (see the module docstring)."""

    def __init__(self, open_workspace: Callable[[], Any]):
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="workspace")
        self._thread: threading.Thread | None = None
        self._ws = self._executor.submit(self._open, open_workspace).result()

    def _open(self, open_workspace: Callable[[], Any]) -> Any:
        self._thread = threading.current_thread()
        return open_workspace()

    def call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run ``fn(ws, *args, **kwargs)`` on the workspace thread and wait for it."""
        if threading.current_thread() is self._thread:  # already there (a nested call)
            return fn(self._ws, *args, **kwargs)
        return self._executor.submit(fn, self._ws, *args, **kwargs).result()

    async def run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """``call`` for async code: awaits without blocking the event loop."""
        return await asyncio.wrap_future(self._executor.submit(fn, self._ws, *args, **kwargs))

    def close(self) -> None:
        """Close the workspace (after what is queued) and stop the thread."""
        self._executor.submit(self._ws.close).result()
        self._executor.shutdown(wait=True)
