"""Timers: when each contact's truth in a segment can next change with no new data.

A rule's truth as of T moves with T alone only at known moments (``next_changes``):

* a row of a fact (an aggregate, first / last, exists / no / purchased, a trend's halves)
  becomes visible at its own time when dated after T, and enters or leaves a relative window
  at ``g(t)``, the earliest T' with ``shift(T', amount) >= t``: ``t + amount`` for hours,
  days and weeks; for calendar months and years ``t + amount`` unless the month end clamped
  it (31 Jan + 1 month = 28 Feb), then the first instant of the month after;
* ``x within <window>``: x itself (if after T) and ``g(x)``;
* ``days_since(x)``: compared with a number c, at ``x + floor(c)`` and ``x + floor(c) + 1``
  days; anywhere else at the next whole day since x;
* ``age``: the next birthday, midnight UTC (29 February: 1 March in other years);
* the contact's ``created_at`` (it becomes a candidate) and, for rules reading the current
  deal, every deal row dated after T.

Between two such moments the truth is constant, so re-evaluating a contact at the earliest
one after T is exact. The live engine keeps a one-second clock (as-of times are whole
seconds, as everywhere in Segmentum), so a moment is handled at :func:`tick` (its ceiling).

The table ``_live_timers`` (segment, contact_id, due_at) holds, per segment and contact, the
next such moment; :class:`TimerTable` replaces a contact's rows whenever it is evaluated and
hands out what is due, earliest first.
"""

from __future__ import annotations

import dataclasses as dc
import datetime as _dt
import math
from collections.abc import Iterable, Mapping

import ibis
import ibis.expr.types as ir
import pyarrow as pa

from segmentum.data.schema import STR, TS
from segmentum.segments import ast as A
from segmentum.segments.compiler import Compiler, shift
from segmentum.segments.passes import CheckedRule

__all__ = ["tick", "next_changes", "TimerTable", "TIMERS", "TIMERS_SCHEMA"]

TIMERS = "_live_timers"
TIMERS_SCHEMA = {"segment": STR, "contact_id": STR, "due_at": TS}
TS_UTC = "timestamp('UTC')"
_SLACK = _dt.timedelta(days=4)  # month ends move g(t) by at most three days


def tick(t: _dt.datetime) -> _dt.datetime:
    """``t`` rounded up to the whole second (the live engine's clock)."""
    down = t.replace(microsecond=0)
    return down if down == t else down + _dt.timedelta(seconds=1)


def _g(t: ir.TimestampValue, amount: int, unit: str) -> ir.TimestampValue:
    """The earliest T' with shift(T', amount unit) >= t (see the module docstring)."""
    if unit in ("hours", "days", "weeks"):
        return t + ibis.interval(**{unit: amount})
    t0 = t + ibis.interval(months=amount * (12 if unit == "years" else 1))
    return ibis.ifelse(t0.day() == t.day(), t0, t0.truncate("M") + ibis.interval(months=1))


def _amounts(window: A.Node | None) -> tuple[tuple[int, str], ...]:
    if isinstance(window, A.Last):
        return ((window.amount, window.unit),)
    if isinstance(window, A.Ago):
        return tuple((a, window.unit) for a in (window.far, window.near) if a > 0)
    return ()


def _after(candidates: list[ir.TimestampValue], T: ir.Value) -> ir.TimestampValue:
    """The earliest of ``candidates`` after T (null if none)."""
    later = [ibis.ifelse(c > T, c, ibis.null(TS_UTC)) for c in candidates]
    return later[0] if len(later) == 1 else ibis.least(*later)


