"""Syntax tree ↔ JSON: the face of a rule for the API and the no-code builder.

A document is ``{"version": 1, "rule": <condition>}``. A node is an object whose ``"type"``
is the node's kind and whose other keys are the node's fields, named as in ``ast``::

    {"type": "and", "items": [<condition>, ...]}                       two or more
    {"type": "or",  "items": [<condition>, ...]}
    {"type": "not", "operand": <condition>}
    {"type": "compare", "left": <value>, "op": ">=", "right": <value>}
    {"type": "in", "operand": <value>, "values": ["London", "Paris"], "negated": true?}
    {"type": "between", "operand": <value>, "low": <value>, "high": <value>, "negated"?}
    {"type": "is_null", "operand": <value>, "negated"?}
    {"type": "within", "operand": <value>, "window": <window>, "negated"?}
    {"type": "exists", "source": "email_open", "where"?: <filter>, "window"?, "negated"?}
    {"type": "purchased", "where"?: <filter>, "window"?: <window>}
    {"type": "in_segment", "name": "apple-fans"}
    {"type": "field", "path": ["rfm", "cell"]}                          also a condition
    "text" | 12 | 0.5 | true | false | null                            a literal (plain JSON)
    {"type": "arith", "op": "+", "left": <value>, "right": <value>}
    {"type": "aggregate", "func": "sum", "source": "orders", "field": "total", "where"?, "window"?}
    {"type": "occurrence", "which": "last", "source": "orders", "where"?, "window"?}
    {"type": "days_since", "operand": <occurrence or field>}
    {"type": "trend", "aggregate": <aggregate>, "period": {"amount": 90, "unit": "days"},
     "method"?: "difference" | "ratio"}
    windows: {"type": "last", "amount": 90, "unit": "days"}
             {"type": "ago", "far": 365, "near": 90, "unit": "days"}
             {"type": "since", "date": "2024-01-01"}   {"type": "before", "date": "..."}
             {"type": "date_range", "start": "2024-01-01", "end": "2024-03-31"}

Keys marked ``?`` are optional and left out when they hold their default (no filter, no
window, not negated, method "difference"). ``{"type": "literal", "value": x}`` is also
read, and written as plain ``x``. The JSON Schema is ``segment.schema.json`` (see
``json_schema()``); ``from_json`` checks more than it can (no aggregate inside a filter,
non-empty windows) and reports every problem with a JSON path: ``$.rule.items[2].window``.
"""

from __future__ import annotations

import dataclasses as dc
import json
from collections.abc import Mapping
from functools import cache
from importlib import resources
from typing import Any

from segmentum.segments import ast as A
from segmentum.segments.errors import SegmentJSONError, suggest

__all__ = ["VERSION", "to_json", "from_json", "node_to_json", "node_from_json", "json_schema"]

VERSION = 1
MAX_DEPTH = 120

# field kinds: how each field of each node is written
_COND, _VALUE, _WINDOW, _ITEMS, _LITERALS, _STR, _INT, _BOOL, _PATH, _AGG, _DUR = (
    "condition",
    "value",
    "window",
    "items",
    "literals",
    "string",
    "integer",
    "boolean",
    "path",
    "aggregate",
    "duration",
)

