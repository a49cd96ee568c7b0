"""`segmentum contact`: one contact's card (Rich panels and tables, or one JSON object);
erasure and readmission.

    segmentum contact C0000042 --as-of 2026-11-01          (= segmentum contact show ...)
    segmentum contact anna@example.com --events 50 --orders 10 --json
    segmentum contact erase C0000042 [--yes] [--no-compact] [--by NAME] [--json]
    segmentum contact readmit --email anna@example.com --reason "signed up again" [--json]

What each part of the card means is in :mod:`segmentum.analytics.contact_card`; erasure in
:mod:`segmentum.privacy.erase`, readmission in :mod:`segmentum.privacy.tombstones`.
"""

from __future__ import annotations

import datetime as _dt
import sys
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.columns import Columns
from rich.markup import escape
from rich.panel import Panel
from rich.table import Table
from typer.core import TyperGroup

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

if TYPE_CHECKING:
    from segmentum.analytics.contact_card import ContactCard

__all__ = ["app", "card_renderables"]



class _CardByDefault(TyperGroup):
    """``segmentum contact ID`` is ``segmentum contact show ID``: a first argument that names
    no subcommand names the contact."""

    def parse_args(self, ctx, args):
        if args and args[0] not in self.commands and args[0] not in ("--help", "-h"):
            args = ["show", *args]
        return super().parse_args(ctx, args)


app = typer.Typer(name="contact", cls=_CardByDefault, no_args_is_help=True,
                  help="One contact's card (contact ID), erasure (contact erase ID), readmission.")

# segmentum.analytics.contact_card (Ibis, pandas) is imported only when the command runs;
# these are its defaults, for the options (a test checks that they agree)
DEFAULT_EVENTS, DEFAULT_ORDERS = 20, 5


def _fmt(value: Any) -> str:
    if value is None:
        return "[dim]-[/]"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, _dt.datetime):
        return f"{value:%Y-%m-%d %H:%M}"
    if isinstance(value, _dt.date):
        return f"{value:%Y-%m-%d}"
    if isinstance(value, float):
        return f"{value:,.2f}"
    return escape(str(value))


def _kv(rows: dict, title: str, *, border: str = "blue") -> Panel:
    t = Table.grid(padding=(0, 1))
    t.add_column(style="bold")
    t.add_column()
    for k, v in rows.items():
        t.add_row(escape(str(k)), _fmt(v))
    if not rows:
        t.add_row("[dim](none)[/]", "")
    return Panel(t, title=title, title_align="left", border_style=border, expand=False)


def _consent(v: bool | None) -> str:
    return "[green]yes[/]" if v else ("[red]no[/]" if v is False else "[dim]unknown (no)[/]")


def _scores(card: ContactCard) -> Panel:
    t = Table.grid(padding=(0, 1))
    t.add_column(style="bold")
    t.add_column()
    r = card.rfm
    if r:
        cell = " ".join(str(x) for x in (r.get("cell"), r.get("name")) if x)
        t.add_row("RFM", escape(cell or "-"))
        if r.get("cell"):
            labels = [f"{a} {r.get(a.lower() + '_label') or r.get(a.lower())}" for a in "RFM"]
            t.add_row("", escape(" / ".join(labels)))
        t.add_row("", f"{_fmt(r.get('recency_days'))} days since last purchase, "
                  f"{_fmt(r.get('frequency'))} orders, monetary {_fmt(r.get('monetary'))}")
        t.add_row("", f"[dim]as of {_fmt(r.get('as_of'))}[/]")
    else:
        t.add_row("RFM", f"[yellow]{escape(card.notes.get('rfm', '-'))}[/]")
    c = card.clv
    if c:
        t.add_row("CLV", f"P(alive) {c['p_alive']:.2f}, expected purchases "
                  f"{_fmt(c.get('expected_purchases'))}, value {_fmt(c.get('expected_value'))} "
                  f"over {c.get('horizon_days') or 0:.0f} days")
        t.add_row("", f"[dim]as of {_fmt(c.get('as_of'))}; repeat purchases "
                  f"{_fmt(c.get('frequency'))}[/]")
    else:
        t.add_row("CLV", f"[yellow]{escape(card.notes.get('clv', '-'))}[/]")
    s = card.order_summary
    t.add_row("Orders", f"{s['orders']:,} up to the as-of date, {s['purchases']:,} purchases, "
              f"revenue {_fmt(s['revenue'])}; last purchase {_fmt(s['last_purchase'])}")
    return Panel(t, title="Scores", title_align="left", border_style="magenta", expand=False)


