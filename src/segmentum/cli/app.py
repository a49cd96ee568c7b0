"""The `segmentum` Typer application, assembled from the command modules' own apps.

Each module of ``segmentum.cli`` defines a module-level Typer app: a named group (``rfm``,
``clv``, ``segment``, ``persona``) or top-level commands merged into this one (``load``,
``info``, ``cohorts``, ...). Importing this module imports every command module, so they
keep heavy libraries out of their module-level imports (``segmentum --help`` stays fast).
"""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from segmentum.cli import (
    apply,
    campaign,
    channel,
    clv,
    cohorts,
    consent,
    contact,
    data,
    deliveries,
    demo,
    drilldown,
    export,
    funnel,
    keys,
    models,
    persona,
    report,
    rfm,
    segment,
    serve,
    template,
    trigger,
)
from segmentum.cli.common import WORKSPACE_HELP, err_console
from segmentum.errors import SegmentumError

app = typer.Typer(
    name="segmentum",
    help="Segmentum: customer data, RFM, cohorts, CLV and dynamic segments for CRM marketing.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def _global(
    ctx: typer.Context,
    workspace: Annotated[
        str | None,
        typer.Option(
            "--workspace", "-w", envvar="SEGMENTUM_WORKSPACE", show_default=False,
            help=WORKSPACE_HELP,
        ),
    ] = None,
) -> None:
    """Segmentum: customer data, RFM, cohorts, CLV and dynamic segments for CRM marketing."""
    # every command's own --workspace falls back to this one (see cli.common.WorkspaceOpt)
    ctx.obj = {"workspace": workspace}


# in the order of the pipeline: data in, analytics, segments, personas, activation
for _module in (
    data, demo, rfm, clv, models, cohorts, drilldown, report, funnel, segment, persona, contact,
    export, campaign, apply, trigger, template, channel, deliveries, consent, serve, keys,
):
    app.add_typer(_module.app)


def main() -> None:
    """Entry point: run the app; a SegmentumError is one red line and exit code 2."""
    try:
        # in non-standalone mode a `typer.Exit(code)` comes back as the return value
        code = app(standalone_mode=False)
        if isinstance(code, int) and code:
            sys.exit(code)
    except SegmentumError as exc:
        err_console.print(f"[bold red]Error:[/] {exc}", highlight=False, soft_wrap=True)
        sys.exit(2)
    except typer.Abort:
        err_console.print("Aborted.")
        sys.exit(1)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        err_console.print("Interrupted.")
        sys.exit(130)
    except Exception as exc:
        # usage errors of Typer's bundled click (bad option, missing argument) know how to
        # show themselves; anything else is a bug and keeps its traceback
        if callable(getattr(exc, "show", None)) and hasattr(exc, "exit_code"):
            exc.show()
            sys.exit(exc.exit_code)
        raise


if __name__ == "__main__":
    main()
