"""What every command shares: the --workspace and --json options, the console, JSON output.

A command module defines ``register(app)`` and adds its commands to the Typer app; it opens
the workspace with :func:`open_ws` and prints machine output with :func:`emit_json`.
User mistakes are raised as :class:`segmentum.errors.SegmentumError` and printed by
``app.main`` as one red line, without a traceback.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import decimal
import json
import math
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from segmentum.clock import to_utc
from segmentum.errors import SegmentumError
from segmentum.workspace import Workspace, open_workspace

__all__ = [
    "console",
    "err_console",
    "WorkspaceOpt",
    "JsonOpt",
    "AsOfOpt",
    "open_ws",
    "emit_json",
    "to_jsonable",
    "parse_as_of",
    "json_errors",
]

console = Console()
err_console = Console(stderr=True)

WorkspaceOpt = Annotated[
    str | None,
    typer.Option(
        "--workspace",
        "-w",
        envvar="SEGMENTUM_WORKSPACE",
        help="Workspace: a DuckDB file (default ./segmentum.duckdb) or a workspace YAML.",
        show_default=False,
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON object instead of tables.")]
AsOfOpt = Annotated[
    str | None,
    typer.Option("--as-of", help="Evaluate as of this date/time (ISO 8601, UTC). Default: now."),
]


def open_ws(workspace: str | None) -> Workspace:
    return open_workspace(workspace)


def parse_as_of(value: str | None, *, default_now: bool = True) -> _dt.datetime | None:
    """An --as-of option as an aware UTC datetime (see :func:`segmentum.clock.to_utc`);
    without one: now, or None when ``default_now`` is false."""
    if value is None and not default_now:
        return None
    return to_utc(value)


def to_jsonable(obj: Any) -> Any:
    """Plain JSON types for numpy / pandas / datetime / Decimal values, recursively."""
    import numpy as np
    import pandas as pd

    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple | set):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, pd.DataFrame):
        return [to_jsonable(r) for r in obj.to_dict(orient="records")]
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float):
        return None if math.isnan(obj) or math.isinf(obj) else obj
    if isinstance(obj, decimal.Decimal):
        return float(obj)
    if isinstance(obj, pd.Timestamp):
        return None if pd.isna(obj) else obj.isoformat()
    if isinstance(obj, _dt.datetime | _dt.date):
        return obj.isoformat()
    if obj is pd.NaT or obj is pd.NA:
        return None
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
