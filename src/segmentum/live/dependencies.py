"""Which saved segments a change can affect: the tables, event types and fields their rules read.

A rule's :class:`Dependencies` come from its checked tree (the segments it names through
``in_segment`` included, as the compiler inlines them), resolved by the compiler itself so
they are exactly what an evaluation reads:

* ``tables``: every table whose rows or fields it reads. ``contacts`` always (the candidates
  are the contacts created by T); order-line facts also read ``orders`` (an order's status
  and time decide which lines count) and ``products`` when they test a product field;
* ``event_types``: the event types whose rows it counts;
* ``fields``: ``table.column`` of every field it reads (profile, rows, products, scores);
* ``models``: the score tables it reads (``rfm``, ``clv``, a persona table, ...);
* ``clock``: whether its truth can change with time alone (a window relative to T,
  ``days_since``, ``age``, ``within``, or rows dated after T becoming visible).

A :class:`Change` says what a stored batch changed: the contacts it touched (``None``: any
contact, as after a score recompute or a catalogue change), the tables, and the event types
of its events. :func:`affected` keeps the segments that can depend on it.
"""

from __future__ import annotations

import dataclasses as dc
from collections.abc import Iterable, Mapping

from segmentum.segments import ast as A
from segmentum.segments.passes import CheckedRule

__all__ = ["Dependencies", "Change", "dependencies", "affected"]

ROW_TABLES = ("events", "orders", "order_items", "deals")
CONTACT_TABLES = ("contacts", "derived")


@dc.dataclass(frozen=True)
class Dependencies:
    """What one rule reads (see the module docstring)."""

    tables: frozenset[str]
    event_types: frozenset[str]
    fields: frozenset[str]
    models: frozenset[str]
    segments: frozenset[str]
    clock: bool

    def to_dict(self) -> dict:
        return {k: sorted(v) if isinstance(v, frozenset) else v for k, v in dc.asdict(self).items()}


@dc.dataclass(frozen=True)
class Change:
    """What one stored batch changed: contacts (None = any), tables, event types (None =
    unknown: any type)."""

    contacts: frozenset[str] | None
    tables: frozenset[str]
    event_types: frozenset[str] | None = None

    @classmethod
    def of(cls, contacts: Iterable[str] | None, tables: Iterable[str],
           event_types: Iterable[str] | None = None) -> Change:
        return cls(None if contacts is None else frozenset(map(str, contacts)), frozenset(tables),
                   None if event_types is None else frozenset(event_types))


def dependencies(comp, rule: CheckedRule) -> Dependencies:
    """The dependencies of ``rule``, from a compiler (``exists="scan"``) it was added to
    alone, so every fact and field the compiler registered is this rule's."""
    tables, types, fields, models = {"contacts"}, set(), set(), set()
    for info in comp.fields:
        table = {"derived": "contacts", "deal": "deals"}.get(info.table, info.table)
        tables.add(table)
        fields.add(f"{table}.{info.column}")
        if comp.catalog.is_model(info.table):
            models.add(info.table)
    for fact in comp.facts:
        tables.add(fact.table)
        if fact.event_type is not None:
            types.add(fact.event_type)
        if fact.table == "order_items":
            tables.add("orders")
        for info in comp.row_fields(fact):
            table = "events" if info.table == "properties" else info.table
            tables.add(table)
            fields.add(f"{table}.{info.column}")
    segments = frozenset(rule.all_dependencies())
    return Dependencies(frozenset(tables), frozenset(types), frozenset(fields),
                        frozenset(models), segments, _clock(rule, comp))


def _clock(rule: CheckedRule, comp) -> bool:
    """Does the rule read time relative to T (a window such as ``last 90 days``, a trend,
    ``days_since``, ``within``, ``age``)? Rows dated after T, which any rule with a row
    source or a contact created after T can see appear, are the timers' business anyway."""
    if any(info.table == "derived" for info in comp.fields):
        return True
    relative = (A.Within, A.DaysSince, A.Trend, A.Last, A.Ago)
    return any(isinstance(n, relative) for r in (rule, *rule.all_dependencies().values())
               for n in A.walk(r.simplified))


def affected(deps: Mapping[str, Dependencies], change: Change) -> list[str]:
    """The segments (names of ``deps``) whose members ``change`` can alter, sorted."""
    out = []
    for name, d in deps.items():
        if not (d.tables & change.tables):
            continue
        row_hit = bool(d.tables & (change.tables - {"events"}))
        if "events" in change.tables and "events" in d.tables:
            row_hit = row_hit or change.event_types is None or bool(d.event_types & change.event_types)
        if row_hit:
            out.append(name)
    return sorted(out)
