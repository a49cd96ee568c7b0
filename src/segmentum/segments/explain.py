"""Why one contact is in or out of a rule: every condition's truth and every value it uses.

The rule is walked as written (not simplified), in reading order; each line is either a
condition (``result`` true / false, in the language's two-valued logic) or a value that a
condition compares (``value``: a count, a sum, a timestamp, a field...), indented under it:

    contact C0000104 is NOT in segment "apple-offline" as of 2026-10-31 23:59:59 UTC
      ✗ in_segment("apple") and count(orders where channel = "offline") > 0
        ✓ in_segment("apple")
          ✓ count(email_open, last 90 days) > 2 and ...
            ✓ count(email_open, last 90 days) > 2
                count(email_open, last 90 days) = 5
        ✗ count(orders where channel = "offline") > 0
            count(orders where channel = "offline") = 0

``in_segment("x")`` expands into x's rule; ``exists`` / ``no`` / ``purchased`` show how
many rows they found; ``trend`` shows both periods; ``days_since`` shows the timestamp.
Everything is computed in one query over the contact's own rows (each scan filtered to
the contact), by the same compiler as the segment itself, so the explanation cannot
disagree with the membership.
"""

from __future__ import annotations

import dataclasses as dc
import datetime as _dt
from collections.abc import Iterator
from typing import Any

import pandas as pd

from segmentum.segments import ast as A
from segmentum.segments.passes import CheckedRule
from segmentum.segments.printer import to_text, value_text

__all__ = ["Explanation", "ExplainLine", "explain", "explain_nodes"]


@dc.dataclass
class ExplainLine:
    """One condition (``result`` true/false) or a value it compares (``value``)."""

    depth: int
    text: str
    role: str  # "condition" or "value"
    result: bool | None
    value: Any
    segment: str | None = None  # the in_segment(...) segment the line belongs to

    def to_dict(self) -> dict:
        return dc.asdict(self)


@dc.dataclass
class Explanation:
    """Why a contact is in or out of a rule as of a time, condition by condition."""

    contact_id: str
    as_of: _dt.datetime
    rule: str
    segment: str | None
    is_contact: bool
    member: bool
    lines: list[ExplainLine]
    note: str | None = None

    def to_dict(self) -> dict:
        return {
            "contact_id": self.contact_id,
            "as_of": self.as_of,
            "segment": self.segment,
            "rule": self.rule,
            "is_contact": self.is_contact,
            "member": self.member,
            "note": self.note,
            "conditions": [ln.to_dict() for ln in self.lines],
        }

    def render(self) -> str:
        """Plain text: one line per condition with ✓ / ✗, values after an equals sign."""
        what = f'segment "{self.segment}"' if self.segment else "the rule"
        out = [
            f"contact {self.contact_id} is {'IN' if self.member else 'NOT in'} {what} as of "
            f"{self.as_of:%Y-%m-%d %H:%M:%S} UTC"
        ]
        if self.note:
            out.append(self.note)
        for ln in self.lines:
            pad = "  " * (ln.depth + 1)
            if ln.role == "condition":
                out.append(f"{pad}{'✓' if ln.result else '✗'} {ln.text}")
            else:
                out.append(f"{pad}  {ln.text} = {_show(ln.value)}")
        return "\n".join(out)


def explain_nodes(rule: CheckedRule) -> Iterator[tuple[str, A.Node, int, str, CheckedRule]]:
    """(role, node, depth, segment, rule) for each condition of the rule as written and
    each non-constant value the conditions compare, depth first."""

    def visit(node: A.Node, d: int, r: CheckedRule, s: str):
        yield "condition", node, d, s, r
        if isinstance(node, (A.And, A.Or)):
            for item in node.items:
                yield from visit(item, d + 1, r, s)
        elif isinstance(node, A.Not):
            yield from visit(node.operand, d + 1, r, s)
        elif isinstance(node, A.InSegment):
            dep = r.dependencies[node.name]
            yield from visit(dep.tree, d + 1, dep, node.name)
        elif isinstance(node, (A.Exists, A.Purchased)):  # how many rows it found
            source = node.source if isinstance(node, A.Exists) else "order_items"
            count = A.Aggregate("count", source, None, node.where, node.window)
            yield "value", count, d + 1, s, r
        elif isinstance(node, (A.Compare, A.In, A.Between, A.IsNull, A.Within)):
            for f in ("left", "right", "operand", "low", "high"):
                v = getattr(node, f, None)
                if v is not None and not isinstance(v, A.Literal):
                    yield from values(v, d + 1, r, s)

    def values(node: A.Node, d: int, r: CheckedRule, s: str):
        yield "value", node, d, s, r
        if isinstance(node, A.Arith):
            for v in (node.left, node.right):
                if not isinstance(v, A.Literal):
                    yield from values(v, d + 1, r, s)
        elif isinstance(node, A.DaysSince):
            yield from values(node.operand, d + 1, r, s)
        elif isinstance(node, A.Trend):  # the two periods it compares
            for window in (node.current_window, node.previous_window):
                yield "value", node.aggregate.replace(window=window), d + 1, s, r

    yield from visit(rule.tree, 0, rule, "")


def explain(
    compiler,
    rule: CheckedRule,
    contact_id: str,
    segment: str | None = None,
    is_contact: bool = True,
    note: str | None = None,
) -> Explanation:
    """The explanation of ``rule`` for one contact. ``compiler`` is a Compiler restricted
    to that contact (``contact_id=...``) with exists compiled as counts (``exists="scan"``),
    so that exists lines can show how many rows they found."""
    nodes = list(explain_nodes(rule))
    lines: list[ExplainLine] = []
    member = False
    if is_contact:
        compiler.add(rule, original=True)
        for _, node, _, _, r in nodes:  # aggregates that only explain shows
            if isinstance(node, A.Aggregate):
                compiler.add_value(node, r)
        cols = {}
        for i, (role, node, _, _, r) in enumerate(nodes):
            cols[f"n{i}"] = (
                compiler.node_condition(node, r) if role == "condition"
                else compiler.node_value(node, r)
            )
        w = compiler.wide
        rows = w.select(**cols).to_pyarrow().to_pylist()
        values = rows[0] if rows else {}
        for i, (role, node, depth, seg, _) in enumerate(nodes):
            v = values.get(f"n{i}")
            if role == "condition":
                lines.append(ExplainLine(depth, to_text(node), role, bool(v), None, seg or None))
            else:
                lines.append(ExplainLine(depth, value_text(node), role, None, _plain(v), seg or None))
        member = bool(lines and lines[0].result)
    return Explanation(
        contact_id=contact_id,
        as_of=compiler.T,
        rule=to_text(rule.tree),
        segment=segment,
        is_contact=is_contact,
        member=member,
        lines=lines,
        note=note,
    )


def _plain(value: Any) -> Any:
    if isinstance(value, pd.Timestamp):
        return value.to_pydatetime()
    if hasattr(value, "is_finite") and callable(value.is_finite):  # Decimal
        return float(value)
    return value


def _show(value: Any) -> str:
    if value is None or (isinstance(value, float) and value != value):
        return "null (no value)"
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, _dt.datetime):
        return value.astimezone(_dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    return repr(value) if isinstance(value, str) else str(value)
