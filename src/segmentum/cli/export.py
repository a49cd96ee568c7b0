"""`segmentum export`: a saved segment as a retargeting file (plain CSV, Meta, Google).

    segmentum export apple-fans --format meta --out fans-meta.csv
    segmentum export apple-fans --format google --out fans-google.csv --changes-since-last
    segmentum export apple-fans --format csv --out fans.csv --fields contact_id,email,city
    segmentum export apple-fans --format csv --out fans.csv --consent-field email_opt_in --json

The work is :func:`segmentum.activation.exports.export_segment` (formats, consent, the
incremental files and the snapshot tables are described there); this module parses the
options and prints a table, or one JSON object with ``--json`` (a mistake too:
``{"error": {"message": ...}}``, exit code 2).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from segmentum.cli.common import (
    JsonOpt,
    WorkspaceOpt,
    as_of_option,
    console,
    emit_json,
    json_errors,
    open_ws,
    parse_as_of,
    working,
)

__all__ = ["app", "result_table"]

app = typer.Typer()

MembersAsOfOpt = as_of_option(
    "Export the members at this time, from the recorded membership history (ISO 8601, UTC). "
    "Default: as of the last refresh."
)

_REASONS = {
    "no_consent": "no consent to advertising use",
    "no_identifier": "no valid e-mail or phone",
    "unknown_contact": "not in contacts",
}


def result_table(r) -> Table:
    """What an export did, as a Rich table."""
    kind = "changes since export #" + str(r.previous_export_id) if r.previous_export_id else (
        "changes (first export: everyone is an addition)" if r.incremental else "full"
    )
    t = Table(title=f"Export #{r.export_id}: segment {r.segment} -> {r.format} ({kind}), "
                    f"members as of {r.as_of:%Y-%m-%d %H:%M:%S} UTC",
              title_justify="left", show_header=False)
    t.add_column("what", style="bold")
    t.add_column("count", justify="right")
    t.add_row("segment members", f"{r.members:,}")
    for reason, text in _REASONS.items():
        t.add_row(f"  excluded: {text}", f"{r.excluded.get(reason, 0):,}")
    t.add_row("audience (exported)", f"{r.audience:,}")
    t.add_row("  with a valid e-mail", f"{r.identifiers['email']:,}")
    t.add_row("  with a valid phone", f"{r.identifiers['phone']:,}")
    if r.incremental:
        t.add_row("added", f"{r.added:,}")
        t.add_row("removed", f"{r.removed:,}")
        if r.removed_unwritable:
            t.add_row("  removed, no identifier left to write", f"{r.removed_unwritable:,}")
    t.add_row("rows written", f"{r.rows:,}")
    return t


@app.command("export")
def export_cmd(
    segment: Annotated[str, typer.Argument(help="A saved segment (see `segment list`).")],
    fmt: Annotated[
        str,
        typer.Option("--format", "-f", help="csv (plain contact fields), meta (Custom "
                     "Audience customer list) or google (Customer Match)."),
    ],
    out: Annotated[Path, typer.Option("--out", "-o", help="File to write.")],
    changes_since_last: Annotated[
        bool,
        typer.Option("--changes-since-last", help="Only additions and removals since the "
                     "last export of this segment in this format (meta/google: removals "
                     "go to FILE's sibling <stem>.removals<suffix>; csv: an action column)."),
    ] = False,
    fields: Annotated[
        str | None,
        typer.Option("--fields", help="csv only: contacts columns, comma-separated "
                     "(default contact_id,email,phone,first_name,last_name,city,country).",
                     show_default=False),
    ] = None,
    consent_field: Annotated[
        str,
        typer.Option("--consent-field", help="The contacts yes/no column that says who "
                     "agreed to advertising use (null counts as no)."),
    ] = "ads_opt_in",
    as_of: MembersAsOfOpt = None,
    force: Annotated[
        bool,
        typer.Option("--force", help="Replace FILE even when another kind of export (or no "
                     "export) wrote it."),
    ] = False,
    workspace: WorkspaceOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Write a segment's audience to a retargeting file, in full or only the changes."""
    from segmentum.activation.exports import export_segment

    with json_errors(as_json), open_ws(workspace) as ws:
        when = parse_as_of(as_of, default_now=False)
        with working("Exporting...", quiet=as_json) as status:
            result = export_segment(
                ws, segment, fmt, out, as_of=when, changes_since_last=changes_since_last,
                fields=fields.split(",") if fields is not None else None,
                consent_field=consent_field, force=force,
                progress=None if status is None else (
                    lambda n: status.update(f"Exporting... {n:,} members read")),
            )
        if as_json:
            emit_json(result.to_dict())
            return
    console.print(result_table(result))
    console.print(f"Written to {result.file}" + (
        f"; removals to {result.removals_file}" if result.removals_file else ""
    ) + f" in {result.seconds:.2f} s.", highlight=False)
