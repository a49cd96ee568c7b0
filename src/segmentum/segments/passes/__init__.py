"""The passes between the parser and the compiler, run in order from a plain tuple.

    resolve    every name exists in the workspace catalogue (did-you-mean otherwise)
    typecheck  compared / computed values go together
    simplify   an equivalent smaller tree for the compiler (explain keeps the original)

:func:`check` runs them and returns a :class:`CheckedRule`; every error is a located
:class:`RuleCheckError` (line, column, excerpt; plus the JSON path for JSON rules).
"""

from __future__ import annotations

import dataclasses as dc
from segmentum.segments import ast as A
from segmentum.segments.passes.common import (
    CONTACT,
    ORDER_ITEMS,
    Context,
    MissingDataError,
    RuleCheckError,
    RuleTypeError,
    SegmentCycleError,
    UnknownNameError,
    json_paths,
)
from segmentum.segments.passes.resolve import resolve
from segmentum.segments.passes.simplify import simplify
from segmentum.segments.passes.typecheck import type_of, typecheck, unify

__all__ = [
    "PASSES",
    "check",
    "CheckedRule",
    "Context",
    "CONTACT",
    "ORDER_ITEMS",
    "RuleCheckError",
    "UnknownNameError",
    "MissingDataError",
    "SegmentCycleError",
    "RuleTypeError",
    "resolve",
    "typecheck",
    "simplify",
    "type_of",
    "unify",
    "json_paths",
]

# checking passes, in order; each takes (tree, ctx) and returns the tree
PASSES = (resolve, typecheck)


@dc.dataclass(frozen=True)
class CheckedRule:
    """A rule that passed every check, ready to compile.

    ``tree`` is the rule as written (spans into ``text``), ``simplified`` what the compiler
    evaluates, ``dependencies`` the checked rules of the segments it names (in_segment),
    ``context`` the pass context (the compiler types constants through it).
    """

    name: str | None
    text: str
    tree: A.Node
    simplified: A.Node
    dependencies: dict[str, CheckedRule]
    context: Context = dc.field(repr=False, compare=False)

    @property
    def warnings(self) -> list[str]:
        return self.context.warnings

    def all_dependencies(self) -> dict[str, CheckedRule]:
        """Every segment this rule depends on, directly or not, dependencies first."""
        out: dict[str, CheckedRule] = {}

        def visit(rule: CheckedRule) -> None:
            for name, dep in rule.dependencies.items():
                if name not in out:
                    visit(dep)
                    out[name] = dep

        visit(self)
        return out


def check(tree: A.Node, ctx: Context, name: str | None = None) -> CheckedRule:
    """Run :data:`PASSES` over ``tree`` and simplify it."""
    for step in PASSES:
        tree = step(tree, ctx)
    return CheckedRule(
        name=name,
        text=ctx.text,
        tree=tree,
        simplified=simplify(tree),
        dependencies=dict(ctx.dependencies),
        context=ctx,
    )
