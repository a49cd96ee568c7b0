"""Saved segments evaluated for a few contacts, in Python, from those contacts' own rows.

The batch engine compiles rules to one warehouse query over every contact; building and
compiling that query costs about a second of Python for 20 rules, whatever the number of
contacts. The live path evaluates the handful of contacts a stored batch touched, so it
reads their rows once (:class:`ContactRows`: one query per table, kept to those contacts,
event types and columns the rules read) and evaluates the checked trees over them here.

It is the compiler's semantics, node for node (:mod:`segmentum.segments.compiler`): the
facts and their windows come from the compiler itself (``Compiler.fact_of``: source,
completed orders, filter, bounds as of T), constants are typed from what they are compared
with (dates next to timestamps, floats next to decimals as decimals), comparisons with a
null side are false and ``not`` negates a never-null operand, arithmetic is in floats with
``x / 0`` null, a JSON property is read as the type it is used as, ``days_since`` floors
whole days, and the current deal is the most recently updated deal at its latest row. The
test suite holds the two equal on every rule kind of the golden suite and on generated
streams of changes.

:meth:`ContactEvaluator.next_change` gives, per rule and contact, the earliest moment
after T at which the truth can change with no new data (:mod:`.timers` lists them).
"""

from __future__ import annotations

import dataclasses as dc
import datetime as _dt
import json
from collections import defaultdict
from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any

import orjson
from dateutil.relativedelta import relativedelta

from segmentum.segments import ast as A
from segmentum.segments.compiler import INT64, Bounds, Compiler, Fact, window_bounds
from segmentum.segments.passes import CONTACT, ORDER_ITEMS, CheckedRule
from segmentum.segments.passes.resolve import resolve_field
from segmentum.segments.passes.typecheck import TEMPORAL, type_of, unify

__all__ = ["ContactEvaluator", "ContactRows"]

UTC = _dt.UTC
DAY = _dt.timedelta(days=1)
ROW_TABLES = ("events", "orders", "order_items", "deals")


# -- the rows of a few contacts -----------------------------------------------------------------
@dc.dataclass
class ContactRows:
    """Everything the rules read about some contacts: profile rows, score rows per table,
    and per source table the rows (``#cid``, ``#ts``, ``#type`` / ``#status``, columns)."""

    contacts: dict[str, dict]
    scores: dict[str, dict[str, dict]]
    rows: dict[str, dict[str, list[dict]]]  # table -> contact -> rows
    # a fact's kept rows per (T, table, type, completed, filter, contact): the facts that
    # share a filter (windows of a trend, evaluation and its moments) filter once
    kept: dict[tuple, list[dict]] = dc.field(default_factory=dict, repr=False, compare=False)

    def of(self, table: str, cid: str) -> list[dict]:
        return self.rows.get(table, {}).get(cid, [])


class _Needs:
    """What a set of rules reads, per table (found once per rule set by a compiler)."""

    def __init__(self, comp: Compiler, rules: Iterable[CheckedRule]) -> None:
        for r in rules:
            comp.add(r)
        self.facts: dict[str, list[Fact]] = defaultdict(list)
        for f in comp.facts:
            self.facts[f.table].append(f)
        self.fields = comp.fields
        self.row_fields = {t: set().union(*(comp.row_fields(f) for f in fs)) for t, fs in self.facts.items()}
        self.event_types = sorted({f.event_type for f in self.facts.get("events", ())})


TOUCHED = "_live_touched"  # a temporary table: the ids of the contacts being read


