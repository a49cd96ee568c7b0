"""`segmentum template preview NAME --contact ID`: one contact's message, as it would be sent.

    segmentum template preview welcome --contact C0000042 [--as-of T] [--dir FOLDER] [--json]

The template is looked up in ``templates/`` of ``--dir`` (e.g. a campaign folder), then of
the workspace's folder (see :mod:`segmentum.activation.content`). A field the contact lacks
is an error naming the field, the part and its line (exit code 2), never a blank.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from segmentum.cli.common import (
    AsOfOpt,
    JsonOpt,
    WorkspaceOpt,
    console,
    emit_json,
    json_errors,
    open_ws,
    parse_as_of,
)

__all__ = ["app"]

app = typer.Typer(name="template", help="Message templates: preview one contact's message.",
                  no_args_is_help=True)


@app.command("preview")
def preview_cmd(
    name: Annotated[str, typer.Argument(help="Template name (templates/NAME/ or templates/NAME.yaml).")],
    contact: Annotated[str, typer.Option("--contact", "-c", help="The contact's id.")],
    as_of: AsOfOpt = None,
    folder: Annotated[
        Path | None,
        typer.Option("--dir", "-d", help="A folder whose templates/ is searched first "
                     "(e.g. a campaign folder).", show_default=False),
    ] = None,
    workspace: WorkspaceOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Render a template for one contact: subject, text and HTML, and the variant used."""
    from segmentum.activation.content import contact_context, find_template, render, template_dirs
    from segmentum.errors import NotFoundError

    with json_errors(as_json), open_ws(workspace) as ws:
        template = find_template(name, template_dirs(ws, folder))
        T = parse_as_of(as_of)
        contexts = contact_context(ws, [contact], T, fields=template.fields,
                                   recommendations=template.recommendations)
        if contact not in contexts:
            raise NotFoundError(f"No contact {contact!r} in this workspace.")
        message = render(template, contexts[contact], contact_id=contact)
        data = {"template": template.name, "contact_id": contact, "as_of": T,
                "variant": message.variant, "subject": message.subject, "text": message.text,
                "html": message.html}
        if as_json:
            emit_json(data)
            return
        variant = message.variant or "default"
        console.print(f"[bold]{template.name}[/] for {contact} (variant: {variant})", highlight=False)
        for part in ("subject", "text", "html"):
            value = data[part]
            if value is not None:
                console.rule(part)
                console.print(value, markup=False, highlight=False)