@dc.dataclass
class _Sources:
    """Candidate sources, each built once and tagged with the segments that use it."""

    comp: Compiler
    T: _dt.datetime
    built: dict = dc.field(default_factory=dict)  # key -> (expr (#cid, at), set of segments)
    values: dict = dc.field(default_factory=dict)  # key -> (x node, rule, offsets, segments)

    def add(self, key, segment: str, make) -> None:
        if key not in self.built:
            self.built[key] = (make(), set())
        self.built[key][1].add(segment)

    def parts(self) -> list[tuple[ir.Table, set[str]]]:
        """Every source as (cid, at) with its segments: rows sources first, then the value
        sources, all read from one narrow wide table (only the facts the values need)."""
        out = list(self.built.values())
        if self.values:
            comp = Compiler(self.comp.catalog, self.T, contacts=self.comp.contacts, exists="scan")
            for x_node, rule, offsets, _ in self.values.values():
                comp.add_value(x_node, rule)
                if isinstance(offsets, _Days):
                    comp.add_value(offsets.node, rule)
            w = comp.wide
            cols = {}
            for i, (x_node, rule, offsets, _) in enumerate(self.values.values()):
                x = comp.node_value(x_node, rule, "timestamp")
                if x.type().is_date():
                    x = x.cast(TS_UTC)
                cols[f"x{i}"] = _after(offsets(x, rule, comp), self._T)
            table = w.select(cid=w.k, **cols)
            out += [(table.select("cid", at=table[f"x{i}"]), segments)
                    for i, (*_, segments) in enumerate(self.values.values())]
        return out

    # -- one per kind of moment ---------------------------------------------------------
    def rows(self, segment: str, node: A.Node, window: A.Node | None, fact_window=None) -> None:
        fact = self.comp.fact_of(node, fact_window)
        amounts = _amounts(window)
        key = ("rows", fact.table, fact.event_type, fact.where, fact.completed, amounts)

        def make():
            r = self.comp.fact_rows(fact)
            lows = [shift(self.T, a, u) for a, u in amounts]
            lower = min((lo - _SLACK for lo in lows if lo is not None), default=self.T)
            r = r.filter(r["#ts"] > ibis.literal(lower, type=TS_UTC))
            ts = r["#ts"]
            return r.select(cid=r["#cid"], at=_after([ts, *(_g(ts, a, u) for a, u in amounts)],
                                                     self._T))
        self.add(key, segment, make)

    def value(self, segment: str, rule: CheckedRule, x_node: A.Node, offsets) -> None:
        """Moments computed from a contact-level timestamp x: ``offsets(x)`` -> candidates."""
        key = ("value", x_node, offsets.key)
        self.values.setdefault(key, (x_node, rule, offsets, set()))[3].add(segment)

    def contacts(self, segment: str, kind: str) -> None:
        def make():
            c = self.comp.restrict(self.comp.wh.table("contacts"))
            if kind == "created":
                return c.select(cid=c.contact_id, at=_after([c.created_at], self._T))
            return c.select(cid=c.contact_id, at=_birthday(c.birth_date, self.T))
        self.add((kind,), segment, make)

    def deals(self, segment: str) -> None:
        def make():
            d = self.comp.restrict(self.comp.wh.table("deals"))
            return d.select(cid=d.contact_id, at=_after([d.updated_at], self._T))
        self.add(("deals",), segment, make)

    @property
    def _T(self) -> ir.Value:
        return ibis.literal(self.T, type=TS_UTC)


def _birthday(birth: ir.DateValue, T: _dt.datetime) -> ir.TimestampValue:
    """The first midnight UTC after T at which the age from ``birth`` goes up."""
    def on(year: int) -> ir.TimestampValue:
        first = ibis.date(ibis.literal(year), birth.month(), ibis.literal(1))
        return (first + (birth.day() - 1).as_interval("D")).cast(TS_UTC)

    this_year = on(T.year)
    return ibis.ifelse(this_year > ibis.literal(T, type=TS_UTC), this_year, on(T.year + 1))


@dc.dataclass(frozen=True)
class _Within:
    """x itself and g(x) for the window's relative amounts."""

    window: A.Node

    @property
    def key(self):
        return ("within", self.window)

    def __call__(self, x, rule, comp):
        return [x, *(_g(x, a, u) for a, u in _amounts(self.window))]


