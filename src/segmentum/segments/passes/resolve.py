"""Pass 1, resolve: every name in the rule must exist in the workspace catalogue.

Checks, each failing with a located error and "Did you mean ...?" when a name is close:

* contact fields (``city``, ``attributes.`loyalty tier```, ``rfm.cell``, ``deal.stage``),
  and that the analytics table behind ``rfm.* / clv.* / lifestage.*`` exists (else: "run
  `segmentum rfm` first");
* sources (event types from ``events.type``, ``orders``, ``order_items``, ``deals``) and
  the field an aggregate reads (``sum(orders.total)``);
* the fields a ``where`` filter tests: columns and property keys of one row of the source
  (product attributes inside ``purchased(...)`` and ``order_items``);
* ``in_segment("name")``: a saved segment, checked in turn; a cycle is rejected with the
  cycle named (``a → b → a``).

It only reads; the compiler later asks the catalogue the same questions.
"""

from __future__ import annotations

from segmentum.segments import ast as A
from segmentum.segments.catalog import DEAL_FIELDS, SourceInfo
from segmentum.segments.errors import SegmentError
from segmentum.segments.passes.common import (
    CONTACT,
    ORDER_ITEMS,
    Context,
    MissingDataError,
    SegmentCycleError,
    UnknownNameError,
    name_span,
)

__all__ = ["resolve", "resolve_source", "resolve_field"]



def _namespaces(cat) -> tuple[str, ...]:
    """The first parts of qualified names: score namespaces (models), deal, attributes."""
    return (*cat.namespaces(), "deal", "attributes")


def resolve(tree: A.Node, ctx: Context) -> A.Node:
    """Check every name of ``tree``; return it unchanged (raises UnknownNameError & co)."""
    _walk(tree, CONTACT, ctx)
    return tree


def resolve_source(node: A.Node, name: str, ctx: Context) -> SourceInfo:
    info = ctx.catalog.source(name)
    if info is not None:
        return info
    cat = ctx.catalog
    names = cat.source_names()
    hint = cat.suggest(name, names)
    if hint is None and name.lower() in ("order", "purchase", "purchases"):
        hint = 'Did you mean "orders"?'
    if hint is None:
        if cat.contact_field((name,)) is not None:
            hint = f"{name} is a contact field, not a source of rows: compare it, e.g. {name} = ..."
        elif not cat.event_types():
            hint = "no events are loaded yet; sources are orders, order_items, deals"
        else:
            shown = ", ".join(names[:12]) + (", ..." if len(names) > 12 else "")
            hint = f"sources are: {shown}"
    raise ctx.error(
        UnknownNameError,
        node,
        f'unknown event type or source "{name}"',
        hint,
        span=name_span(ctx, node, name),
    )


def resolve_field(node: A.Field, scope: SourceInfo | None, ctx: Context):
    """The FieldInfo of a field in its scope, or a located error."""
    cat = ctx.catalog
    if scope is CONTACT:
        info = cat.contact_field(node.path)
        if info is not None:
            ns = node.path[0] if len(node.path) == 2 else None
            if ns is not None and cat.is_model(ns) and not cat.analytics_available(ns):
                cmd = cat.model_command(ns)
                raise ctx.error(
                    MissingDataError,
                    node,
                    f"{node.name} needs the {ns} table, which this workspace does not have "
                    f"yet: run `{cmd}` first",
                    "compute it as of the time you evaluate segments at (--as-of)",
                )
            return info
        raise _unknown_contact_field(node, ctx)
    info = cat.row_field(scope, node.path)
    if info is not None:
        return info
    raise _unknown_row_field(node, scope, ctx)


