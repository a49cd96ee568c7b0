"""`segmentum keys`: API keys of a workspace (write keys per source, REST keys with scopes).

    segmentum keys create web --scopes track          # a source's write key, shown once
    segmentum keys create crm-sync --scopes read,write
    segmentum keys list [--all] [--json]
    segmentum keys revoke web                          # by name (all its keys) or by id

Keys are stored hashed in ``<workspace>.keys.json`` (:mod:`segmentum.service.keys`), so
these commands work while ``segmentum serve`` holds the workspace; it sees changes at once.
"""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from segmentum.cli.common import JsonOpt, WorkspaceOpt, console, emit_json, json_errors

__all__ = ["app"]

app = typer.Typer(name="keys", help="API keys: write keys per source, REST keys with scopes.",
                  no_args_is_help=True)


def _store(workspace: str | None):
    from segmentum.config import resolve_config
    from segmentum.errors import ConfigError
    from segmentum.service.keys import KeyStore, keys_path

    config = resolve_config(workspace)
    if config.backend != "duckdb":
        raise ConfigError("API keys belong to a DuckDB workspace (the one `segmentum serve` serves).")
    return KeyStore(keys_path(config.path))


@app.command("create")
def create_cmd(
    name: Annotated[str, typer.Argument(help="The key's name; for a write key, its source (web, ios-app, ...).")],
    scopes: Annotated[
        list[str],
        typer.Option("--scopes", "-s", help="track, read, write, admin (comma-separated or repeated)."),
    ],
    workspace: WorkspaceOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Create a key; it is printed once and stored only as a hash."""
    with json_errors(as_json):
        store = _store(workspace)
        entry, key = store.create(name, [s for part in scopes for s in part.split(",")])
        if as_json:
            emit_json({**entry.public(), "key": key, "file": str(store.path)})
            return
        console.print(
            f"Key [bold]{entry.id}[/] ({entry.name}, scopes {', '.join(entry.scopes)}):\n{key}\n"
            "Store it now: it is not shown again.",
            highlight=False, soft_wrap=True,
        )


@app.command("list")
def list_cmd(
    include_revoked: Annotated[bool, typer.Option("--all", help="Revoked keys too.")] = False,
    workspace: WorkspaceOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """The workspace's keys (never their secrets)."""
    with json_errors(as_json):
        keys = _store(workspace).list(include_revoked=include_revoked)
        if as_json:
            emit_json({"keys": [k.public() for k in keys]})
            return
        t = Table(title="API keys", title_justify="left")
        for col in ("id", "name", "scopes", "created", "revoked"):
            t.add_column(col)
        for k in keys:
            t.add_row(k.id, k.name, ",".join(k.scopes), k.created_at, k.revoked_at or "")
        console.print(t if keys else "No keys. Create one with `segmentum keys create NAME --scopes track`.")


@app.command("revoke")
def revoke_cmd(
    key: Annotated[str, typer.Argument(help="A key's id, or a name (revokes all its active keys).")],
    workspace: WorkspaceOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Revoke keys: refused from the next request on."""
    with json_errors(as_json):
        revoked = _store(workspace).revoke(key)
        if as_json:
            emit_json({"revoked": [k.public() for k in revoked]})
            return
        for k in revoked:
            console.print(f"Revoked key [bold]{k.id}[/] ({k.name}).", highlight=False)