class _Reader:
    """The queries that read some contacts' rows, compiled once per rule set: they take the
    ids from the temporary table ``_live_touched`` (filled per read), so no query is built or
    compiled again for each batch (for a handful of contacts, building and compiling would cost
    more than running)."""

    def __init__(self, catalog, needs: _Needs) -> None:
        wh = catalog.wh
        wh.raw.execute(f"CREATE TEMP TABLE IF NOT EXISTS {TOUCHED} (contact_id VARCHAR)")
        comp = Compiler(catalog, _dt.datetime.now(UTC), contacts=wh.con.table(TOUCHED))
        self.wh = wh
        self.queries: dict[str, str] = {}
        c = comp.restrict(wh.table("contacts"))
        cols = {"contact_id", "created_at", *(i.column for i in needs.fields if i.table == "contacts")}
        if any(i.table == "derived" for i in needs.fields):
            cols.add("birth_date")
        self._sql("contacts", c.select(*sorted(cols)))
        for ns in sorted({i.table for i in needs.fields if catalog.is_model(i.table)}):
            t = comp.restrict(wh.table(ns))
            wanted = sorted({i.column for i in needs.fields if i.table == ns})
            self._sql(f"score:{ns}", t.select("contact_id", *wanted))
        deal_cols = {i.column for i in needs.fields if i.table == "deal"} - {"stage_changed"}
        for table in ROW_TABLES:
            row_needs = needs.row_fields.get(table, set())
            if table not in needs.facts and not (table == "deals" and deal_cols):
                continue
            if table == "deals":  # rows for facts and for the current deal alike
                d = comp.restrict(wh.table("deals"))
                cols = sorted({i.column for i in row_needs} | deal_cols | {"deal_id", "stage", "updated_at"})
                r = d.select(**{"#cid": d.contact_id, "#ts": d.updated_at}, **{k: d[k] for k in cols})
            else:
                r = comp.rows(table, row_needs, cut=False)
            if table == "events":
                r = r.filter(r["#type"].isin(needs.event_types))
            self._sql(table, r)

    def _sql(self, name: str, expr) -> None:
        import ibis

        self.queries[name] = str(ibis.to_sql(expr, dialect="duckdb"))

    def read(self, contacts: list[str]) -> ContactRows:
        raw = self.wh.raw
        raw.execute(f"DELETE FROM {TOUCHED}")
        raw.execute(f"INSERT INTO {TOUCHED} SELECT unnest($1)", [list(contacts)])
        got = {name: _arrow(raw, sql).to_pylist() for name, sql in self.queries.items()}
        profile = {r["contact_id"]: r for r in got.pop("contacts")}
        scores = {name[6:]: {r["contact_id"]: r for r in rows} for name, rows in got.items()
                  if name.startswith("score:")}
        rows: dict[str, dict[str, list[dict]]] = {}
        for table in ROW_TABLES:
            if table not in got:
                continue
            grouped: dict[str, list[dict]] = defaultdict(list)
            for row in got[table]:
                if isinstance(row.get("properties"), str):
                    row["properties"] = orjson.loads(row["properties"])
                grouped[row["#cid"]].append(row)
            rows[table] = grouped
        return ContactRows(profile, scores, rows)


def _arrow(raw, sql: str):
    result = raw.execute(sql)
    table = result.to_arrow_table() if hasattr(result, "to_arrow_table") else result.fetch_arrow_table()
    return table


# -- values ---------------------------------------------------------------------------------------
def _num(x: Any) -> float | None:
    if x is None or isinstance(x, bool):
        return None if x is None else float(x)
    return float(x)


def _pair(a: Any, b: Any) -> tuple[Any, Any]:
    """Two values as the database compares them: a float next to an int or a decimal makes
    both floats; a date next to a timestamp is its midnight UTC."""
    if isinstance(a, float) and isinstance(b, (int, Decimal)) and not isinstance(b, bool):
        return a, float(b)
    if isinstance(b, float) and isinstance(a, (int, Decimal)) and not isinstance(a, bool):
        return float(a), b
    if isinstance(a, _dt.datetime) and type(b) is _dt.date:
        return a, _midnight(b)
    if isinstance(b, _dt.datetime) and type(a) is _dt.date:
        return _midnight(a), b
    return a, b


def _midnight(d: _dt.date) -> _dt.datetime:
    return _dt.datetime(d.year, d.month, d.day, tzinfo=UTC)


def _ts(x: Any) -> _dt.datetime | None:
    if x is None:
        return None
    if isinstance(x, _dt.datetime):
        return x if x.tzinfo else x.replace(tzinfo=UTC)
    if isinstance(x, _dt.date):
        return _midnight(x)
    return None


def _parse_ts(text: str) -> _dt.datetime | None:
    try:
        value = _dt.datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _json_text(v: Any) -> str | None:
    if v is None:
        return None
    if isinstance(v, str):
        return v
    return json.dumps(v, separators=(",", ":"), ensure_ascii=False)


