"""What the passes share: the checking context, the located error base, scopes, JSON paths.

A *scope* says what a field name refers to: ``CONTACT`` (None) for the contact-level
fields of a rule, or a :class:`~segmentum.segments.catalog.SourceInfo` inside a ``where``
filter (the columns and properties of one row of that source; ``purchased(...)`` filters
rows of ``order_items``).

Errors of the later stages are :class:`RuleCheckError` (a ``RuleError``): they carry the
line, the column and the excerpt of the rule text, and, when the rule came in as JSON,
also ``path``, the JSON path of the node at fault (``$.rule.items[1].left``).
"""

from __future__ import annotations

import dataclasses as dc
from typing import Any

from segmentum.segments import ast as A
from segmentum.segments.catalog import Catalog, SourceInfo
from segmentum.segments.errors import RuleError
from segmentum.segments.lexer import quote_name

__all__ = [
    "CONTACT",
    "Context",
    "RuleCheckError",
    "UnknownNameError",
    "MissingDataError",
    "SegmentCycleError",
    "RuleTypeError",
    "json_paths",
    "name_span",
    "ORDER_ITEMS",
]

CONTACT = None  # the contact-level scope
ORDER_ITEMS = SourceInfo("order_items", "order_items", "ordered_at")  # purchased(...) rows


class RuleCheckError(RuleError):
    """A rule that parses but can't be evaluated here; located, with a JSON path if known."""

    code = "rule_check"

    path: str | None = None

    def to_dict(self) -> dict[str, Any]:
        data = super().to_dict()
        data["path"] = self.path
        return data


class UnknownNameError(RuleCheckError):
    """A field, source, property or segment name the workspace does not have."""

    code = "unknown_name"


class MissingDataError(RuleCheckError):
    """A name the language knows whose table is not in the workspace yet (rfm, clv, ...)."""

    code = "missing_data"
    http_status = 409


class SegmentCycleError(RuleCheckError):
    """Segments that depend on each other through in_segment(...)."""

    code = "segment_cycle"


class RuleTypeError(RuleCheckError):
    """Values of types that don't go together (text compared with a number, ...)."""

    code = "rule_type"


@dc.dataclass
class Context:
    """Everything a pass needs: the catalogue, the text (for locations), saved segments.

    ``segments`` knows the saved segments: ``names()`` and ``check(name, chain)``, which
    returns the checked rule of that segment (``chain``: the segments being checked, for
    cycles) or raises a SegmentError, which the resolve pass locates at the in_segment node.
    """

    catalog: Catalog
    text: str
    root: A.Node
    segments: Any = None
    chain: tuple[str, ...] = ()
    from_json: bool = False
    warnings: list[str] = dc.field(default_factory=list)
    dependencies: dict[str, Any] = dc.field(default_factory=dict)
    _paths: dict[int, str] | None = None

    def error(
        self,
        cls: type[RuleCheckError],
        node: A.Node,
        message: str,
        hint: str | None = None,
        *,
        span: A.Span | None = None,
    ) -> RuleCheckError:
        span = span or node.span or self.root.span or A.Span(0, len(self.text), 1, 1)
        err = cls.at(self.text, span, message, hint)
        if self.from_json:
            if self._paths is None:
                self._paths = json_paths(self.root)
            err.path = self._paths.get(id(node))
        return err  # type: ignore[return-value]


def name_span(ctx: Context, node: A.Node, name: str, after: str | None = None) -> A.Span | None:
    """Where ``name`` is written inside ``node``'s text (after its "(" and, if given, after
    the text ``after``), so an error can underline just the name."""
    span = node.span
    if span is None:
        return None
    seg = ctx.text[span.start : span.end]
    i = seg.find("(") + 1
    if after is not None:
        j = seg.find(after, i)
        i = j + len(after) if j >= 0 else i
    for cand in (name, quote_name(name)):
        k = seg.find(cand, i)
        if k >= 0:
            return A.Span(span.start + k, span.start + k + len(cand), span.line, span.column)
    return None


def json_paths(root: A.Node, base: str = "$.rule") -> dict[int, str]:
    """id(node) -> its JSON path in the JSON face (``$.rule.items[0].left``)."""
    out: dict[int, str] = {}
    stack: list[tuple[A.Node, str]] = [(root, base)]
    while stack:
        node, path = stack.pop()
        out[id(node)] = path
        for f in dc.fields(node):
            if f.name == "span":
                continue
            value = getattr(node, f.name)
            if isinstance(value, A.Node):
                stack.append((value, f"{path}.{f.name}"))
            elif isinstance(value, tuple):
                for i, item in enumerate(value):
                    if isinstance(item, A.Node):
                        stack.append((item, f"{path}.{f.name}[{i}]"))
    return out