@dc.dataclass(frozen=True)
class _Days:
    """x + k days for fixed k (days_since compared with numbers), else the next whole day
    since x (``node``: the days_since node, whose value the compiler computes)."""

    ks: tuple[int, ...] | None
    node: A.DaysSince

    @property
    def key(self):
        return ("days", self.ks) if self.ks is not None else ("days", self.node)

    def __call__(self, x, rule, comp):
        if self.ks is not None:
            return [x + ibis.interval(days=k) for k in self.ks]
        return [x + (comp.node_value(self.node, rule) + 1).as_interval("D")]


def next_changes(comp: Compiler, rules: Mapping[str, CheckedRule]) -> ir.Table:
    """(segment, contact_id, due_at): for each rule and contact of ``comp`` (built with
    ``exists="scan"``, every rule added), the earliest moment after ``comp.T`` at which the
    rule's truth can change with no new data; pairs with no such moment are absent."""
    src = _Sources(comp, comp.T)
    for name, rule in rules.items():
        for r in (rule, *rule.all_dependencies().values()):
            _collect(src, name, r)
        src.contacts(name, "created")
    parts, mapping = [], []
    for i, (expr, segments) in enumerate(src.parts()):
        expr = expr.filter(expr.at.notnull())
        expr = expr.group_by("cid").agg(at=expr.at.min())  # one row per contact and source
        parts.append(expr.select("cid", "at", src=ibis.literal(i, type="int32")))
        mapping += [{"src": i, "segment": s} for s in sorted(segments)]
    if not parts:
        return _empty()
    u = ibis.union(*parts, distinct=False) if len(parts) > 1 else parts[0]
    m = ibis.memtable(pa.Table.from_pylist(mapping, schema=pa.schema(
        [("src", pa.int32()), ("segment", pa.string())])))
    j = u.join(m, "src")
    return j.group_by(["segment", "cid"]).agg(due_at=j.at.min()).rename(contact_id="cid")


def contact_level(tree: A.Node) -> Iterable[A.Node]:
    """The nodes of a rule outside row filters (``where`` holds row-level names)."""
    stack = [tree]
    while stack:
        n = stack.pop()
        yield n
        stack.extend(c for c in A.children(n) if c is not getattr(n, "where", None))


def _collect(src: _Sources, segment: str, rule: CheckedRule) -> None:
    """Register the moment sources of one rule (or a segment it names) for ``segment``."""
    from segmentum.segments.passes import CONTACT
    from segmentum.segments.passes.resolve import resolve_field

    nodes = list(contact_level(rule.simplified))
    in_trend = {id(n.aggregate) for n in nodes if isinstance(n, A.Trend)}
    compared: dict[int, tuple[int, ...]] = {}
    for n in nodes:
        if isinstance(n, (A.Compare, A.Between)):
            for days, ks in days_compared(n):
                compared[id(days)] = ks
    for n in nodes:
        if isinstance(n, (A.Aggregate, A.Occurrence, A.Exists, A.Purchased)) and id(n) not in in_trend:
            src.rows(segment, n, n.window)
        elif isinstance(n, A.Trend):
            for window in (n.current_window, n.previous_window):
                src.rows(segment, n.aggregate, window, window)
        elif isinstance(n, A.Within):
            src.value(segment, rule, n.operand, _Within(n.window))
        elif isinstance(n, A.DaysSince):
            src.value(segment, rule, n.operand, _Days(compared.get(id(n)), n))
        elif isinstance(n, A.Field):
            table = resolve_field(n, CONTACT, rule.context).table
            if table == "derived":
                src.contacts(segment, "age")
            elif table == "deal":
                src.deals(segment)


def days_compared(n: A.Compare | A.Between) -> Iterable[tuple[A.DaysSince, tuple[int, ...]]]:
    """days_since(x) compared with number literals: the whole days at which it can flip."""
    if isinstance(n, A.Compare):
        pairs = [(n.left, [n.right]), (n.right, [n.left])]
    else:
        pairs = [(n.operand, [n.low, n.high])]
    for side, others in pairs:
        if isinstance(side, A.DaysSince) and all(
            isinstance(o, A.Literal) and isinstance(o.value, (int, float))
            and not isinstance(o.value, bool) and abs(o.value) < 10**6 for o in others
        ):
            ks = sorted({k for o in others for k in (math.floor(o.value), math.floor(o.value) + 1)})
            yield side, tuple(ks)