def json_value(props: Any, key: str, want: str | None) -> Any:
    """One property of a JSON object, as :meth:`Warehouse.json_value` reads it."""
    if isinstance(props, str):
        props = json.loads(props)
    raw = props.get(key) if isinstance(props, dict) else None
    if want == "number":
        if isinstance(raw, (int, float)) and not isinstance(raw, bool):
            return float(raw)
        if isinstance(raw, str) and "_" not in raw:
            try:
                return float(raw)
            except ValueError:
                return None
        return None
    if want == "boolean":
        return raw if isinstance(raw, bool) else None
    text = _json_text(raw)
    if want == "timestamp":
        return None if text is None else _parse_ts(text)
    return text


def _in_bounds(t: _dt.datetime, b: Bounds) -> bool:
    if b.empty:
        return False
    if b.lo is not None and not (t >= b.lo if b.lo_incl else t > b.lo):
        return False
    return b.hi is None or (t <= b.hi if b.hi_incl else t < b.hi)


def _compare(op: str, lv: Any, rv: Any) -> bool | None:
    if lv is None or rv is None:
        return None
    lv, rv = _pair(lv, rv)
    negated = op.startswith("not ")
    base = op[4:] if negated else op
    if base == "contains":
        test = rv in lv
    elif base == "starts with":
        test = lv.startswith(rv)
    elif base == "ends with":
        test = lv.endswith(rv)
    else:
        test = {"=": lv == rv, "!=": lv != rv}.get(op)
        if test is None:
            test = {"<": lv < rv, "<=": lv <= rv, ">": lv > rv, ">=": lv >= rv}[op]
    return (not test) if negated else test


# -- the interpreter --------------------------------------------------------------------------
class _Env:
    """One contact (contact-level names) or one row (row-level names)."""

    def __init__(self, data: ContactRows | None, cid: str | None, row: dict | None = None,
                 rule: CheckedRule | None = None) -> None:
        self.data, self.cid, self.row, self.rule = data, cid, row, rule


