"""The segment engine: check, preview, save, refresh, explain and evaluate segments.

    >>> eng = SegmentEngine(ws)
    >>> p = eng.preview('count(email_open, last 90 days) > 2', as_of="2026-10-31")
    >>> p.count, p.share, p.sample, p.sql
    >>> eng.create("apple-fans", 'purchased(brand = "Apple")')
    >>> eng.refresh(["apple-fans"], as_of="2026-10-31")      # entries / exits recorded
    >>> eng.explain("apple-fans", "C0000042").render()
    >>> eng.history("apple-fans")                            # size over time

A rule is text, its JSON face (a ``{"version": 1, "rule": ...}`` document or a node), or a
syntax tree. It goes parse → :mod:`passes <segmentum.segments.passes>` (resolve,
typecheck, simplify) → :class:`~segmentum.segments.compiler.Compiler` → Ibis. A rule given
as JSON or as a tree is printed to canonical text and parsed back, so its errors carry a
line and a column in that text and, for JSON, the JSON path of the node at fault.

``in_segment("x")`` inlines the saved rule of x (checked in turn, cycles rejected with
the cycle named), so it is evaluated as of the same time as the rule that names it; a
refresh of several segments compiles them together, sharing one scan per source table.
Everything is evaluated as of a time T (default now, to the second).

An engine caches what it learnt about the workspace (its catalogue, the saved segments);
it forgets it after its own writes. After loading data or computing scores elsewhere, use
a new engine (they are cheap).
"""

from __future__ import annotations

import dataclasses as dc
import datetime as _dt
import json
import time
from collections.abc import Iterable, Mapping
from typing import Any

import ibis
import ibis.expr.types as ir
import pandas as pd

from segmentum.clock import to_utc
from segmentum.errors import UsageError
from segmentum.segments import ast as A
from segmentum.segments.catalog import Catalog
from segmentum.segments.compiler import Compiler
from segmentum.segments.errors import SegmentError, SegmentJSONError
from segmentum.segments.explain import Explanation, explain
from segmentum.segments.json_face import from_json, node_from_json, to_json
from segmentum.segments.models import check_pins, pins_of
from segmentum.segments.parser import parse
from segmentum.segments.passes import CheckedRule, Context, check
from segmentum.segments.printer import to_text
from segmentum.segments.store import (
    RefreshError,
    RefreshResult,
    SavedSegment,
    SegmentStore,
    check_name,
)

__all__ = [
    "SegmentEngine",
    "Preview",
    "Explanation",
    "EvaluationError",
    "to_utc",
    "SAMPLE_COLUMNS",
]

SAMPLE_COLUMNS = ("contact_id", "email", "first_name", "last_name", "city", "country")


class EvaluationError(SegmentError):
    """A rule that checks but can't be computed on this data (e.g. a numeric overflow)."""

    code = "evaluation"
    http_status = 422


@dc.dataclass
class Preview:
    """What a rule selects as of a time: count, share of all contacts, a sample, the SQL."""

    rule: str
    as_of: _dt.datetime
    count: int
    total: int
    sample: pd.DataFrame
    sql: str
    warnings: list[str]
    seconds: float

    @property
    def share(self) -> float:
        return self.count / self.total if self.total else 0.0

    def to_dict(self) -> dict:
        return {
            "rule": self.rule,
            "as_of": self.as_of,
            "count": self.count,
            "total": self.total,
            "share": self.share,
            "sample": self.sample,
            "sql": self.sql,
            "warnings": self.warnings,
            "seconds": round(self.seconds, 3),
        }


class _Segments:
    """Saved segments as the resolve pass sees them (names, checked rules)."""

    def __init__(self, engine: SegmentEngine) -> None:
        self.engine = engine
        self._names: list[str] | None = None
        self._memo: dict[tuple[str, tuple[str, ...]], CheckedRule] = {}

    def names(self) -> list[str]:
        if self._names is None:
            self._names = self.engine.store.names()
        return self._names

    def check(self, name: str, chain: tuple[str, ...]) -> CheckedRule:
        key = (name, chain)
        if key not in self._memo:
            seg = self.engine.store.require(name)
            self._memo[key] = self.engine._check_text(seg.rule, name=name, chain=(*chain, name))
        return self._memo[key]