_FIELDS: dict[type, dict[str, Any]] = {
    A.And: {"items": _ITEMS},
    A.Or: {"items": _ITEMS},
    A.Not: {"operand": _COND},
    A.Compare: {"left": _VALUE, "op": A.COMPARE_OPS, "right": _VALUE},
    A.In: {"operand": _VALUE, "values": _LITERALS, "negated": _BOOL},
    A.Between: {"operand": _VALUE, "low": _VALUE, "high": _VALUE, "negated": _BOOL},
    A.IsNull: {"operand": _VALUE, "negated": _BOOL},
    A.Within: {"operand": _VALUE, "window": _WINDOW, "negated": _BOOL},
    A.Exists: {"source": _STR, "where": _COND, "window": _WINDOW, "negated": _BOOL},
    A.Purchased: {"where": _COND, "window": _WINDOW},
    A.InSegment: {"name": _STR},
    A.Field: {"path": _PATH},
    A.Arith: {"op": A.ARITH_OPS, "left": _VALUE, "right": _VALUE},
    A.Aggregate: {
        "func": A.AGGREGATE_FUNCS,
        "source": _STR,
        "field": _STR,
        "where": _COND,
        "window": _WINDOW,
    },
    A.Occurrence: {"which": A.OCCURRENCES, "source": _STR, "where": _COND, "window": _WINDOW},
    A.DaysSince: {"operand": _VALUE},
    A.Trend: {"aggregate": _AGG, "period": _DUR, "method": A.TREND_METHODS},
    A.Last: {"amount": _INT, "unit": A.UNITS},
    A.Ago: {"far": _INT, "near": _INT, "unit": A.UNITS},
    A.Since: {"date": _STR},
    A.Before: {"date": _STR},
    A.DateRange: {"start": _STR, "end": _STR},
    A.Duration: {"amount": _INT, "unit": A.UNITS},
}
_BY_KIND = {cls.kind: cls for cls in _FIELDS if cls is not A.Duration}
_WINDOW_KINDS = tuple(cls.kind for cls in A.WINDOW_TYPES)
_NODE_KINDS = tuple(k for k in _BY_KIND if k not in _WINDOW_KINDS) + ("literal",)


def _defaults(cls: type) -> dict[str, Any]:
    out = {}
    for f in dc.fields(cls):
        if f.name != "span" and f.default is not dc.MISSING:
            out[f.name] = f.default
    return out


_DEFAULTS = {cls: _defaults(cls) for cls in _FIELDS}


# -- AST → JSON --------------------------------------------------------------------------------


def to_json(node: A.Node) -> dict[str, Any]:
    """The versioned JSON document of a rule: ``{"version": 1, "rule": {...}}``."""
    return {"version": VERSION, "rule": node_to_json(node)}


def node_to_json(node: A.Node) -> Any:
    """The JSON of one node (no envelope)."""
    if isinstance(node, A.Literal):
        return node.value
    cls = type(node)
    spec = _FIELDS[cls]
    out: dict[str, Any] = {} if cls is A.Duration else {"type": cls.kind}
    for name, kind in spec.items():
        value = getattr(node, name)
        if (
            name in _DEFAULTS[cls]
            and value == _DEFAULTS[cls][name]
            and type(value) is type(_DEFAULTS[cls][name])
        ):
            continue
        if kind == _ITEMS:
            out[name] = [node_to_json(c) for c in value]
        elif kind == _LITERALS:
            out[name] = [v.value for v in value]
        elif kind == _PATH:
            out[name] = list(value)
        elif isinstance(value, A.Node):
            out[name] = node_to_json(value)
        else:
            out[name] = value
    return out


# -- JSON → AST --------------------------------------------------------------------------------


def from_json(document: Mapping[str, Any] | str, path: str = "$") -> A.Node:
    """The rule of a JSON document (a dict, or its JSON text).

    Raises SegmentJSONError with the JSON path of the first problem (paths start with
    ``path``, "$" by default).
    """
    if isinstance(document, (str, bytes)):
        try:
            document = json.loads(document)
        except ValueError as exc:
            raise SegmentJSONError(f"not valid JSON: {exc}", path=path) from None
        except RecursionError:
            raise SegmentJSONError("the JSON is nested too deeply", path=path) from None
    if not isinstance(document, Mapping):
        raise SegmentJSONError(
            f"a segment document is an object, not {_what(document)}",
            path=path,
            hint='write {"version": 1, "rule": {...}}',
        )
    _no_unknown_keys(document, ("version", "rule"), path)
    if "version" not in document:
        raise SegmentJSONError('missing key "version"', path=path, hint='add "version": 1')
    version = document["version"]
    if version != VERSION or isinstance(version, bool):
        raise SegmentJSONError(
            f"unsupported version {version!r}: this Segmentum reads version {VERSION}",
            path=f"{path}.version",
        )
    if "rule" not in document:
        raise SegmentJSONError('missing key "rule"', path=path)
    return node_from_json(document["rule"], f"{path}.rule")


