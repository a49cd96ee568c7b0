"""What every command shares: the options defined once, the consoles, JSON output, errors.

Each command module holds a module-level Typer app (``app``) with its commands; ``cli.app``
assembles them. A command opens the workspace with :func:`open_ws` and prints machine
output with :func:`emit_json`. User mistakes are raised as
:class:`segmentum.errors.SegmentumError` and printed by ``app.main`` as one red line,
without a traceback (with ``--json``, :func:`json_errors` prints them as one JSON object).

The workspace a command opens: its own ``-w``, else the global ``segmentum -w`` (kept on
Typer's context object by the root callback), else ``SEGMENTUM_WORKSPACE``, else
``./segmentum.duckdb``.

Nothing heavy (pandas, Ibis, DuckDB, ...) is imported here: ``segmentum --help`` loads
every command module, so those imports live inside the commands that need them.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import decimal
import json
import math
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from segmentum.cli.tables import FittingConsole
from segmentum.clock import to_utc
from segmentum.errors import SegmentumError

if TYPE_CHECKING:
    from segmentum.analytics.freshness import AsOf
    from segmentum.workspace import Workspace

__all__ = [
    "console",
    "err_console",
    "WorkspaceOpt",
    "JsonOpt",
    "AsOfOpt",
    "DataAsOfOpt",
    "OutOpt",
    "as_of_option",
    "out_option",
    "open_ws",
    "emit_json",
    "to_jsonable",
    "parse_as_of",
    "as_of_for",
    "working",
    "json_errors",
    "is_missing",
    "WORKSPACE_HELP",
]

console = FittingConsole()  # tables split or widened to be read whole (cli.tables)
err_console = FittingConsole(stderr=True)

WORKSPACE_HELP = "Workspace: a DuckDB file (default ./segmentum.duckdb) or a workspace YAML."


def _workspace_or_global(ctx: typer.Context, value: str | None) -> str | None:
    """A command's own -w, else the global one the root callback put on the context."""
    if value:
        return value
    root = ctx.find_root().obj
    return root.get("workspace") if isinstance(root, dict) else None


WorkspaceOpt = Annotated[
    str | None,
    typer.Option(
        "--workspace",
        "-w",
        callback=_workspace_or_global,
        help=WORKSPACE_HELP + " Default: the global -w, else $SEGMENTUM_WORKSPACE.",
        show_default=False,
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON object instead of tables.")]


def as_of_option(help: str) -> Any:
    """An ``--as-of`` option with a command's own wording of its default."""
    return Annotated[str | None, typer.Option("--as-of", help=help, show_default=False)]


AsOfOpt = as_of_option("Evaluate as of this date/time (ISO 8601, UTC). Default: now.")
#: the --as-of of analyses, resolved with :func:`as_of_for`
DataAsOfOpt = as_of_option(
    "Evaluate as of this date/time (ISO 8601, UTC, or 'now'). Default: now, or the end of "
    "the newest data's day when the data stop more than a day before now."
)


def out_option(help: str) -> Any:
    """An ``--out`` / ``-o`` file option with a command's own wording."""
    return Annotated[Path | None, typer.Option("--out", "-o", help=help, show_default=False)]


OutOpt = out_option("Also write the result to FILE (.csv or .parquet).")


def open_ws(workspace: str | None, *, create: bool = False) -> Workspace:
    """Open the workspace a command was given (see the module doc). Only commands that
    write data (``load``, ``demo``, ...) pass ``create=True``; for the others a missing
    workspace is a :class:`~segmentum.errors.WorkspaceMissingError` (a typo in ``-w``)."""
    from segmentum.workspace import open_workspace

    return open_workspace(workspace, create=create)


def parse_as_of(value: str | None, *, default_now: bool = True) -> _dt.datetime | None:
    """An --as-of option as an aware UTC datetime (see :func:`segmentum.clock.to_utc`);
    without one: now, or None when ``default_now`` is false."""
    if value is None and not default_now:
        return None
    return to_utc(value)


def as_of_for(
    ws: Workspace, value: str | None, *, as_json: bool = False, default: Any = None
) -> AsOf:
    """A command's as-of on its workspace: given, or the data-aware default (the rule of
    :mod:`segmentum.analytics.freshness`; ``default``: a command's own). Its warning (an
    as-of after the data) and note (which default was taken) go once to stderr; with --json
    they go in the JSON instead (``.to_dict()``: as_of, as_of_rule, newest_data, warnings)."""
    from segmentum.analytics.freshness import resolve_as_of

    chosen = resolve_as_of(ws, value, default=default)
    if not as_json:
        for warning in chosen.warnings:
            err_console.print(f"Warning: {warning}", style="yellow")
        for note in chosen.notes:
            err_console.print(note, style="dim")
    return chosen


def working(message: str, quiet: bool = False):
    """A spinner on the console while a command computes; nothing when ``quiet`` (--json:
    stdout is one JSON object)."""
    return contextlib.nullcontext() if quiet else console.status(message)


def is_missing(x: Any) -> bool:
    """None, NaN, or pandas' NA / NaT (pandas is looked at only when a command loaded it)."""
    if x is None:
        return True
    if isinstance(x, float):
        return math.isnan(x)
    pd = sys.modules.get("pandas")
    return pd is not None and pd.api.types.is_scalar(x) and bool(pd.isna(x))


def _scalar(obj: Any) -> Any:
    """A numpy / pandas scalar as a plain Python value (only if those are loaded)."""
    np = sys.modules.get("numpy")
    if np is not None and isinstance(obj, np.generic):
        obj = obj.item()
    pd = sys.modules.get("pandas")
    if pd is not None:
        if obj is pd.NaT or obj is pd.NA:
            return None
        if isinstance(obj, pd.Timestamp):
            return obj.isoformat()
    return obj


def to_jsonable(obj: Any) -> Any:
    """Plain JSON types for numpy / pandas / datetime / Decimal values, recursively."""
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple | set):
        return [to_jsonable(v) for v in obj]
    pd = sys.modules.get("pandas")
    if pd is not None and isinstance(obj, pd.DataFrame):
        return [to_jsonable(r) for r in obj.to_dict(orient="records")]
    obj = _scalar(obj)
    if isinstance(obj, float):
        return None if math.isnan(obj) or math.isinf(obj) else obj
    if isinstance(obj, decimal.Decimal):
        return float(obj)
    if isinstance(obj, _dt.datetime | _dt.date):
        return obj.isoformat()
    if isinstance(obj, Path):
        return str(obj)
    return obj


def emit_json(obj: Any) -> None:
    """Print one JSON object on stdout (no Rich markup, no wrapping)."""
    typer.echo(json.dumps(to_jsonable(obj), ensure_ascii=False))


@contextlib.contextmanager
def json_errors(as_json: bool):
    """With --json, a mistake is one JSON object on stdout ({"error": {...}}) and exit 2;
    without, it goes on to ``app.main``, which prints it as one red line."""
    try:
        yield
    except SegmentumError as exc:
        if not as_json:
            raise
        data = exc.to_dict() if hasattr(exc, "to_dict") else {"message": str(exc)}
        emit_json({"error": {**data, "type": type(exc).__name__}})
        raise SystemExit(2) from None