def _segments(card: ContactCard) -> Table:
    t = Table(title="Segments", title_justify="left")
    t.add_column("segment", style="bold")
    t.add_column("status")
    t.add_column("entered")
    t.add_column("exited / last refresh")
    for s in card.segments_now:
        t.add_row(escape(s["segment"]), "[green]in[/]", _fmt(s["entered_at"]),
                  f"[dim]refreshed {_fmt(s['last_refresh'])}[/]")
    for s in card.segments_past:
        t.add_row(escape(s["segment"]), "[dim]left[/]", _fmt(s["entered_at"]),
                  _fmt(s["exited_at"]))
    if not card.segments_now and not card.segments_past:
        t.add_row(f"[dim]{escape(card.notes.get('segments', '(none)'))}[/]", "", "", "")
    return t


def _personas(card: ContactCard) -> Panel:
    p = card.personas
    lines = []
    for tpl in p["templates"]:
        lines.append(f"template [bold]{escape(str(tpl['template']))}[/] "
                     f"(segment {escape(str(tpl['segment']))})")
    if p["discovered"]:
        d = p["discovered"]
        lines.append(f"discovered: [bold]{escape(str(d['persona']))}[/] (cluster {d['cluster']})")
    lines += [f"[dim]{escape(n)}[/]" for n in p["notes"]]
    return Panel("\n".join(lines) or "[dim](none)[/]", title="Personas", title_align="left",
                 border_style="cyan", expand=False)


def _deals(card: ContactCard) -> Table:
    t = Table(title="Deals", title_justify="left")
    for col in ("deal", "stage", "status", "pipeline", "amount", "stage since", "path"):
        t.add_column(col, justify="right" if col == "amount" else "left")
    for d in card.deals:
        star = " [bold]*[/]" if d["current"] else ""
        t.add_row(escape(d["deal_id"]) + star, escape(d["stage"]), d["status"],
                  _fmt(d["pipeline"]), _fmt(d["amount"]), _fmt(d["stage_since"]),
                  escape(" > ".join(d["path"])))
    t.caption = "* the deal segment rules see as deal.stage" if card.deals else "no deals"
    return t


def _orders(card: ContactCard) -> Table:
    t = Table(title=f"Last {len(card.orders)} orders", title_justify="left")
    for col in ("order", "date", "status", "channel", "total", "sku", "product", "category",
                "qty", "unit price"):
        t.add_column(col, justify="right" if col in ("total", "qty", "unit price") else "left")
    for o in card.orders:
        items = o.get("items") or [{}]
        for i, it in enumerate(items):
            head = (escape(o["order_id"]), _fmt(o["ordered_at"]), _fmt(o["status"]),
                    _fmt(o["channel"]), _fmt(o["total"])) if i == 0 else ("",) * 5
            t.add_row(*head, _fmt(it.get("sku")), _fmt(it.get("name")), _fmt(it.get("category")),
                      _fmt(it.get("quantity")), _fmt(it.get("unit_price")))
        t.add_section()
    return t


def _timeline(card: ContactCard) -> Table:
    t = Table(title=f"Timeline: the {len(card.timeline)} most recent activities",
              title_justify="left")
    for col in ("time", "source", "type", "description"):
        t.add_column(col, no_wrap=col != "description")
    for a in card.timeline:
        t.add_row(_fmt(a["time"]), a["source"], escape(str(a["type"])), escape(a["description"]))
    return t


def card_renderables(card: ContactCard) -> list:
    """The card as Rich renderables, top to bottom."""
    p = card.profile
    name = " ".join(str(x) for x in (p.get("first_name"), p.get("last_name")) if x)
    name = name or card.contact_id
    head = (f"[bold]{escape(name)}[/]  {escape(card.contact_id)}  "
            f"[dim]as of {card.as_of:%Y-%m-%d %H:%M} UTC"
            + (" (found by e-mail)" if card.matched_by == "email" else "") + "[/]")
    consents = Table.grid(padding=(0, 1))
    consents.add_column(style="bold")
    consents.add_column()
    for k, v in card.consents.items():
        consents.add_row(escape(k), _consent(v))
    out: list = [
        head,
        Columns([
            _kv({k: v for k, v in p.items() if k not in ("first_name", "last_name")}, "Profile"),
            Panel(consents, title="Consents", title_align="left", border_style="green",
                  expand=False),
            _kv(card.attributes, "Custom attributes", border="yellow"),
        ]),
        Columns([_scores(card), _personas(card)]),
        _segments(card),
        _deals(card),
    ]
    if card.orders:
        out.append(_orders(card))
    out.append(_timeline(card))
    if "contact" in card.notes:
        out.append(f"[yellow]{escape(card.notes['contact'])}[/]")
    return out