def _empty() -> ir.Table:
    return ibis.memtable(pa.table({"segment": pa.array([], pa.string()),
                                   "contact_id": pa.array([], pa.string()),
                                   "due_at": pa.array([], pa.timestamp("us", tz="UTC"))}))


class TimerTable:
    """``_live_timers``: per segment and contact, the next moment its truth can change."""

    def __init__(self, wh) -> None:
        self.wh = wh
        wh.create_table(TIMERS, TIMERS_SCHEMA)

    def replace(self, segments: list[str], contacts: list[str] | None, due: ir.Table) -> int:
        """Forget the timers of ``segments`` x ``contacts`` (all contacts: None) and keep
        ``due``'s (segment, contact_id, due_at) instead (inside the caller's transaction)."""
        raw = self.wh.raw
        if contacts is None:
            raw.execute(f"DELETE FROM {TIMERS} WHERE segment IN (SELECT unnest($1))", [segments])
        elif contacts:
            raw.execute(f"DELETE FROM {TIMERS} WHERE segment IN (SELECT unnest($1)) "
                        "AND contact_id IN (SELECT unnest($2))", [segments, contacts])
        rows = due.to_pyarrow() if contacts is not None else None
        if rows is not None:
            if rows.num_rows:
                self.wh.insert(TIMERS, ibis.memtable(rows))
            return rows.num_rows
        before = self.count()
        self.wh.insert(TIMERS, due.select("segment", "contact_id", "due_at"))
        return self.count() - before

    def count(self) -> int:
        return int(self.wh.table(TIMERS).count().to_pyarrow().as_py())

    def next_due(self) -> _dt.datetime | None:
        """The earliest due time (None: no timer)."""
        value = self.wh.table(TIMERS).due_at.min().to_pyarrow().as_py()
        return None if value is None else value.astimezone(_dt.UTC)

    def first_due(self, upto: _dt.datetime) -> tuple[_dt.datetime, _dt.datetime, dict[str, list[str]]] | None:
        """The earliest tick with timers due by ``upto``, the exact earliest due time, and
        per segment the contacts due at that tick (None: nothing due)."""
        t = self.wh.table(TIMERS)
        first = t.filter(t.due_at <= ibis.literal(upto, type=TS_UTC)).due_at.min().to_pyarrow().as_py()
        if first is None:
            return None
        first = first.astimezone(_dt.UTC)
        at = tick(first)
        t = t.filter(t.due_at <= ibis.literal(at, type=TS_UTC))  # the whole tick
        out: dict[str, list[str]] = {}
        for r in t.select("segment", "contact_id").to_pyarrow().to_pylist():
            out.setdefault(r["segment"], []).append(r["contact_id"])
        return at, first, out

    def handled(self, segments: list[str], contacts: list[str], at: _dt.datetime) -> None:
        """Drop the timers of ``segments`` x ``contacts`` due by ``at`` (an evaluation as of
        ``at`` covered them; the timers it set are later)."""
        if segments and contacts:
            self.wh.raw.execute(
                f"DELETE FROM {TIMERS} WHERE segment IN (SELECT unnest($1)) AND contact_id IN "
                "(SELECT unnest($2)) AND due_at <= $3", [segments, contacts, at])

    def overdue(self, now: _dt.datetime) -> dict[str, _dt.datetime]:
        """Segment -> its earliest timer due by ``now`` and not yet handled."""
        t = self.wh.table(TIMERS)
        t = t.filter(t.due_at <= ibis.literal(now, type=TS_UTC))
        rows = t.group_by("segment").agg(first=t.due_at.min()).to_pyarrow().to_pylist()
        return {r["segment"]: r["first"] for r in rows}

    def forget(self, segments: Iterable[str]) -> None:
        self.wh.raw.execute(f"DELETE FROM {TIMERS} WHERE segment IN (SELECT unnest($1))",
                            [list(segments)])
