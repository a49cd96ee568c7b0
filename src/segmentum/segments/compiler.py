"""Checked rules → Ibis expressions (never SQL text), evaluated as of a time T.

The plan for a set of rules (one preview, or every segment of a refresh):

1. **Collect.** Walk each rule (and the segments it names through ``in_segment``, inlined
   so they are evaluated as of the same T) and register what it needs per contact:
   contact fields, score fields (``rfm.* clv.* lifestage.*``), the current deal, and
   *facts* — one per distinct aggregate / first / last / trend half (identical ones
   across rules are shared).
2. **Aggregate.** The facts of one source table become columns of one aggregation grouped
   by contact, each fact a conditional aggregate (``count(*) FILTER (WHERE ...)``). Event
   facts are read by one scan per event type and property filter, the tests pushed into
   the scan (``type = 'email_open' AND occurred_at > T - 90 days``), the scans stacked;
   the other tables are scanned once for all their facts, each distinct row test computed
   once and shared (``_aggregate``).
   ``exists`` / ``no`` / ``purchased`` ride along as counts when their table is scanned
   anyway (or three or more share it), else they are semi-joins (``contact_id IN (SELECT
   contact_id FROM ... WHERE ...)``).
3. **Widen.** Contacts created up to T (one row each), left-joined with the grouped
   facts and the score tables: the *wide* table, whose columns have generated names
   (``v0``, ``f3``...), so no user name ever becomes an identifier.
4. **Condition.** Each rule becomes one boolean expression over the wide table, in
   two-valued logic: a comparison with a null side is false (``coalesce(x op y, false)``
   where a value is needed, plain ``x op y`` inside a filter, where null already means
   false), and ``not`` always negates a never-null operand, so it is exact.

Constants are typed from what they are compared with (a date string next to a timestamp
becomes a UTC timestamp; a float next to a decimal column becomes a decimal of its shortest
text, so 0.1 stays 0.1); integers beyond 64 bits become floats; arithmetic is in floats
and ``x / 0`` is null. Windows are computed in Python from T (calendar months and years
with ``relativedelta``) and enter the expression as timestamp literals; ``days_since``
uses epoch microseconds on DuckDB (its time-zone aware ``date_diff`` is ~80x slower).

    >>> comp = Compiler(catalog, as_of)
    >>> comp.add(checked)
    >>> members = comp.members(checked)          # Ibis table: contact_id
    >>> comp.node_value(node, checked)           # explain: one condition or value
"""

from __future__ import annotations

import dataclasses as dc
import datetime as _dt
import functools
import operator
from collections.abc import Collection
from decimal import Decimal

import ibis
import ibis.expr.datatypes as dt
import ibis.expr.types as ir
from dateutil.relativedelta import relativedelta

from segmentum.data.schema import ORDER_LINE_COLUMNS, is_purchase
from segmentum.segments import ast as A
from segmentum.segments.catalog import Catalog, FieldInfo, SourceInfo
from segmentum.segments.passes import CONTACT, ORDER_ITEMS, CheckedRule, Context
from segmentum.segments.passes.resolve import resolve_field, resolve_source
from segmentum.segments.passes.typecheck import TEMPORAL, type_of, unify

__all__ = ["Compiler", "Bounds", "window_bounds", "shift", "Fact"]

UTC = _dt.UTC
TS = dt.Timestamp(timezone="UTC")
F64 = dt.float64
DAY_US = 86_400_000_000
INT64 = (-(2**63), 2**63 - 1)


# -- time ------------------------------------------------------------------------------------


def shift(t: _dt.datetime, amount: int, unit: str) -> _dt.datetime | None:
    """``t`` minus ``amount`` units (calendar months / years); None if before year 1."""
    try:
        if unit == "hours":
            return t - _dt.timedelta(hours=amount)
        if unit == "days":
            return t - _dt.timedelta(days=amount)
        if unit == "weeks":
            return t - _dt.timedelta(weeks=amount)
        if unit == "months":
            return t - relativedelta(months=amount)
        return t - relativedelta(years=amount)
    except (OverflowError, ValueError):
        return None


def _utc(text: str) -> _dt.datetime:
    return A.parse_date(text).replace(tzinfo=UTC)


@dc.dataclass(frozen=True)
class Bounds:
    """Rows with ``lo < t`` (``<=`` if lo_incl; no lower end if lo is None) and ``t < hi``
    (``<=`` if hi_incl). ``empty`` windows match nothing."""

    lo: _dt.datetime | None
    lo_incl: bool
    hi: _dt.datetime | None
    hi_incl: bool
    empty: bool = False


def window_bounds(window: A.Node | None, T: _dt.datetime) -> Bounds:
    """The rows a window lets through, as of T (never after T)."""
    if window is None:
        return Bounds(None, False, T, True)
    if isinstance(window, A.Last):
        return Bounds(shift(T, window.amount, window.unit), False, T, True)
    if isinstance(window, A.Ago):
        hi = shift(T, window.near, window.unit)
        if hi is None:
            return Bounds(None, False, None, False, empty=True)
        return Bounds(shift(T, window.far, window.unit), False, hi, True)
    if isinstance(window, A.Since):
        return Bounds(_utc(window.date), True, T, True)
    if isinstance(window, A.Before):
        end = _utc(window.date)
        return Bounds(None, False, end, False) if end <= T else Bounds(None, False, T, True)
    if isinstance(window, A.DateRange):
        start = _utc(window.start)
        if len(window.end) == 10:  # a date: the whole day
            end, incl = _utc(window.end) + _dt.timedelta(days=1), False
        else:
            end, incl = _utc(window.end), True
        if end > T or (end == T and incl):
            end, incl = T, True
        return Bounds(start, True, end, incl)
    raise TypeError(f"not a window: {window!r}")  # pragma: no cover