def _unknown_contact_field(node: A.Field, ctx: Context) -> UnknownNameError:
    cat = ctx.catalog
    path = node.path
    name = node.name
    if len(path) == 2 and path[0] in _namespaces(cat):
        ns, col = path
        choices = cat.contact_field_names(ns)
        short = [c.split(".", 1)[1] if "." in c else c for c in choices]
        hint = cat.suggest(col, short)
        if hint is not None:
            hint = hint.replace('"', f'"{ns}.', 1)
        elif ns == "deal":
            hint = f"deal fields are: {', '.join('deal.' + c for c in DEAL_FIELDS)}"
        else:
            hint = f"{ns} fields are: {', '.join(choices)}"
        return ctx.error(UnknownNameError, node, f'unknown field "{name}"', hint)
    names = cat.contact_field_names()
    hint = cat.suggest(name, names)
    if hint is None and len(path) == 1 and cat.source(path[0]) is not None:
        hint = (
            f"{path[0]} is a source of rows, not a field: write exists({path[0]}) "
            f"or count({path[0]}) > 0"
        )
    if hint is None and len(path) >= 2 and path[0] not in _namespaces(cat):
        hint = cat.suggest(path[0], _namespaces(cat))
        if hint is None:
            *first, last = (f"{ns}." for ns in _namespaces(cat))
            hint = f"qualified names start with {', '.join(first)} or {last}"
    if hint is None:
        hint = "contact fields are the columns of contacts (custom attributes too), age, " \
            "rfm.*, clv.*, lifestage.* and deal.*"
    return ctx.error(UnknownNameError, node, f'unknown field "{name}"', hint)


def _unknown_row_field(node: A.Field, scope: SourceInfo, ctx: Context) -> UnknownNameError:
    cat = ctx.catalog
    names = cat.row_field_names(scope)
    what = "orders" if scope.kind == "orders" else scope.name
    if scope is ORDER_ITEMS or scope.kind == "order_items":
        what = "order items and their products"
    hint = cat.suggest(node.name, names)
    if hint is None and cat.contact_field(node.path) is not None:
        hint = (
            f"{node.name} is a contact field; a where filter tests the columns of one "
            f"{scope.name} row: move it out of the parentheses"
        )
    if hint is None:
        shown = ", ".join(names[:15]) + (", ..." if len(names) > 15 else "")
        hint = f"a filter on {what} can test: {shown}" if names else None
    kind = "property" if scope.kind == "event" else "column"
    return ctx.error(
        UnknownNameError, node, f'{what} rows have no {kind} "{node.name}"', hint
    )


def _walk(node: A.Node, scope: SourceInfo | None, ctx: Context) -> None:
    if isinstance(node, A.Field):
        resolve_field(node, scope, ctx)
        return
    if isinstance(node, (A.Aggregate, A.Occurrence, A.Exists)):
        source = resolve_source(node, node.source, ctx)
        if isinstance(node, A.Aggregate) and node.field is not None:
            if ctx.catalog.row_field(source, (node.field,)) is None:
                names = ctx.catalog.row_field_names(source)
                hint = ctx.catalog.suggest(node.field, names)
                raise ctx.error(
                    UnknownNameError,
                    node,
                    f'{node.source} has no field "{node.field}" to {node.func}',
                    hint or (f"{node.source} fields are: {', '.join(names)}" if names else None),
                    span=name_span(ctx, node, node.field, after="."),
                )
        if node.where is not None:
            _walk(node.where, source, ctx)
        return
    if isinstance(node, A.Purchased):
        if node.where is not None:
            _walk(node.where, ORDER_ITEMS, ctx)
        return
    if isinstance(node, A.InSegment):
        _segment(node, ctx)
        return
    for child in A.children(node):
        _walk(child, scope, ctx)


def _segment(node: A.InSegment, ctx: Context) -> None:
    name = node.name
    if name in ctx.chain:
        cycle = " → ".join((*ctx.chain[ctx.chain.index(name) :], name))
        raise ctx.error(
            SegmentCycleError,
            node,
            f"segments depend on each other in a cycle: {cycle}",
            "a segment can't include itself; remove one of the in_segment(...) conditions",
        )
    names = ctx.segments.names() if ctx.segments is not None else []
    if name not in names:
        hint = ctx.catalog.suggest(name, names) or (
            f"saved segments are: {', '.join(sorted(names)[:15])}"
            if names
            else "no segments are saved yet: save one with `segmentum segment create`"
        )
        raise ctx.error(UnknownNameError, node, f'unknown segment "{name}"', hint)
    try:
        ctx.dependencies[name] = ctx.segments.check(name, (*ctx.chain,))
    except SegmentCycleError as exc:
        raise ctx.error(SegmentCycleError, node, exc.message, exc.hint) from None
    except SegmentError as exc:
        raise ctx.error(
            UnknownNameError,
            node,
            f'segment "{name}" can\'t be evaluated: {exc.message}',
            exc.hint,
        ) from None