class _Interp:
    """The compiler's ``_cond`` / ``_value`` over Python values, as of ``comp.T``."""

    def __init__(self, comp: Compiler, memo: dict | None = None) -> None:
        self.comp, self.T, self.ctx = comp, comp.T, comp.ctx
        self.memo = {} if memo is None else memo  # what does not depend on T, by node identity
        self._deal: dict[str, dict | None] = {}
        self._facts: dict[tuple, Any] = {}
        self._bounds: dict[tuple, Fact] = {}

    def _once(self, key: tuple, compute):
        if key not in self.memo:
            self.memo[key] = compute()
        return self.memo[key]

    def fact_of(self, node: A.Node, window: A.Node | None = None) -> Fact:
        """The compiler's fact of a node (kept per node), with its bounds as of T."""
        key = (id(node), window)  # a trend's windows are made anew each time: by value
        if key not in self._bounds:
            fact = self._once(("fact", *key), lambda: self.comp.fact_of(node, window))
            w = window if window is not None else node.window
            self._bounds[key] = dc.replace(fact, bounds=window_bounds(w, self.T))
        return self._bounds[key]

    def _resolve(self, node: A.Field, scope):
        return self._once(("field", id(node), scope), lambda: resolve_field(node, scope, self.ctx))

    # conditions: True / False / None (None: null, false in a filter)
    def cond(self, node: A.Node, scope, env: _Env, strict: bool = False) -> bool | None:
        def nn(test):
            return bool(test) if strict else test

        if isinstance(node, A.And):
            vals = [self.cond(i, scope, env, strict) for i in node.items]
            return False if any(v is False for v in vals) else (None if None in vals else True)
        if isinstance(node, A.Or):
            vals = [self.cond(i, scope, env, strict) for i in node.items]
            return True if any(v is True for v in vals) else (None if None in vals else False)
        if isinstance(node, A.Not):
            return not self.cond(node.operand, scope, env, True)
        if isinstance(node, A.Literal):
            return bool(node.value)
        if isinstance(node, A.Field):
            return nn(self.value(node, scope, env, "boolean"))
        if isinstance(node, A.Compare):
            return nn(self._compare(node, scope, env))
        if isinstance(node, A.In):
            return nn(self._in(node, scope, env))
        if isinstance(node, A.Between):
            return nn(self._between(node, scope, env))
        if isinstance(node, A.IsNull):
            x = self.value(node.operand, scope, env, None)
            return (x is not None) if node.negated else (x is None)
        if isinstance(node, A.Within):
            x = _ts(self.value(node.operand, scope, env, "timestamp"))
            test = None if x is None else _in_bounds(x, window_bounds(node.window, self.T))
            return nn(None if test is None else (not test if node.negated else test))
        if isinstance(node, (A.Exists, A.Purchased)):
            fact = self.fact_of(node)
            test = (self._fact(fact, env) or 0) > 0
            return (not test) if isinstance(node, A.Exists) and node.negated else test
        if isinstance(node, A.InSegment):
            dep = env.rule.dependencies[node.name]
            return self.cond(dep.simplified, CONTACT, _Env(env.data, env.cid, None, dep), strict)
        raise TypeError(f"not a condition: {node!r}")  # pragma: no cover

    def _common(self, left: A.Node, right: A.Node, scope) -> str:
        def compute():
            lt, rt = type_of(left, scope, self.ctx), type_of(right, scope, self.ctx)
            return unify(lt, rt) or "timestamp"
        return self._once(("common", id(left), id(right), scope), compute)

    def _info(self, node: A.Node, scope):
        return self._resolve(node, scope) if isinstance(node, A.Field) else None

    def _compare(self, node: A.Compare, scope, env: _Env) -> bool | None:
        common = self._common(node.left, node.right, scope)
        linfo, rinfo = self._info(node.left, scope), self._info(node.right, scope)
        lv = self.value(node.left, scope, env, common, rinfo)
        rv = self.value(node.right, scope, env, common, linfo)
        return _compare(node.op, lv, rv)

    def _in(self, node: A.In, scope, env: _Env) -> bool | None:
        common = self._common(node.operand, node.values[0], scope)
        for v in node.values[1:]:
            common = self._common(node.operand, v, scope) if common == "any" else common
        x = self.value(node.operand, scope, env, common)
        if x is None:
            return None
        info = self._info(node.operand, scope)
        hit = any(_compare("=", x, self._literal(v, common, info)) for v in node.values)
        return (not hit) if node.negated else hit

    def _between(self, node: A.Between, scope, env: _Env) -> bool | None:
        common = self._common(node.operand, node.low, scope)
        info = self._info(node.operand, scope)
        x = self.value(node.operand, scope, env, common)
        lo = self.value(node.low, scope, env, common, info)
        hi = self.value(node.high, scope, env, common, info)
        a, b = _compare(">=", x, lo), _compare("<=", x, hi)
        test = False if (a is False or b is False) else (None if None in (a, b) else True)
        return None if test is None else ((not test) if node.negated else test)

    # values
    def value(self, node: A.Node, scope, env: _Env, want: str | None, other=None) -> Any:
        if isinstance(node, A.Literal):
            return self._literal(node, want, other)
        if isinstance(node, A.Field):
            info = self._resolve(node, scope)
            x = self._field(info, env, want)
            if want == "timestamp" and info.type == "date":
                x = _ts(x)
            return x
        if isinstance(node, A.Arith):
            a = _num(self.value(node.left, scope, env, "number"))
            b = _num(self.value(node.right, scope, env, "number"))
            if a is None or b is None:
                return None
            if node.op == "/":
                return None if b == 0 else a / b
            return a + b if node.op == "+" else a - b if node.op == "-" else a * b
        if isinstance(node, A.Aggregate):
            x = self._fact(self.fact_of(node), env)
            return (x or 0) if node.func in ("count", "sum") else x
        if isinstance(node, A.Occurrence):
            return self._fact(self.fact_of(node), env)
        if isinstance(node, A.DaysSince):
            x = _ts(self.value(node.operand, scope, env, "timestamp"))
            return None if x is None else (self.T - x) // DAY
        if isinstance(node, A.Trend):
            agg = node.aggregate
            cur = self._fact(self.fact_of(agg, node.current_window), env)
            prev = self._fact(self.fact_of(agg, node.previous_window), env)
            if agg.func in ("count", "sum"):
                cur, prev = cur or 0, prev or 0
            cur, prev = _num(cur), _num(prev)
            if cur is None or prev is None:
                return None
            if node.method == "ratio":
                return None if prev == 0 else cur / prev
            return cur - prev
        raise TypeError(f"not a value: {node!r}")  # pragma: no cover

    def _literal(self, node: A.Literal, want: str | None, other) -> Any:
        v = node.value
        if want in TEMPORAL and isinstance(v, str):
            return A.parse_date(v).replace(tzinfo=UTC)
        if isinstance(v, bool):
            return v
        if isinstance(v, int):
            return v if INT64[0] <= v <= INT64[1] else float(v)
        if isinstance(v, float):
            if other is not None and other.is_decimal:
                d = Decimal(repr(v))
                _, digits, exp = d.as_tuple()
                scale = max(0, -exp)
                if max(len(digits) + max(exp, 0), scale + 1) <= 38:
                    return d
            return v
        return v

    def _field(self, info, env: _Env, want: str | None) -> Any:
        if env.row is not None:  # a row of a source
            if info.table == "properties":
                return json_value(env.row.get("properties"), info.column, want)
            return env.row.get(info.column)
        data, cid = env.data, env.cid
        if info.table == "contacts":
            return data.contacts[cid].get(info.column)
        if info.table == "derived":
            return self._age(data.contacts[cid].get("birth_date"))
        if info.table == "deal":
            deal = self._current_deal(data, cid)
            return None if deal is None else deal.get(info.column)
        row = data.scores.get(info.table, {}).get(cid)
        return None if row is None else row.get(info.column)

    def _age(self, birth: _dt.date | None) -> int | None:
        if birth is None:
            return None
        T = self.T
        later = birth.month > T.month or (birth.month == T.month and birth.day > T.day)
        return T.year - birth.year - (1 if later else 0)

    def _current_deal(self, data: ContactRows, cid: str) -> dict | None:
        if cid not in self._deal:
            rows = [r for r in data.of("deals", cid) if _ts(r["#ts"]) <= self.T]
            by_deal: dict[str, list[dict]] = defaultdict(list)
            for r in rows:
                by_deal[r["deal_id"]].append(r)
            current = []
            for deal_id, history in by_deal.items():
                history.sort(key=lambda r: (r["updated_at"], r["stage"] or ""))
                changed = None
                for prev, r in zip([None, *history], history):
                    if prev is None or prev["stage"] != r["stage"]:
                        changed = r["updated_at"] if changed is None else max(changed, r["updated_at"])
                latest = max(history, key=lambda r: (r["updated_at"], r["stage"] or ""))
                current.append({**latest, "stage_changed": changed})
            self._deal[cid] = max(current, key=lambda r: (r["updated_at"], r["deal_id"])) if current else None
        return self._deal[cid]

    # facts
    def _fact(self, fact: Fact, env: _Env) -> Any:
        key = (id(fact), env.cid)  # facts are kept per node in _bounds: one object each
        if key not in self._facts:
            self._facts[key] = self._aggregate(fact, env)
        return self._facts[key]

    def _aggregate(self, fact: Fact, env: _Env) -> Any:
        if fact.bounds.empty:
            counted: list[dict] = []
        else:
            counted = [r for r in self._fact_rows(fact, env) if _in_bounds(_ts(r["#ts"]), fact.bounds)]
        func = fact.func
        if func == "count":
            return len(counted)
        if func in ("first", "last"):
            times = [_ts(r["#ts"]) for r in counted]
            return (min(times) if func == "first" else max(times)) if times else None
        values = [v for v in (self._row_value(fact, r) for r in counted) if v is not None]
        if not values:
            return None
        if func == "sum":
            return sum(values)
        if func == "avg":
            return float(sum(values)) / len(values)
        return min(values) if func == "min" else max(values)

    def _row_value(self, fact: Fact, row: dict) -> Any:
        info = fact.field
        if info.table != "properties":
            return row.get(info.column)
        numeric = fact.func in ("sum", "avg") or info.type == "any"
        return json_value(row.get("properties"), info.column, "number" if numeric else None)

    def _fact_rows(self, fact: Fact, env: _Env, cut: bool = True) -> list[dict]:
        """The contact's rows (up to T if ``cut``) that the fact's type, status and filter
        keep (filtered once per data, T and filter: a filter may read T)."""
        key = (self.T, fact.table, fact.event_type, fact.completed, fact.where, env.cid)
        kept = env.data.kept.get(key)
        if kept is None:
            kept = env.data.kept[key] = list(self._filter(fact, env))
        if not cut:
            return kept
        T = self.T
        return [r for r in kept if _ts(r["#ts"]) <= T]

    def _filter(self, fact: Fact, env: _Env) -> Iterable[dict]:
        source = self._source(fact)
        for r in env.data.of(fact.table, env.cid):
            if fact.event_type is not None and r.get("#type") != fact.event_type:
                continue
            if fact.completed and r.get("#status") not in (None, "completed"):
                continue
            if fact.where is not None and not self.cond(fact.where, source, _Env(None, None, r)):
                continue
            yield r

    def _source(self, fact: Fact):
        from segmentum.segments.catalog import SourceInfo

        if fact.event_type is not None:
            return SourceInfo(fact.event_type, "event", "occurred_at")
        if fact.table == "order_items":
            return ORDER_ITEMS
        return self.comp.catalog.source(fact.table)