class SegmentEngine:
    """Segments over one workspace (see the module doc)."""

    def __init__(self, ws, *, exists: str = "auto") -> None:
        self.ws = ws
        self.store = SegmentStore(ws)
        self.exists = exists
        self._catalog: Catalog | None = None
        self._segments: _Segments | None = None

    @property
    def catalog(self) -> Catalog:
        if self._catalog is None:
            self._catalog = Catalog(self.ws)
        return self._catalog

    def _fresh(self) -> None:
        """Forget cached names (after a write)."""
        self._catalog = None
        self._segments = None

    @property
    def segments(self) -> _Segments:
        if self._segments is None:
            self._segments = _Segments(self)
        return self._segments

    # -- checking ----------------------------------------------------------------------------
    def parse(self, rule: Any) -> tuple[str, A.Node, bool]:
        """(text, tree with spans, came from JSON) for rule text, JSON or a tree."""
        if isinstance(rule, str):
            return rule, parse(rule), False
        from_json_face = False
        if isinstance(rule, Mapping):
            from_json_face = True
            tree = from_json(rule) if "version" in rule else node_from_json(rule, "$.rule")
        elif isinstance(rule, A.Node):
            tree = rule
        else:
            raise SegmentJSONError(
                "a rule is text, a JSON object or a syntax tree", path="$",
            )
        text = to_text(tree)
        return text, parse(text), from_json_face

    def check(self, rule: Any, *, name: str | None = None) -> CheckedRule:
        """Parse and check a rule against this workspace (located errors)."""
        from segmentum.segments.values import value_warnings

        text, tree, from_json_face = self.parse(rule)
        chain = (name,) if name is not None else ()
        checked = self._check_tree(text, tree, name=name, chain=chain, from_json=from_json_face)
        checked.warnings.extend(value_warnings(checked.tree, checked.context))  # typos in values
        return checked

    def _check_text(self, text: str, *, name: str | None, chain: tuple[str, ...]) -> CheckedRule:
        return self._check_tree(text, parse(text), name=name, chain=chain, from_json=False)

    def _check_tree(self, text, tree, *, name, chain, from_json) -> CheckedRule:
        ctx = Context(
            self.catalog, text, tree, segments=self.segments, chain=chain, from_json=from_json
        )
        return check(tree, ctx, name=name)

    # -- evaluating --------------------------------------------------------------------------
    def compiler(self, as_of: Any = None, **kw) -> Compiler:
        kw.setdefault("exists", self.exists)
        return Compiler(self.catalog, to_utc(as_of), **kw)

    def members(self, rule: Any, as_of: Any = None) -> ir.Table:
        """The contacts a rule selects as of a time (evaluated now, not stored)."""
        checked = rule if isinstance(rule, CheckedRule) else self.check(rule)
        comp = self.compiler(as_of)
        comp.add(checked)
        return comp.members(checked)

    def count(self, rule: Any, as_of: Any = None) -> int:
        """How many contacts a rule selects as of a time (one query)."""
        members = self.members(rule, as_of)
        return int(_run(lambda: members.count().execute()))

    def preview(self, rule: Any, as_of: Any = None, *, sample: int = 10) -> Preview:
        """Count, share of all contacts, a sample of members and the generated SQL."""
        started = time.perf_counter()
        T = to_utc(as_of)
        checked = rule if isinstance(rule, CheckedRule) else self.check(rule)
        comp = self.compiler(T)
        comp.add(checked)
        members = comp.members(checked)
        ids = _run(lambda: members.to_pyarrow().column("contact_id"))
        total = int(comp.total().execute())
        return Preview(
            rule=to_text(checked.tree),
            as_of=T,
            count=len(ids),
            total=total,
            sample=self._sample(ids, sample),
            sql=str(ibis.to_sql(members)),
            warnings=[*checked.warnings, *self._warnings(comp, T)],
            seconds=time.perf_counter() - started,
        )

    def _sample(self, ids, n: int) -> pd.DataFrame:
        """The first ``n`` members by contact_id, with a few profile columns."""
        import pyarrow.compute as pc

        c = self.ws.warehouse.table("contacts")
        cols = [col for col in SAMPLE_COLUMNS if col in c.columns]
        if n <= 0 or len(ids) == 0:
            return pd.DataFrame(columns=cols)
        first = pc.take(ids, pc.sort_indices(ids)[:n]).to_pylist()
        return c.filter(c.contact_id.isin(first)).select(cols).order_by("contact_id").to_pandas()

    def _warnings(self, comp: Compiler, T: _dt.datetime) -> list[str]:
        out = []
        for ns in sorted(comp.analytics_used):
            when = self.catalog.scores_as_of(ns)
            if when is not None and when != T:
                cmd = self.catalog.model_command(ns)
                out.append(
                    f"{ns}.* values are as of {when:%Y-%m-%d %H:%M:%S} UTC, the rule as of "
                    f"{T:%Y-%m-%d %H:%M:%S} UTC; run `{cmd} --as-of {T:%Y-%m-%dT%H:%M:%SZ}` "
                    "to line them up"
                )
        return out

    # -- saved segments ----------------------------------------------------------------------
    def create(
        self,
        name: str,
        rule: Any,
        *,
        description: str | None = None,
        replace: bool = False,
    ) -> SavedSegment:
        """Check and save a segment (``replace`` to change an existing one's rule)."""
        check_name(name)
        checked = self.check(rule, name=name)
        if replace:
            self._check_no_cycle_through(name, checked)
        seg = SavedSegment(
            name=name,
            rule=to_text(checked.tree),
            rule_json=json.dumps(to_json(checked.tree), ensure_ascii=False),
            description=description,
            models=json.dumps(pins_of(self.catalog, checked), sort_keys=True),
        )
        saved = self.store.save(seg, replace=replace)
        self._fresh()
        return saved

    def _check_no_cycle_through(self, name: str, checked: CheckedRule) -> None:
        """A replaced rule must not make a segment that names it depend on itself."""
        if name in checked.all_dependencies():  # pragma: no cover - caught by the chain
            raise RefreshError(f'segment "{name}" would depend on itself')

    def dependents(self, name: str) -> list[str]:
        """Saved segments whose rules name ``name`` through in_segment, directly or not."""
        out = []
        for seg in self.store.all():
            if seg.name == name:
                continue
            tree = parse(seg.rule)
            if any(isinstance(n, A.InSegment) and n.name == name for n in A.walk(tree)):
                out.append(seg.name)
        return out

    def delete(self, name: str) -> None:
        """Delete a segment and its history; refused while other segments name it."""
        self.store.require(name)
        deps = self.dependents(name)
        if deps:
            raise SegmentError(
                f'segment "{name}" is used by {", ".join(chr(34) + d + chr(34) for d in deps)}',
                hint="change or delete those segments first",
            )
        self.store.delete(name)
        self._fresh()

    def get(self, name: str) -> SavedSegment:
        return self.store.require(name)

    def list(self) -> list[dict]:
        """Every saved segment with its last refresh and size."""
        out = []
        for seg in self.store.all():
            hist = self.store.history(seg.name)
            last = hist.iloc[-1] if len(hist) else None
            out.append(
                {
                    "name": seg.name,
                    "description": seg.description,
                    "rule": seg.rule,
                    "last_refresh": None if last is None else last["as_of"],
                    "size": None if last is None else int(last["size"]),
                    "updated_at": seg.updated_at,
                }
            )
        return out

    def show(self, name: str) -> dict:
        seg = self.store.require(name)
        hist = self.store.history(name)
        data = seg.to_dict()
        data["depends_on"] = [n.name for n in A.walk(parse(seg.rule)) if isinstance(n, A.InSegment)]
        data["used_by"] = self.dependents(name)
        data["refreshes"] = len(hist)
        data["last_refresh"] = hist.iloc[-1]["as_of"] if len(hist) else None
        data["size"] = int(hist.iloc[-1]["size"]) if len(hist) else None
        return data

    def history(self, name: str) -> pd.DataFrame:
        self.store.require(name)
        return self.store.history(name)

    def current_members(self, name: str, as_of: Any = None) -> ir.Table:
        """Members recorded by refreshes: after the last one, or at ``as_of``."""
        self.store.require(name)
        first = self.store.first_refresh(name)
        if first is None:
            raise RefreshError(
                f'segment "{name}" has not been refreshed yet',
                hint=f"run `segmentum segment refresh {name}` (or use --live)",
            )
        if as_of is not None:
            T = to_utc(as_of)
            if T < first:
                raise RefreshError(
                    f'segment "{name}" was first refreshed as of {first:%Y-%m-%d %H:%M:%S} UTC, '
                    "after the time asked for",
                    hint="use --live to evaluate the rule as of that time",
                )
            return self.store.members(name, T)
        return self.store.members(name)

    def changes(self, name: str, since: Any = None, until: Any = None) -> ir.Table:
        """Who entered and who left a saved segment, with the refresh time of each change
        and the contact's e-mail (see :meth:`SegmentStore.changes`)."""
        self.store.require(name)
        bounds = [None if t is None else to_utc(t) for t in (since, until)]
        t = self.store.changes(name, *bounds)
        c = self.ws.warehouse.table("contacts")
        t = t.left_join(c.select("contact_id", "email"), "contact_id").drop("contact_id_right")
        return t.order_by(["at", "change", "contact_id"])

    # -- refresh -----------------------------------------------------------------------------
    def refresh(
        self, names: Iterable[str] | None = None, as_of: Any = None
    ) -> list[RefreshResult]:
        """Recompute and record the members of saved segments (all by default) as of T.

        Segments are evaluated together (one scan per source table for all of them) and
        their entries and exits recorded in one transaction; results come dependencies
        first. A segment already refreshed as of T is left alone (0 entered, 0 exited);
        one refreshed after T is an error, and then nothing is recorded.
        """
        T = to_utc(as_of)
        names = list(dict.fromkeys(names)) if names is not None else self.store.names()
        for n in names:
            self.store.require(n)
        last = self.store.last_refreshes(names)
        skipped = {n: self.store.check_refresh(n, T, last.get(n)) for n in names}
        todo = [n for n in names if skipped[n] is None]
        results: dict[str, RefreshResult] = {}
        checked = {}
        for n in names:
            try:
                checked[n] = self.segments.check(n, ())
            except SegmentError as exc:
                raise SegmentError(
                    f'segment "{n}" can\'t be evaluated: {exc}',
                    hint=f"fix it with `segmentum segment create {n} --replace --rule ...`",
                ) from None
        segs = {n: self.store.require(n) for n in names}
        new_pins = check_pins(self.catalog, {n: (segs[n].pins, checked[n]) for n in names})
        for n, pins in new_pins.items():  # saved before pins existed: pinned now
            self.store.set_models(n, pins)
        order = _dependency_order(checked)
        todo = [n for n in order if skipped[n] is None]
        if todo:
            comp = self.compiler(T)
            for n in todo:
                comp.add(checked[n])
            matrix, cols = comp.matrix({n: checked[n] for n in todo})
            wh = self.ws.warehouse
            table = _run(lambda: wh.temp_table("_segment_matrix", matrix))
            try:
                long = ibis.union(
                    *[
                        table.filter(table[cols[n]]).select(
                            segment=ibis.literal(n, type="string"), contact_id=table.contact_id
                        )
                        for n in todo
                    ],
                    distinct=False,
                ) if len(todo) > 1 else table.filter(table[cols[todo[0]]]).select(
                    segment=ibis.literal(todo[0], type="string"), contact_id=table.contact_id
                )
                warnings = tuple(self._warnings(comp, T))
                for r in _run(lambda: self.store.apply_many(todo, T, long)):
                    mine = tuple(
                        w for w in warnings if _uses(checked[r.segment], w.split(".", 1)[0])
                    )
                    results[r.segment] = dc.replace(r, warnings=mine)
            finally:
                wh.drop_temp("_segment_matrix")
        for n in names:
            if n not in results:
                size = int(self.store.members(n).count().to_pyarrow().as_py())
                results[n] = RefreshResult(n, T, size, 0, 0, 0.0, skipped[n])
        return [results[n] for n in order]

    def contact_memberships(
        self, contact_id: str, names: Iterable[str] | None = None, as_of: Any = None
    ) -> dict[str, bool]:
        """Whether one contact is in each saved segment (all by default) as of T, computed
        from that contact's rows only (the hook for re-evaluating a contact on an event)."""
        T = to_utc(as_of)
        names = list(names) if names is not None else self.store.names()
        checked = {n: self.segments.check(n, ()) for n in names}
        if not checked:
            return {}
        contact_id = str(contact_id)
        is_contact, _ = self._contact_status(contact_id, T)
        if not is_contact:
            return {n: False for n in names}
        comp = self.compiler(T, contact_id=contact_id)
        for c in checked.values():
            comp.add(c)
        w = comp.wide
        cols = {f"s{i}": comp.condition(c) for i, c in enumerate(checked.values())}
        rows = _run(lambda: w.select(**cols).to_pyarrow().to_pylist())
        row = rows[0] if rows else {}
        return {n: bool(row.get(f"s{i}")) for i, n in enumerate(checked)}

    # -- explain -----------------------------------------------------------------------------
    def explain(self, rule_or_name: Any, contact_id: str, as_of: Any = None) -> Explanation:
        """Every condition's truth and every compared value for one contact as of T.

        A plain string is a saved segment's name if one has it, otherwise rule text.
        """
        T = to_utc(as_of)
        segment = None
        if isinstance(rule_or_name, str) and rule_or_name in self.store.names():
            segment = rule_or_name
            checked = self.segments.check(segment, ())
        else:
            checked = self.check(rule_or_name)
        contact_id = str(contact_id)
        is_contact, note = self._contact_status(contact_id, T)
        comp = self.compiler(T, contact_id=contact_id, exists="scan")
        return _run(lambda: explain(comp, checked, contact_id, segment, is_contact, note))

    def _contact_status(self, contact_id: str, T: _dt.datetime) -> tuple[bool, str | None]:
        if "\x00" in contact_id:
            raise UsageError(f"No contact {contact_id!r} in this workspace.")
        c = self.ws.warehouse.table("contacts")
        rows = (
            c.filter(c.contact_id == ibis.literal(contact_id, type="string"))
            .select("created_at")
            .to_pyarrow()
            .to_pylist()
        )
        if not rows:
            raise UsageError(f"No contact {contact_id!r} in this workspace.")
        created = rows[0]["created_at"]
        if created is not None and to_utc(created) > T:
            return False, (
                f"the contact was created on {to_utc(created):%Y-%m-%d %H:%M:%S} UTC, after the "
                "as-of time, so it is in no segment yet"
            )
        return True, None

    # -- evaluation against ground truth ------------------------------------------------------
    def evaluate(
        self, rules: Mapping[str, Any], truth: pd.DataFrame, as_of: Any = None
    ) -> pd.DataFrame:
        """Precision and recall of each labelled rule against ``truth`` (contact_id, label).

        All rules are evaluated together as of T; returns one row per label: rule,
        selected, actual, true_positives, precision, recall, f1.
        """
        T = to_utc(as_of)
        checked = {label: self.check(rule) for label, rule in rules.items()}
        comp = self.compiler(T)
        for c in checked.values():
            comp.add(c)
        matrix, cols = comp.matrix(checked)
        got = _run(lambda: matrix.to_pandas())
        rows = []
        for label, c in checked.items():
            selected = set(got.loc[got[cols[label]].astype(bool), "contact_id"])
            actual = set(truth.loc[truth["label"] == label, "contact_id"])
            tp = len(selected & actual)
            precision = tp / len(selected) if selected else float("nan")
            recall = tp / len(actual) if actual else float("nan")
            f1 = (
                2 * precision * recall / (precision + recall)
                if selected and actual and (precision + recall) > 0
                else float("nan")
            )
            rows.append(
                {
                    "label": label,
                    "rule": to_text(c.tree),
                    "selected": len(selected),
                    "actual": len(actual),
                    "true_positives": tp,
                    "precision": precision,
                    "recall": recall,
                    "f1": f1,
                }
            )
        return pd.DataFrame(rows)