def _ts(value: _dt.datetime) -> ir.Value:
    return ibis.literal(value, type=TS)


def _epoch_us_of(value: _dt.datetime) -> int:
    delta = value.astimezone(UTC) - _dt.datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


@ibis.udf.scalar.builtin(name="epoch_us")
def _epoch_us_utc(x: dt.Timestamp(timezone="UTC")) -> dt.int64:  # type: ignore[valid-type]
    """DuckDB's epoch_us: microseconds since 1970-01-01 UTC."""


@ibis.udf.scalar.builtin(name="epoch_us")
def _epoch_us_naive(x: dt.Timestamp()) -> dt.int64:  # type: ignore[valid-type]
    """DuckDB's epoch_us of a timestamp without a time zone (read as UTC)."""


def _in_bounds(x: ir.Value, b: Bounds, T: _dt.datetime | None = None) -> ir.BooleanValue:
    """``x`` (a timestamp) inside the bounds; ``T``: rows are already cut at T."""
    if b.empty:
        return ibis.literal(False)
    pred = None

    def both(p):
        return p if pred is None else pred & p

    if b.lo is not None:
        pred = both(x >= _ts(b.lo) if b.lo_incl else x > _ts(b.lo))
    if b.hi is not None and not (T is not None and b.hi == T and b.hi_incl):
        pred = both(x <= _ts(b.hi) if b.hi_incl else x < _ts(b.hi))
    return ibis.literal(True) if pred is None else pred


# -- facts -----------------------------------------------------------------------------------


@dc.dataclass(frozen=True)
class Fact:
    """One per-contact aggregate over one source: the unit that scans share.

    ``func``: count / sum / avg / min / max / first / last; ``field`` the aggregated row
    field (None for count, first, last); ``event_type`` for events; ``completed``: only
    completed orders count (orders and order items, unless the filter tests status).
    """

    table: str
    func: str
    field: FieldInfo | None
    event_type: str | None
    where: A.Node | None
    bounds: Bounds
    completed: bool


def _tests_status(where: A.Node | None, source: SourceInfo, ctx: Context) -> bool:
    if where is None:
        return False
    for n in A.walk(where):
        if isinstance(n, A.Field):
            info = resolve_field(n, source, ctx)
            if info.table == "orders" and info.column == "status":
                return True
    return False


# -- the compiler ----------------------------------------------------------------------------