def node_from_json(data: Any, path: str = "$", *, expect: str = _COND) -> A.Node:
    """One node from its JSON; ``expect`` is "condition", "value" or "window"."""
    return _Reader().read(data, path, expect, 0)


class _Reader:
    def read(self, data: Any, path: str, expect: str, depth: int) -> A.Node:
        if depth > MAX_DEPTH:
            raise SegmentJSONError(
                f"the rule is nested too deeply (more than {MAX_DEPTH} levels)", path=path
            )
        if not isinstance(data, Mapping):
            if expect != _WINDOW and (data is None or isinstance(data, (str, int, float))):
                return self.literal(data, path, expect)
            wanted = {
                "condition": "a condition object",
                "value": "a value",
                "window": "a window object",
            }
            raise SegmentJSONError(
                f"expected {wanted.get(expect, expect)}, found {_what(data)}", path=path
            )
        kind = data.get("type")
        if kind is None:
            raise SegmentJSONError(
                'missing key "type"',
                path=path,
                hint=f"one of: {', '.join(_WINDOW_KINDS if expect == _WINDOW else _NODE_KINDS)}",
            )
        choices = _WINDOW_KINDS if expect == _WINDOW else _NODE_KINDS
        if kind not in choices:
            raise SegmentJSONError(
                f"unknown {'window ' if expect == _WINDOW else ''}type {kind!r}",
                path=f"{path}.type",
                hint=_type_hint(kind, choices, expect),
            )
        if kind == "literal":
            _no_unknown_keys(data, ("type", "value"), path)
            if "value" not in data:
                raise SegmentJSONError('missing key "value"', path=path)
            return self.literal(data["value"], f"{path}.value", expect)
        cls = _BY_KIND[kind]
        return self.node(cls, data, path, depth, with_type=True)

    def node(self, cls: type, data: Mapping, path: str, depth: int, with_type: bool) -> A.Node:
        spec = _FIELDS[cls]
        allowed = (("type",) if with_type else ()) + tuple(spec)
        _no_unknown_keys(data, allowed, path)
        kwargs: dict[str, Any] = {}
        for name, kind in spec.items():
            sub = f"{path}.{name}"
            if name not in data:
                if name in _DEFAULTS[cls]:
                    continue
                raise SegmentJSONError(f'missing key "{name}"', path=path)
            value = data[name]
            if value is None and name in _DEFAULTS[cls] and _DEFAULTS[cls][name] is None:
                continue
            kwargs[name] = self.field(kind, value, sub, depth)
        try:
            return cls(**kwargs)
        except A.InvalidNode as exc:
            raise SegmentJSONError(exc.message, path=path, hint=exc.hint) from None

    def field(self, kind: Any, value: Any, path: str, depth: int) -> Any:
        if isinstance(kind, tuple):  # one of a set of words
            if not isinstance(value, str) or value not in kind:
                raise SegmentJSONError(
                    f"expected one of {', '.join(repr(k) for k in kind)}, found {value!r}",
                    path=path,
                    hint=suggest(value, kind) if isinstance(value, str) else None,
                )
            return value
        if kind in (_COND, _VALUE, _WINDOW):
            node = self.read(value, path, kind, depth + 1)
            if kind == _COND and not A.is_condition(node):
                raise SegmentJSONError(
                    f"expected a condition, found {A.describe(node)}",
                    path=path,
                    hint='compare a value with something, e.g. {"type": "compare", ...}',
                )
            if kind == _VALUE and not A.is_value(node):
                raise SegmentJSONError(
                    f"expected a value, found {A.describe(node)}, a condition", path=path
                )
            return node
        if kind == _ITEMS:
            items = self.array(value, path)
            return tuple(
                self.field(_COND, item, f"{path}[{i}]", depth) for i, item in enumerate(items)
            )
        if kind == _LITERALS:
            items = self.array(value, path)
            return tuple(self.literal(item, f"{path}[{i}]", _VALUE) for i, item in enumerate(items))
        if kind == _PATH:
            items = self.array(value, path)
            for i, item in enumerate(items):
                if not isinstance(item, str) or not item:
                    raise SegmentJSONError(
                        f"expected a non-empty string, found {_what(item)}", path=f"{path}[{i}]"
                    )
            return tuple(items)
        if kind == _STR:
            if not isinstance(value, str):
                raise SegmentJSONError(f"expected a string, found {_what(value)}", path=path)
            return value
        if kind == _INT:
            if isinstance(value, bool) or not isinstance(value, int):
                raise SegmentJSONError(f"expected a whole number, found {_what(value)}", path=path)
            return value
        if kind == _BOOL:
            if not isinstance(value, bool):
                raise SegmentJSONError(f"expected true or false, found {_what(value)}", path=path)
            return value
        if kind == _AGG:
            node = self.read(value, path, _VALUE, depth + 1)
            if not isinstance(node, A.Aggregate):
                raise SegmentJSONError("expected an aggregate", path=path)
            return node
        if kind == _DUR:
            if not isinstance(value, Mapping):
                raise SegmentJSONError(
                    f"expected a duration object, found {_what(value)}",
                    path=path,
                    hint='e.g. {"amount": 90, "unit": "days"}',
                )
            return self.node(A.Duration, value, path, depth + 1, with_type=False)
        raise AssertionError(kind)  # pragma: no cover

    @staticmethod
    def array(value: Any, path: str) -> list:
        if not isinstance(value, list):
            raise SegmentJSONError(f"expected an array, found {_what(value)}", path=path)
        return value

    @staticmethod
    def literal(value: Any, path: str, expect: str) -> A.Literal:
        if not (value is None or isinstance(value, (str, int, float))):
            raise SegmentJSONError(
                f"expected a string, number, boolean or null, found {_what(value)}", path=path
            )
        try:
            node = A.Literal(value)
        except A.InvalidNode as exc:
            raise SegmentJSONError(exc.message, path=path) from None
        if expect == _COND and not isinstance(value, bool):
            raise SegmentJSONError(
                f"expected a condition, found {_what(value)}",
                path=path,
                hint="only true and false are conditions on their own",
            )
        return node