def _uses(rule: CheckedRule, namespace: str) -> bool:
    """Does the rule (or a segment it names) read fields of an analytics namespace?"""
    for r in (rule, *rule.all_dependencies().values()):
        for n in A.walk(r.tree):
            if isinstance(n, A.Field) and len(n.path) == 2 and n.path[0] == namespace:
                return True
    return False


def _dependency_order(checked: Mapping[str, CheckedRule]) -> list[str]:
    """The names, each after the segments it depends on (among those given)."""
    out: list[str] = []
    seen: set[str] = set()

    def visit(name: str) -> None:
        if name in seen:
            return
        seen.add(name)
        for dep in checked[name].all_dependencies():
            if dep in checked:
                visit(dep)
        out.append(name)

    for name in checked:
        visit(name)
    return out


def _run(fn):
    """Run a query; data-dependent failures (overflow, bad casts) become EvaluationError."""
    try:
        return fn()
    except Exception as exc:  # duckdb's errors have no common importable base here
        name = type(exc).__name__
        if name in ("OutOfRangeException", "ConversionException", "InvalidInputException"):
            first = str(exc).split("\n", 1)[0]
            raise EvaluationError(
                f"the rule can't be evaluated on this data: {first}",
                hint="check the sizes of the numbers in the rule",
            ) from None
        raise