class Compiler:
    """Compiles checked rules over one workspace as of one time (see the module doc).

    ``contact_id`` restricts every scan to one contact (explain), ``contacts`` to a set of
    them or to the ids of a table (the live evaluation of the contacts a change touched).
    ``exists`` says how
    exists / no / purchased compile: "semi" as semi-joins (``contact_id IN (SELECT ...)``),
    "scan" as counts in the shared scan of their table, "auto" (default) as counts when
    that table is scanned for other facts anyway or three or more of them share it, and
    as semi-joins otherwise (a lone purchased(brand = "x") is cheapest as a semi-join:
    the database filters the products before joining the order items).
    """

    def __init__(
        self,
        catalog: Catalog,
        as_of: _dt.datetime,
        *,
        contact_id: str | None = None,
        exists: str = "auto",
        contacts: Collection[str] | ir.Table | None = None,
    ) -> None:
        if exists not in ("auto", "semi", "scan"):
            raise ValueError(f"exists is 'auto', 'semi' or 'scan', not {exists!r}")
        if as_of.tzinfo is None:
            as_of = as_of.replace(tzinfo=UTC)
        self.catalog = catalog
        self.wh = catalog.wh
        self.T = as_of.astimezone(UTC)
        self.contact_id = contact_id
        if contacts is not None and not isinstance(contacts, ir.Table):
            contacts = sorted({str(c) for c in contacts})
        self.contacts = contacts
        self.exists = exists
        self._exists_facts: dict[Fact, None] = {}
        self.ctx = Context(catalog, text="", root=A.Literal(True))
        self._facts: dict[Fact, str] = {}
        self._fields: dict[FieldInfo, str] = {}
        self._wide: ir.Table | None = None
        self._added: set[int] = set()
        self.analytics_used: set[str] = set()

    # -- pass 1: collect ---------------------------------------------------------------------
    def add(self, rule: CheckedRule, *, original: bool = False) -> None:
        """Register what ``rule`` needs (its dependencies too). ``original``: also the
        unsimplified tree, for explain."""
        if self._wide is not None:
            raise RuntimeError("add every rule before compiling")
        key = id(rule)
        if key in self._added:
            return
        self._added.add(key)
        for dep in rule.dependencies.values():
            self.add(dep, original=original)
        self._collect(rule.simplified)
        if original:
            self._collect(rule.tree)

    def add_value(self, node: A.Node, rule: CheckedRule) -> None:
        """Register what one contact-level value of ``rule`` needs (explain shows values,
        such as the count behind an exists, that the rule itself does not compute)."""
        del rule  # names resolve the same in every rule of a workspace
        if self._wide is not None:
            raise RuntimeError("add every value before compiling")
        self._collect(node)

    def _collect(self, root: A.Node) -> None:
        stack = [root]
        while stack:
            node = stack.pop()
            if isinstance(node, A.Field):
                self._field_name(resolve_field(node, CONTACT, self.ctx))
                continue
            if isinstance(node, (A.Aggregate, A.Occurrence)):
                self._fact_name(self._fact(node))
                continue
            if isinstance(node, A.Trend):
                self._fact_name(self._fact(node.aggregate, node.current_window))
                self._fact_name(self._fact(node.aggregate, node.previous_window))
                continue
            if isinstance(node, (A.Exists, A.Purchased)):
                if self.exists == "scan":
                    self._fact_name(self._exists_fact(node))
                elif self.exists == "auto":
                    self._exists_facts[self._exists_fact(node)] = None
                continue
            if isinstance(node, A.InSegment):
                continue  # dependencies are added by add()
            stack.extend(A.children(node))

    # -- what the added rules read (the live engine's dependencies and timers) ----------------
    @property
    def facts(self) -> list[Fact]:
        """Every per-contact aggregate the added rules need (with ``exists="scan"``, their
        exists / no / purchased too)."""
        return list(self._facts)

    @property
    def fields(self) -> list[FieldInfo]:
        """Every contact-level field the added rules read (profile, scores, current deal)."""
        return list(self._fields)

    def fact_of(self, node: A.Node, window: A.Node | None = None) -> Fact:
        """The fact of an aggregate, first / last, exists / no / purchased node (``window``
        overrides the node's own, as a trend's halves do)."""
        if isinstance(node, (A.Exists, A.Purchased)):
            return self._exists_fact(node)
        return self._fact(node, window)

    def row_fields(self, fact: Fact) -> set[FieldInfo]:
        """The row fields one fact tests or aggregates (products and orders included)."""
        return self._needs([fact])

    def rows(self, table: str, needs: set[FieldInfo], *, cut: bool = True) -> ir.Table:
        """The rows of a source table the facts read (see ``_rows``), kept to the compiler's
        contacts; up to T unless ``cut`` is false."""
        return self._rows(table, needs, cut=cut)

    def fact_rows(self, fact: Fact) -> ir.Table:
        """The rows one fact looks at, at any time (``#cid``, ``#ts``, ...): its event type,
        status and filter applied, its window not, and no cut at T."""
        r = self._rows(fact.table, self._needs([fact]), cut=False)
        tests = [t for k, t in self._fact_tests(fact, r) if k[0] != "window"]
        return r.filter(*tests) if tests else r

    def _field_name(self, info: FieldInfo) -> str:
        if info not in self._fields:
            self._fields[info] = f"v{len(self._fields)}"
            if self.catalog.is_model(info.table):  # a score namespace is its table's name
                self.analytics_used.add(info.table)
        return self._fields[info]

    def _fact_name(self, fact: Fact) -> str:
        if fact not in self._facts:
            self._fact_check_open()
            self._facts[fact] = f"f{len(self._facts)}"
        return self._facts[fact]

    def _fact_check_open(self) -> None:
        if self._wide is not None:
            raise RuntimeError("a fact was needed after the wide table was built")

    def _fact(self, node: A.Aggregate | A.Occurrence, window: A.Node | None = None) -> Fact:
        source = resolve_source(node, node.source, self.ctx)
        window = window if window is not None else node.window
        field = None
        if isinstance(node, A.Aggregate):
            func = node.func
            if node.field is not None:
                field = self.catalog.row_field(source, (node.field,))
        else:
            func = node.which
        return self._make_fact(source, func, field, node.where, window)

    def _exists_fact(self, node: A.Exists | A.Purchased) -> Fact:
        source = ORDER_ITEMS if isinstance(node, A.Purchased) else resolve_source(
            node, node.source, self.ctx
        )
        return self._make_fact(source, "count", None, node.where, node.window)

    def _make_fact(self, source, func, field, where, window) -> Fact:
        completed = source.kind in ("orders", "order_items") and not _tests_status(
            where, source, self.ctx
        )
        return Fact(
            table=source.table,
            func=func,
            field=field,
            event_type=source.name if source.kind == "event" else None,
            where=where,
            bounds=window_bounds(window, self.T),
            completed=completed,
        )

    # -- pass 2: build the wide table -------------------------------------------------------
    @property
    def wide(self) -> ir.Table:
        if self._wide is None:
            self._wide = self._build()
        return self._wide

    def restrict(self, t: ir.Table, column: str = "contact_id") -> ir.Table:
        """``t`` kept to the compiler's contacts (all of them when it has no restriction)."""
        return self._contact_filter(t, column)

    def _contact_filter(self, t: ir.Table, column: str = "contact_id") -> ir.Table:
        if isinstance(self.contacts, ir.Table):
            return t.filter(t[column].isin(self.contacts.contact_id))
        if self.contacts is not None:
            return t.filter(t[column].isin([ibis.literal(c, type="string") for c in self.contacts]))
        if self.contact_id is None:
            return t
        return t.filter(t[column] == ibis.literal(self.contact_id, type="string"))

    def _build(self) -> ir.Table:
        # "auto": an exists rides along a scan of its table that happens anyway, or that
        # three or more of them share; a lone one stays a semi-join
        scanned = {f.table for f in self._facts}
        per_table: dict[str, int] = {}
        for fact in self._exists_facts:
            per_table[fact.table] = per_table.get(fact.table, 0) + 1
        for fact in self._exists_facts:
            if fact.table in scanned or per_table[fact.table] >= 3:
                self._fact_name(fact)
        T = _ts(self.T)
        c = self.wh.table("contacts")
        base = c.filter(c.created_at.isnull() | (c.created_at <= T))
        base = self._contact_filter(base)
        cols: dict[str, ir.Value] = {"k": base.contact_id}
        for info, name in self._fields.items():
            if info.table == "contacts":
                cols[name] = base[info.column]
            elif info.table == "derived":
                cols[name] = self._age(base.birth_date)
        w = base.select(**cols)
        for table in ("events", "orders", "order_items", "deals"):
            facts = {f: n for f, n in self._facts.items() if f.table == table}
            if facts:
                w = _join(w, self._aggregate(table, facts))
        for ns in sorted(self.analytics_used):
            wanted = {n: info.column for info, n in self._fields.items() if info.table == ns}
            if wanted:
                t = self._contact_filter(self.wh.table(ns))
                w = _join(w, t.select(**{"#cid": t.contact_id}, **{n: t[c] for n, c in wanted.items()}))
        wanted = {n: info.column for info, n in self._fields.items() if info.table == "deal"}
        if wanted:
            w = _join(w, self._current_deal(wanted))
        return w

    def _age(self, birth: ir.Value) -> ir.Value:
        T = self.T
        later = (birth.month() > T.month) | ((birth.month() == T.month) & (birth.day() > T.day))
        return (ibis.literal(T.year) - birth.year() - ibis.ifelse(later, 1, 0)).cast("int64")

    def _current_deal(self, wanted: dict[str, str]) -> ir.Table:
        """Per contact: the most recently updated deal, at its latest row up to T."""
        d = self._contact_filter(self.wh.table("deals"))
        d = d.filter(d.updated_at <= _ts(self.T))
        by_time = ibis.window(group_by=d.deal_id, order_by=[d.updated_at, d.stage])
        d = d.mutate(**{"#prev": d.stage.lag().over(by_time)})
        starts = d["#prev"].isnull() | (d["#prev"] != d.stage)
        changed = d.group_by("deal_id").agg(**{"#changed": d.updated_at.max(where=starts)})
        latest = ibis.row_number().over(
            group_by=d.deal_id, order_by=[ibis.desc(d.updated_at), ibis.desc(d.stage)]
        )
        cur = d.mutate(**{"#rn": latest}).filter(lambda t: t["#rn"] == 0)
        cur = cur.join(changed, "deal_id")
        newest = ibis.row_number().over(
            group_by=cur.contact_id,
            order_by=[ibis.desc(cur.updated_at), ibis.desc(cur.deal_id)],
        )
        cur = cur.mutate(**{"#rn2": newest}).filter(lambda t: t["#rn2"] == 0)
        cols = {
            n: (cur["#changed"] if col == "stage_changed" else cur[col]) for n, col in wanted.items()
        }
        return cur.select(**{"#cid": cur.contact_id}, **cols)

    # -- rows of a source --------------------------------------------------------------------
    def _needs(self, facts) -> set[FieldInfo]:
        needs: set[FieldInfo] = set()
        for f in facts:
            if f.field is not None:
                needs.add(f.field)
            if f.where is not None:
                source = self._source_of(f)
                for n in A.walk(f.where):
                    if isinstance(n, A.Field):
                        needs.add(resolve_field(n, source, self.ctx))
        return needs

    def _source_of(self, fact: Fact) -> SourceInfo:
        if fact.event_type is not None:
            return SourceInfo(fact.event_type, "event", "occurred_at")
        if fact.table == "order_items":
            return ORDER_ITEMS
        return self.catalog.source(fact.table)

    def _rows(self, table: str, needs: set[FieldInfo], *, cut: bool = True) -> ir.Table:
        """Rows up to T (any time unless ``cut``) of a source table, as ``#cid, #ts[, #type]
        [, #status]`` plus the catalogue columns the facts test or aggregate (products joined
        when needed)."""
        T = _ts(self.T)
        wh = self.wh
        if table == "order_items":
            i = wh.table("order_items")
            if (
                wh.keeps_order_line_copies  # where ingestion keeps them (workspace.py)
                and set(ORDER_LINE_COLUMNS) <= set(i.columns)
                and not any(n.table == "orders" for n in needs)
            ):
                # lines carry their order's contact, time and status (kept by ingestion):
                # no join with orders
                i = self._contact_filter(i, "_contact_id")
                j = i = i.filter(i._ordered_at <= T) if cut else i
                o = None
                cols = {"#cid": i._contact_id, "#ts": i._ordered_at, "#status": i._status}
            else:  # Spark: the tables your jobs write name only the order
                o = self._contact_filter(wh.table("orders"))
                o = o.filter(o.ordered_at <= T) if cut else o
                j = i.join(o, i.order_id == o.order_id)
                cols = {"#cid": o.contact_id, "#ts": o.ordered_at, "#status": o.status}
            p = None
            if any(n.table == "products" for n in needs):
                p = wh.table("products")
                j = j.left_join(p, i.sku == p.sku)
            src = {"order_items": i, "orders": o, "products": p}
            for n in needs:
                cols[n.column] = src[n.table][n.column]
            return j.select(**cols)
        t = self._contact_filter(wh.table(table))
        time_col = {"events": "occurred_at", "orders": "ordered_at", "deals": "updated_at"}[table]
        t = t.filter(t[time_col] <= T) if cut else t
        cols = {"#cid": t.contact_id, "#ts": t[time_col]}
        if table == "events":
            cols["#type"] = t.type
        if table == "orders":
            cols["#status"] = t.status
        for n in needs:
            column = "properties" if n.table == "properties" else n.column
            cols[column] = t[column]
        return t.select(**cols)

    def _fact_pred(self, fact: Fact, r: ir.Table) -> ir.BooleanValue | None:
        """The rows of ``r`` one fact counts (None: all)."""
        return _all([test for _, test in self._fact_tests(fact, r)])

    def _aggregate(self, table: str, facts: dict[Fact, str]) -> ir.Table:
        """All facts of one source table as columns of one per-contact aggregation.

        Events are stored grouped by type, so each event type (with its own property filter)
        is scanned on its own, the tests pushed into the scan, and the scans stacked
        (``_stacked``). Other tables are scanned once for all their facts (``_one_scan``):
        their facts overlap too much for several scans to pay (at 1M contacts, stacking the
        scans of orders and order lines as well made the 20-segment refresh up to twice as
        slow; order lines alone, still 10-25% slower)."""
        r = self._rows(table, self._needs(facts))
        live = [f for f in facts if not f.bounds.empty]
        if not live:  # every window is empty: no rows, typed aggregates
            r = r.filter(ibis.literal(False))
            none = ibis.literal(False)
            return r.group_by("#cid").agg(
                **{n: self._agg(f, r, self._value_of(f, r), none) for f, n in facts.items()}
            )
        branches: dict[tuple, list[Fact]] = {}
        for fact in live:
            key = ()
            if table == "events":
                key = tuple(k for k, _ in self._fact_tests(fact, r) if k[0] != "window")
            branches.setdefault(key, []).append(fact)
        if len(branches) == 1:
            return self._one_scan(r, facts, live)
        return self._stacked(r, facts, list(branches.values()))

    def _one_scan(self, r: ir.Table, facts: dict[Fact, str], live: list[Fact]) -> ir.Table:
        """One scan for every fact: the tests all facts share (and the window that holds
        all of theirs) filter the rows; each other distinct test is computed once, as a
        column, and the facts' aggregate filters read those columns (the database does
        not share a test between aggregate filters)."""
        hull = _hull([f.bounds for f in live], self.T)
        tests = {f: dict(self._fact_tests(f, r)) for f in live}
        first, *rest = tests.values()
        shared = {k for k in first if k[0] != "window" and all(k in t for t in rest)}
        u = self._within(r, [t for k, t in first.items() if k in shared], hull)
        named: dict[object, str] = {}
        for fact in live:
            for key, expr in self._fact_tests(fact, u):
                if key in shared or (key[0] == "window" and fact.bounds == hull):
                    continue
                if key not in named:
                    named[key] = f"#p{len(named)}"
                    u = u.mutate(**{named[key]: expr})
        aggs = {}
        for fact, name in facts.items():
            if fact.bounds.empty:
                pred = [ibis.literal(False)]
            else:
                pred = [u[named[k]] for k in tests[fact] if k in named]
            aggs[name] = self._agg(fact, u, self._value_of(fact, u), _all(pred))
        return u.group_by("#cid").agg(**aggs)

    def _stacked(self, r: ir.Table, facts: dict[Fact, str], groups: list[list[Fact]]) -> ir.Table:
        """One scan per group of facts with the same tests but the window (an event type and
        its property filter): every test is a plain conjunct (``type = 'product_view' AND
        category = 'iPhones' AND occurred_at > ...``), so the database applies it inside the
        scan (DuckDB: on the compressed column, skipping blocks of other types by their
        min/max), and only rows some fact counts reach the aggregation. The scans are
        stacked (UNION ALL) with their number in ``#g``; a fact aggregates its group's rows
        (and its own window, where the group's facts differ).

        Measured at 1M contacts: the iPhone rule's event facts read 12.6M rows in one scan
        and grouped them all (0.6 s); as five scans they group 1.4M rows (0.2 s)."""
        values: dict[tuple, str] = {}  # aggregated fields are computed in the scans
        for fact in facts:
            if fact.field is not None:
                values.setdefault(self._value_key(fact), f"#v{len(values)}")
        parts, plan = [], {}
        for g, members in enumerate(groups):
            hull = _hull([f.bounds for f in members], self.T)
            tests = [t for k, t in self._fact_tests(members[0], r) if k[0] != "window"]
            b = self._within(r, tests, hull)
            mine = {self._value_key(f) for f in members if f.field is not None}
            cols = {"#cid": b["#cid"], "#ts": b["#ts"], "#g": ibis.literal(g, type="int32")}
            for vkey, col in values.items():
                expr = self._row_value(vkey[0], b, vkey[1])
                cols[col] = expr if vkey in mine else ibis.null(expr.type())
            parts.append(b.select(**cols))
            plan.update({f: (g, hull) for f in members})
        u = ibis.union(*parts, distinct=False)
        aggs = {}
        for fact, name in facts.items():
            value = u[values[self._value_key(fact)]] if fact.field is not None else None
            if fact.bounds.empty:
                pred = [ibis.literal(False)]
            else:
                g, hull = plan[fact]
                pred = [u["#g"] == g]
                if fact.bounds != hull:
                    pred.append(_in_bounds(u["#ts"], fact.bounds, self.T))
            aggs[name] = self._agg(fact, u, value, _all(pred))
        return u.group_by("#cid").agg(**aggs)

    def _within(self, r: ir.Table, tests: list[ir.BooleanValue], window: Bounds) -> ir.Table:
        """The rows of ``r`` passing every test, inside ``window`` (tests the scan applies)."""
        inside = _in_bounds(r["#ts"], window, self.T)
        if not _is_true(inside):
            tests = [inside, *tests]
        return r.filter(*tests) if tests else r

    def _value_key(self, fact: Fact) -> tuple:
        """(field, wanted type) of the value a fact aggregates."""
        numeric = fact.func in ("sum", "avg") or fact.field.type == "any"  # see type_of
        return (fact.field, "number" if numeric else None)

    def _value_of(self, fact: Fact, r: ir.Table) -> ir.Value | None:
        if fact.field is None:
            return None
        return self._row_value(fact.field, r, self._value_key(fact)[1])

    def _fact_tests(self, fact: Fact, r: ir.Table):
        """(key, test) pairs whose AND is the rows one fact counts; equal keys are equal
        tests (the window's key starts with "window")."""
        if fact.bounds.empty:
            return [(("false",), ibis.literal(False))]
        out = []
        window = _in_bounds(r["#ts"], fact.bounds, self.T)
        if not _is_true(window):
            out.append((("window", fact.bounds), window))
        if fact.event_type is not None:
            out.append((("type", fact.event_type),
                        r["#type"] == ibis.literal(fact.event_type, type="string")))
        if fact.completed:
            out.append((("completed",), is_purchase(r["#status"])))
        if fact.where is not None:
            out.append((("where", fact.where),
                        self._cond(fact.where, self._source_of(fact), _RowEnv(r, self.wh))))
        return out

    def _agg(self, fact: Fact, r: ir.Table, value: ir.Value | None, pred) -> ir.Value:
        func = fact.func
        if func == "count":
            return r.count(where=pred)
        if func in ("first", "last"):
            return r["#ts"].min(where=pred) if func == "first" else r["#ts"].max(where=pred)
        if func == "sum":
            return value.sum(where=pred)
        if func == "avg":
            return value.mean(where=pred)
        if func == "min":
            return value.min(where=pred)
        return value.max(where=pred)

    def _row_value(self, info: FieldInfo, r: ir.Table, want: str | None) -> ir.Value:
        if info.table != "properties":
            return r[info.column]
        return self.wh.json_value(r.properties, info.column, want)

    # -- pass 3: conditions and values -------------------------------------------------------
    def condition(
        self, rule: CheckedRule, *, original: bool = False, strict: bool = True
    ) -> ir.BooleanValue:
        """The rule as a boolean column of the wide table: never null when ``strict``;
        otherwise null may stand for false (fine in a filter, and it lets the database push
        predicates down)."""
        tree = rule.tree if original else rule.simplified
        return self._cond(tree, CONTACT, _ContactEnv(self, self.wide, rule), strict)

    def members(self, rule: CheckedRule) -> ir.Table:
        """The contacts that match ``rule`` as of T: one column, contact_id."""
        w = self.wide
        return w.filter(self.condition(rule, strict=False)).select(contact_id=w.k)

    def matrix(self, rules: dict[str, CheckedRule]) -> tuple[ir.Table, dict[str, str]]:
        """contact_id plus one never-null boolean column per rule (a row per contact), and
        the column name of each rule. (Keeping only contacts in some rule would make the
        database compute every condition twice.)"""
        w = self.wide
        names = {name: f"s{i}" for i, name in enumerate(rules)}
        conds = {names[n]: self.condition(r) for n, r in rules.items()}
        return w.select(contact_id=w.k, **conds), names

    def total(self) -> ir.IntegerScalar:
        """The number of contacts as of T (created at or before it)."""
        c = self.wh.table("contacts")
        base = c.filter(c.created_at.isnull() | (c.created_at <= _ts(self.T)))
        return self._contact_filter(base).count()

    def _cond(self, node: A.Node, scope, env, strict: bool = False) -> ir.BooleanValue:
        """A condition in two-valued logic. ``strict``: the result is never null; otherwise
        null means false (a comparison with a null side), which a filter treats the same
        way. ``not`` always takes a strict operand, so it is exact either way."""

        def nn(test: ir.BooleanValue) -> ir.BooleanValue:
            return test.fill_null(False) if strict else test

        if isinstance(node, A.And):
            out = self._cond(node.items[0], scope, env, strict)
            for item in node.items[1:]:
                out = out & self._cond(item, scope, env, strict)
            return out
        if isinstance(node, A.Or):
            out = self._cond(node.items[0], scope, env, strict)
            for item in node.items[1:]:
                out = out | self._cond(item, scope, env, strict)
            return out
        if isinstance(node, A.Not):
            return ~self._cond(node.operand, scope, env, True)
        if isinstance(node, A.Literal):
            return ibis.literal(bool(node.value))
        if isinstance(node, A.Field):
            return nn(self._value(node, scope, env, "boolean"))
        if isinstance(node, A.Compare):
            return nn(self._compare(node, scope, env))
        if isinstance(node, A.In):
            common = self._common(node.operand, node.values[0], scope)
            for v in node.values[1:]:
                common = self._common(node.operand, v, scope) if common == "any" else common
            x = self._value(node.operand, scope, env, common)
            info = self._info(node.operand, scope)
            values = [self._literal(v, common, info) for v in node.values]
            test = x.notin(values) if node.negated else x.isin(values)
            return nn(test)
        if isinstance(node, A.Between):
            common = self._common(node.operand, node.low, scope)
            info = self._info(node.operand, scope)
            x = self._value(node.operand, scope, env, common)
            lo = self._value(node.low, scope, env, common, info)
            hi = self._value(node.high, scope, env, common, info)
            test = x.between(lo, hi)
            return nn(~test if node.negated else test)
        if isinstance(node, A.IsNull):
            x = self._value(node.operand, scope, env, None)
            return x.notnull() if node.negated else x.isnull()
        if isinstance(node, A.Within):
            x = self._value(node.operand, scope, env, "timestamp")
            test = _in_bounds(x, window_bounds(node.window, self.T))
            return nn(~test if node.negated else test)
        if isinstance(node, (A.Exists, A.Purchased)):
            return nn(self._exists(node, env))
        if isinstance(node, A.InSegment):
            dep = env.rule.dependencies[node.name]
            return self._cond(dep.simplified, CONTACT, env.with_rule(dep), strict)
        raise TypeError(f"not a condition: {node!r}")  # pragma: no cover

    def _exists(self, node: A.Exists | A.Purchased, env) -> ir.BooleanValue:
        negated = isinstance(node, A.Exists) and node.negated
        fact = self._exists_fact(node)
        if fact in self._facts:
            test = env.table[self._facts[fact]].fill_null(0) > 0
        else:
            r = self._rows(fact.table, self._needs([fact]))
            pred = self._fact_pred(fact, r)
            sub = r.filter(pred) if pred is not None else r
            test = env.table.k.isin(sub["#cid"])  # never null: contact ids are never null
        return ~test if negated else test

    def _info(self, node: A.Node, scope) -> FieldInfo | None:
        return resolve_field(node, scope, self.ctx) if isinstance(node, A.Field) else None

    def _common(self, left: A.Node, right: A.Node, scope) -> str:
        lt, rt = type_of(left, scope, self.ctx), type_of(right, scope, self.ctx)
        return unify(lt, rt) or "timestamp"  # the typecheck allowed it: a date constant

    def _compare(self, node: A.Compare, scope, env) -> ir.BooleanValue:
        common = self._common(node.left, node.right, scope)
        linfo, rinfo = self._info(node.left, scope), self._info(node.right, scope)
        lv = self._value(node.left, scope, env, common, rinfo)
        rv = self._value(node.right, scope, env, common, linfo)
        op = node.op
        negated = op.startswith("not ")
        base = op[4:] if negated else op
        if base == "contains":
            test = lv.contains(rv)
        elif base == "starts with":
            test = lv.startswith(rv)
        elif base == "ends with":
            test = lv.endswith(rv)
        elif op == "=":
            test = lv == rv
        elif op == "!=":
            test = lv != rv
        elif op == "<":
            test = lv < rv
        elif op == "<=":
            test = lv <= rv
        elif op == ">":
            test = lv > rv
        else:
            test = lv >= rv
        return ~test if negated else test

    def _value(
        self,
        node: A.Node,
        scope,
        env,
        want: str | None,
        other: FieldInfo | None = None,
    ) -> ir.Value:
        """A value node as an expression; ``want`` is the type it is used as (constants
        and event properties take it), ``other`` the field on the other side, if any."""
        if isinstance(node, A.Literal):
            return self._literal(node, want, other)
        if isinstance(node, A.Field):
            info = resolve_field(node, scope, self.ctx)
            x = env.field(info, want)
            if want == "timestamp" and info.type == "date":
                x = x.cast(TS)
            return x
        if isinstance(node, A.Arith):
            left = self._value(node.left, scope, env, "number").cast(F64)
            right = self._value(node.right, scope, env, "number").cast(F64)
            if node.op == "+":
                return left + right
            if node.op == "-":
                return left - right
            if node.op == "*":
                return left * right
            return left / right.nullif(ibis.literal(0.0))
        if isinstance(node, A.Aggregate):
            x = env.table[self._facts[self._fact(node)]]
            return x.fill_null(0) if node.func in ("count", "sum") else x
        if isinstance(node, A.Occurrence):
            return env.table[self._facts[self._fact(node)]]
        if isinstance(node, A.DaysSince):
            return self._days_since(node.operand, scope, env)
        if isinstance(node, A.Trend):
            agg = node.aggregate
            cur = env.table[self._facts[self._fact(agg, node.current_window)]]
            prev = env.table[self._facts[self._fact(agg, node.previous_window)]]
            if agg.func in ("count", "sum"):
                cur, prev = cur.fill_null(0), prev.fill_null(0)
            if node.method == "ratio":
                return cur.cast(F64) / prev.cast(F64).nullif(ibis.literal(0.0))
            return cur.cast(F64) - prev.cast(F64)
        raise TypeError(f"not a value: {node!r}")  # pragma: no cover

    def _days_since(self, operand: A.Node, scope, env) -> ir.Value:
        """floor((T - x) / 1 day). On DuckDB through epoch microseconds: its time-zone
        aware date_diff is ~80 times slower per row."""
        if not self.wh.has_epoch_functions:
            x = self._value(operand, scope, env, "timestamp")
            return (_ts(self.T).delta(x, unit="microsecond") // DAY_US).cast("int64")
        t_us = ibis.literal(_epoch_us_of(self.T), type="int64")
        if isinstance(operand, A.Field) and resolve_field(operand, scope, self.ctx).type == "date":
            x_us = _epoch_us_naive(self._value(operand, scope, env, None).cast("timestamp"))
        else:
            x_us = _epoch_us_utc(self._value(operand, scope, env, "timestamp"))
        return ((t_us - x_us) // DAY_US).cast("int64")

    def _literal(self, node: A.Literal, want: str | None, other: FieldInfo | None) -> ir.Value:
        v = node.value
        if want in TEMPORAL and isinstance(v, str):
            return _ts(_utc(v))
        if isinstance(v, bool):
            return ibis.literal(v, type="boolean")
        if isinstance(v, int):
            if INT64[0] <= v <= INT64[1]:
                return ibis.literal(v, type="int64")
            return ibis.literal(float(v), type=F64)
        if isinstance(v, float):
            if other is not None and other.is_decimal:
                d = Decimal(repr(v))
                sign, digits, exp = d.as_tuple()
                scale = max(0, -exp)
                precision = max(len(digits) + max(exp, 0), scale + 1)
                if precision <= 38:
                    return ibis.literal(d, type=dt.Decimal(precision, scale))
            return ibis.literal(v, type=F64)
        return ibis.literal(v, type="string")

    # -- single nodes (explain) --------------------------------------------------------------
    def node_condition(self, node: A.Node, rule: CheckedRule) -> ir.BooleanValue:
        """A contact-level condition of ``rule``'s tree as a never-null boolean column of
        the wide table (the rule must have been added with ``original=True``)."""
        return self._cond(node, CONTACT, _ContactEnv(self, self.wide, rule), True)

    def node_value(self, node: A.Node, rule: CheckedRule, want: str | None = None) -> ir.Value:
        """A contact-level value of ``rule``'s tree (an aggregate, a field, ...) as a column
        of the wide table, used as type ``want`` (a date field wanted as a timestamp is cast);
        aggregates must be registered (``add(original=True)``)."""
        return self._value(node, CONTACT, _ContactEnv(self, self.wide, rule), want)


class _ContactEnv:
    """Contact-level names → columns of the wide table."""

    def __init__(self, comp: Compiler, table: ir.Table, rule: CheckedRule) -> None:
        self.comp = comp
        self.table = table
        self.rule = rule

    def field(self, info: FieldInfo, want: str | None) -> ir.Value:
        return self.table[self.comp._fields[info]]

    def with_rule(self, rule: CheckedRule) -> _ContactEnv:
        return _ContactEnv(self.comp, self.table, rule)


class _RowEnv:
    """Row-level names (inside a where filter) → columns of the source rows."""

    def __init__(self, rows: ir.Table, wh) -> None:
        self.table = rows
        self.wh = wh

    def field(self, info: FieldInfo, want: str | None) -> ir.Value:
        if info.table != "properties":
            return self.table[info.column]
        return self.wh.json_value(self.table.properties, info.column, want)


def _hull(bounds: list[Bounds], T: _dt.datetime) -> Bounds:
    """The smallest window holding every one of ``bounds`` (none empty, all ending by T)."""
    if any(b.lo is None for b in bounds):
        lo, lo_incl = None, False
    else:
        lo = min(b.lo for b in bounds)
        lo_incl = any(b.lo == lo and b.lo_incl for b in bounds)
    hi = max(b.hi for b in bounds)
    hi_incl = any(b.hi == hi and b.hi_incl for b in bounds)
    return Bounds(lo, lo_incl, hi, hi_incl)


def _all(tests: list[ir.BooleanValue]) -> ir.BooleanValue | None:
    """The AND of ``tests`` (None for none)."""
    return functools.reduce(operator.and_, tests) if tests else None


def _is_true(x: ir.Value) -> bool:
    op = x.op()
    return getattr(op, "value", None) is True and type(op).__name__ == "Literal"


def _join(w: ir.Table, t: ir.Table) -> ir.Table:
    """``w`` left-joined with ``t`` (keyed by ``#cid``), keeping t's other columns."""
    new = [c for c in t.columns if c != "#cid"]
    j = w.left_join(t, w.k == t["#cid"])
    return j.select(*[w[c] for c in w.columns], *[t[c] for c in new])