# text function names, as JSON: {"type": "aggregate", "func": "count"}, ...
_FUNCTION_TYPES = {
    **{f: f'{{"type": "aggregate", "func": "{f}"}}' for f in A.AGGREGATE_FUNCS},
    **{f: f'{{"type": "occurrence", "which": "{f}"}}' for f in A.OCCURRENCES},
    "no": '{"type": "exists", "negated": true}',
}


def _type_hint(kind: Any, choices: tuple[str, ...], expect: str) -> str:
    if isinstance(kind, str):
        if expect != _WINDOW:
            close = suggest(kind, (*choices, *_FUNCTION_TYPES))
            for name, written in _FUNCTION_TYPES.items():
                if kind.lower() == name or close == f'Did you mean "{name}"?':
                    return f"write {name} as {written}"
        close = suggest(kind, choices)
        if close:
            return close
    return f"one of: {', '.join(choices)}"


def _no_unknown_keys(data: Mapping, allowed: tuple[str, ...], path: str) -> None:
    for key in data:
        if key not in allowed:
            hint = suggest(key, allowed) if isinstance(key, str) else None
            raise SegmentJSONError(
                f"unknown key {key!r}",
                path=path,
                hint=hint or f"keys here are: {', '.join(allowed)}",
            )


def _what(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return f"the number {value!r}"
    if isinstance(value, str):
        return f"the string {value!r}"
    if isinstance(value, (list, tuple)):
        return "an array"
    if isinstance(value, Mapping):
        return "an object"
    return type(value).__name__


@cache
def _schema_text() -> str:
    return resources.files("segmentum.segments").joinpath("segment.schema.json").read_text("utf-8")


def json_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of a segment JSON document."""
    return json.loads(_schema_text())
