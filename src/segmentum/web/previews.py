"""Live counts for the rule editors: the newest request of an editor wins.

A builder sends a count request after every change (debounced in the page; htmx's
``hx-sync="this:replace"`` aborts the browser's previous request). Aborting in the
browser does not stop the server, and every count runs on the one workspace thread, so
without more a count that took minutes would run on after the rule changed (Mautic #6324:
a 20-minute count). Here each request carries its editor's id and a sequence number:

* a request older than one already seen for its editor is answered "superseded" at once;
* a request waiting for the workspace thread is dropped when it gets there if a newer one
  for its editor has arrived meanwhile;
* a newer request interrupts the editor's count that is running (DuckDB's
  ``interrupt()``), which ends with "superseded" too.

Only the editor's own count is ever interrupted: the interrupt is sent while that count
holds the thread, under the same lock that marks it done.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

__all__ = ["Previews", "SUPERSEDED"]

SUPERSEDED = object()  # what a dropped or interrupted count returns
_EDITORS = 2000  # editors remembered (the oldest are forgotten)


class Previews:
    """The newest count per editor (see the module docstring); one per application."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._latest: OrderedDict[str, int] = OrderedDict()
        self._running: tuple[str, int, Any] | None = None  # editor, seq, workspace

    def arrive(self, editor: str, seq: int) -> bool:
        """Note a request as it arrives; False when a newer one for its editor came first.
        A count of this editor that is running is interrupted."""
        with self._lock:
            if seq < self._latest.get(editor, -1):
                return False
            self._latest[editor] = seq
            self._latest.move_to_end(editor)
            while len(self._latest) > _EDITORS:
                self._latest.popitem(last=False)
            running = self._running
            if running is not None and running[0] == editor and running[1] < seq:
                _interrupt(running[2])
        return True

    def run(self, ws: Any, editor: str, seq: int, fn: Callable[[Any], Any]) -> Any:
        """``fn(ws)`` on the workspace thread unless the request is stale by now."""
        with self._lock:
            if self._latest.get(editor, -1) != seq:
                return SUPERSEDED
            self._running = (editor, seq, ws)
        try:
            return fn(ws)
        except Exception as exc:
            if _is_interrupt(exc):
                return SUPERSEDED
            raise
        finally:
            with self._lock:
                self._running = None

    async def count(self, access: Any, editor: str, seq: int, fn: Callable[[Any], Any]) -> Any:
        """From a route: note the request, then run it on the workspace thread."""
        if not self.arrive(editor, seq):
            return SUPERSEDED
        return await access.run(self.run, editor, seq, fn)


def _interrupt(ws: Any) -> None:
    con = getattr(getattr(getattr(ws, "con", None), "con", None), "interrupt", None)
    if callable(con):  # DuckDB; other backends run the count to its end
        con()


def _is_interrupt(exc: BaseException) -> bool:
    while exc is not None:
        if type(exc).__name__ == "InterruptException" or "INTERRUPT" in str(exc).upper()[:200]:
            return True
        exc = exc.__cause__ or exc.__context__
    return False