# -- the evaluator --------------------------------------------------------------------------------
class ContactEvaluator:
    """Saved segments (checked rules by name) evaluated for a few contacts at a time."""

    def __init__(self, catalog, rules: Mapping[str, CheckedRule]) -> None:
        self.catalog = catalog
        self.rules = dict(rules)
        every = list(self.rules.values())
        self.needs = _Needs(Compiler(catalog, _dt.datetime.now(UTC), exists="scan"), every)
        self.reader = _Reader(catalog, self.needs)
        self.memo: dict = {}  # node resolutions, shared by every evaluation

    def fetch(self, contacts: list[str], T: _dt.datetime) -> ContactRows:
        """The rows of ``contacts`` the rules read, at any time (T is not needed to read)."""
        del T
        return self.reader.read(contacts)

    def evaluate(self, names: Iterable[str], data: ContactRows, T: _dt.datetime,
                 failed: dict[str, str] | None = None) -> set[tuple[str, str]]:
        """(segment, contact_id) for every member among the contacts of ``data`` as of T.
        The rules share one interpreter (a fact several rules use is computed once per
        contact); with ``failed``, a rule that raises is recorded there and the others go on."""
        it = _Interp(Compiler(self.catalog, T, exists="scan"), self.memo)
        out = set()
        names = list(names)
        for cid, profile in data.contacts.items():
            created = _ts(profile.get("created_at"))
            if created is not None and created > T:
                continue
            for name in names:
                if failed is not None and name in failed:
                    continue
                rule = self.rules[name]
                try:
                    if it.cond(rule.simplified, CONTACT, _Env(data, cid, None, rule), True):
                        out.add((name, cid))
                except Exception as exc:
                    if failed is None:
                        raise
                    failed[name] = f"{type(exc).__name__}: {exc}"
        return {(n, c) for n, c in out if failed is None or n not in failed}

    def next_change(self, names: Iterable[str], data: ContactRows, T: _dt.datetime,
                    failed: dict[str, str] | None = None) -> dict[tuple[str, str], _dt.datetime]:
        """(segment, contact_id) -> the earliest moment after T at which the truth can change
        with no new data (see :mod:`.timers`); pairs with none are absent. ``failed`` as for
        :meth:`evaluate`."""
        moments = _Moments(Compiler(self.catalog, T, exists="scan"), data, self.memo)
        out = {}
        for name in names:
            if failed is not None and name in failed:
                continue
            rule = self.rules[name]
            try:
                for cid in data.contacts:
                    due = moments.of(rule, cid)
                    if due is not None:
                        out[(name, cid)] = due
            except Exception as exc:
                if failed is None:
                    raise
                failed[name] = f"{type(exc).__name__}: {exc}"
                out = {k: v for k, v in out.items() if k[0] != name}
        return out