@app.command("show")
def contact_cmd(
    contact: Annotated[str, typer.Argument(help="A contact_id or an e-mail address.")],
    events: Annotated[
        int, typer.Option("--events", min=0, help="Timeline length (events, orders, deals).")
    ] = DEFAULT_EVENTS,
    orders: Annotated[
        int, typer.Option("--orders", min=0, help="Last orders shown with their items.")
    ] = DEFAULT_ORDERS,
    as_of: AsOfOpt = None,
    workspace: WorkspaceOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """One contact's card: profile, consents, RFM, CLV, segments, deals, orders, timeline."""
    from segmentum.analytics.contact_card import contact_card

    when = parse_as_of(as_of)
    with open_ws(workspace) as ws:
        card = contact_card(ws, contact, when, events=events, orders=orders)
    if as_json:
        emit_json(card.to_dict())
        return
    for part in card_renderables(card):
        console.print(part)


@app.command("erase")
def erase_cmd(
    contact_id: Annotated[str, typer.Argument(help="The contact_id to erase.")],
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Erase without asking first.")] = False,
    compact: Annotated[bool, typer.Option(
        "--compact/--no-compact", help="Rewrite the workspace file afterwards, so no freed page "
        "keeps the data (as long as reading the whole workspace).")] = True,
    by: Annotated[str | None, typer.Option("--by", help="Who asks, for the audit record "
                                           "(default: your user name).", show_default=False)] = None,
    workspace: WorkspaceOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Erase a contact from every table and file of the workspace; keep salted-hash tombstones."""
    import getpass

    from segmentum.errors import UsageError
    from segmentum.privacy import erase_contact

    with json_errors(as_json):
        if not yes:
            if not sys.stdin.isatty():
                raise UsageError(f"Erasing {contact_id} cannot be undone: pass --yes to go ahead.")
            typer.confirm(f"Erase {contact_id} everywhere? This cannot be undone", abort=True)
        with open_ws(workspace) as ws:
            audit = erase_contact(ws, contact_id, by=by or getpass.getuser(), compact=compact)
        if as_json:
            emit_json(audit)
            return
        _print_erasure(contact_id, audit)


def _print_erasure(contact_id: str, audit: dict) -> None:
    t = Table(title=f"Erased {escape(contact_id)} (erasure {audit['erasure_id']})", title_justify="left")
    t.add_column("where")
    t.add_column("rows / records", justify="right")
    for where, n in {**audit["tables"], **audit["files"]}.items():
        t.add_row(escape(where), f"{n:,}")
    console.print(t)
    console.print(f"{audit['tombstones']} salted-hash tombstones keep its identifiers out of later "
                  "loads; " + ("the workspace file was rewritten." if audit["compacted"] else
                               "the next erasure without --no-compact rewrites the file."),
                  highlight=False)
    if audit["exports_affected"]:
        console.print("Exports whose audience held it (remove it on those platforms too): "
                      + ", ".join(str(e) for e in audit["exports_affected"]), highlight=False)
    for w in audit["warnings"]:
        console.print(f"[yellow]Note:[/] {escape(w)}", highlight=False)


@app.command("readmit")
def readmit_cmd(
    reason: Annotated[str, typer.Option("--reason", help="How the person gave consent again.")],
    contact_id: Annotated[str | None, typer.Option("--id", help="Its contact_id.", show_default=False)] = None,
    email: Annotated[str | None, typer.Option("--email", help="Its e-mail address.", show_default=False)] = None,
    phone: Annotated[str | None, typer.Option("--phone", help="Its phone number.", show_default=False)] = None,
    by: Annotated[str | None, typer.Option("--by", help="Who readmits (default: your user name).",
                                           show_default=False)] = None,
    workspace: WorkspaceOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Accept an erased person's identifiers again, after consent was given anew."""
    import getpass

    from segmentum.privacy import readmit

    with json_errors(as_json), open_ws(workspace) as ws:
        out = readmit(ws, contact_id=contact_id, email=email, phone=phone, reason=reason,
                      by=by or getpass.getuser())
        if as_json:
            emit_json(out)
        else:
            console.print(f"Readmitted: {out['lifted']} tombstone(s) lifted; loads accept these "
                          "identifiers again.", highlight=False)