def _g(t: _dt.datetime, amount: int, unit: str) -> _dt.datetime:
    """The earliest T' with shift(T', amount unit) >= t (see :mod:`.timers`)."""
    if unit in ("hours", "days", "weeks"):
        return t + _dt.timedelta(**{unit: amount})
    t0 = t + relativedelta(months=amount * (12 if unit == "years" else 1))
    if t0.day == t.day:
        return t0
    return (t0.replace(day=1, hour=0, minute=0, second=0, microsecond=0) + relativedelta(months=1))


def _relative(window: A.Node | None) -> list[tuple[int, str]]:
    if isinstance(window, A.Last):
        return [(window.amount, window.unit)]
    if isinstance(window, A.Ago):
        return [(a, window.unit) for a in (window.far, window.near) if a > 0]
    return []


class _Moments:
    """The moments of :mod:`.timers`, for one contact's rows in Python."""

    def __init__(self, comp: Compiler, data: ContactRows, memo: dict) -> None:
        self.comp, self.data, self.T = comp, data, comp.T
        self.it = _Interp(comp, memo)

    def of(self, rule: CheckedRule, cid: str) -> _dt.datetime | None:
        found: list[_dt.datetime] = []
        created = _ts(self.data.contacts[cid].get("created_at"))
        if created is not None:
            found.append(created)
        for r in (rule, *rule.all_dependencies().values()):
            found += self._rule(r, cid)
        later = [t for t in found if t is not None and t > self.T]
        return min(later) if later else None

    def _rule(self, rule: CheckedRule, cid: str) -> list[_dt.datetime]:
        from segmentum.live.timers import contact_level, days_compared

        env = _Env(self.data, cid, None, rule)
        nodes = list(contact_level(rule.simplified))
        in_trend = {id(n.aggregate) for n in nodes if isinstance(n, A.Trend)}
        compared = {id(d): ks for n in nodes if isinstance(n, (A.Compare, A.Between))
                    for d, ks in days_compared(n)}
        out: list[_dt.datetime] = []
        for n in nodes:
            if isinstance(n, (A.Aggregate, A.Occurrence, A.Exists, A.Purchased)) and id(n) not in in_trend:
                out += self._rows(self.it.fact_of(n), n.window, env)
            elif isinstance(n, A.Trend):
                for w in (n.current_window, n.previous_window):
                    out += self._rows(self.it.fact_of(n.aggregate, w), w, env)
            elif isinstance(n, A.Within):
                x = _ts(self.it.value(n.operand, CONTACT, env, "timestamp"))
                if x is not None:
                    out += [x, *(_g(x, a, u) for a, u in _relative(n.window))]
            elif isinstance(n, A.DaysSince):
                x = _ts(self.it.value(n.operand, CONTACT, env, "timestamp"))
                if x is not None:
                    ks = compared.get(id(n))
                    if ks is None:
                        ks = ((self.T - x) // DAY + 1,)
                    out += [x + _dt.timedelta(days=k) for k in ks]
            elif isinstance(n, A.Field):
                table = self.it._resolve(n, CONTACT).table
                if table == "derived":
                    out.append(self._birthday(self.data.contacts[cid].get("birth_date")))
                elif table == "deal":
                    out += [_ts(r["#ts"]) for r in self.data.of("deals", cid)]
        return out

    def _rows(self, fact: Fact, window: A.Node | None, env: _Env) -> list[_dt.datetime]:
        """Each row's own time and g(t) for the window's relative amounts."""
        amounts = _relative(window)
        out = []
        for r in self.it._fact_rows(fact, env, cut=False):
            t = _ts(r["#ts"])
            out.append(t)
            out += [_g(t, a, u) for a, u in amounts]
        return out

    def _birthday(self, birth: _dt.date | None) -> _dt.datetime | None:
        if birth is None:
            return None
        for year in (self.T.year, self.T.year + 1):
            at = _midnight(_dt.date(year, birth.month, 1)) + _dt.timedelta(days=birth.day - 1)
            if at > self.T:
                return at
        return None  # pragma: no cover - next year's is always later

