"""The segment builder's model, and its conversions to and from the rule's JSON face.

The builder shows a rule as nested groups of conditions. A **group** joins its items with
AND or OR and may be negated (NOT); items are conditions or groups, nested as deep as the
rule is. A **condition** is one of:

    field      a profile field, a model's field (rfm.*, clv.*, persona.*, lifestage.*) or
               the current deal (deal.*): ``city in ("London", "Paris")``, ``rfm.r >= 2``
    activity   events or rows of orders / order_items / deals, with property filters and
               a window: ``count(email_open where device_os = "iOS", last 90 days) >= 1``,
               ``sum(orders.total, last 365 days) > 400``, ``no(app_session)``,
               ``days_since(last orders) > 180``
    purchased  bought products by category / brand / SKU / any product field, in a window
    segment    in (or not in) another saved segment
    text       any condition written in the language (a trend, arithmetic, ...)

Everything is plain data: a group is ``{"kind": "group", "op": "and"|"or", "not": bool,
"items": [...]}``, a condition ``{"kind": ..., ...}`` with string values as a form holds
them. :func:`to_rule` makes the JSON face of the rule (``{"version": 1, "rule": ...}``) and
a map from JSON paths to builder node ids, so an error located by a JSON path is shown on
its condition; :func:`from_rule` turns a JSON face back into groups and conditions (a part
the builder has no control for becomes a ``text`` condition, never lost). :func:`from_form`
and :func:`form_fields` read and write the HTML form (field names ``{id}:{attr}``, ids are
paths such as ``r.1.0``); :func:`apply` carries out a button's action.
"""

from __future__ import annotations

import copy
import math
import re
from dataclasses import dataclass
from typing import Any

from segmentum.errors import UsageError

__all__ = ["KINDS", "MEASURES", "WINDOWS", "UNITS", "ops_for", "filter_ops_for", "new_node",
           "to_rule", "from_rule", "from_form", "apply", "BuilderError", "empty_root"]

KINDS = {"field": "Profile or score field", "activity": "Activity (events, orders, deals)",
         "purchased": "Purchased products", "segment": "Another segment", "text": "Rule text"}
MEASURES = {"count": "number of", "exists": "has at least one", "no": "has none",
            "sum": "sum of", "avg": "average of", "min": "smallest", "max": "largest",
            "days_since_last": "days since the last", "days_since_first": "days since the first"}
WINDOWS = {"all": "at any time", "last": "in the last", "ago": "between … ago",
           "since": "since", "before": "before", "between": "between dates"}
UNITS = ("days", "weeks", "months", "years", "hours")
_COMPARE = ("=", "!=", "<", "<=", ">", ">=")
_STRING_OPS = ("=", "!=", "in", "not in", "contains", "not contains", "starts with",
               "ends with", "is null", "is not null")
_NUMBER_OPS = ("=", "!=", "<", "<=", ">", ">=", "between", "not between", "is null", "is not null")
_BOOL_OPS = ("is true", "is not true", "is false", "is null", "is not null")
_TIME_OPS = ("within last", "not within last", "before", "on or after", "is null", "is not null")
_NUMERIC_MEASURES = ("count", "sum", "avg", "min", "max", "days_since_last", "days_since_first")
_NEEDS_FIELD = ("sum", "avg", "min", "max")
_ID = re.compile(r"r(\.\d{1,3}){0,8}")


class BuilderError(UsageError):
    """A builder value that cannot become part of a rule (a number that is not one, ...);
    ``node`` is the condition's id."""


def ops_for(type_name: str) -> tuple[str, ...]:
    """The operators the builder offers for a field of this type."""
    if type_name == "boolean":
        return _BOOL_OPS
    if type_name in ("timestamp", "date"):
        return _TIME_OPS
    if type_name == "number":
        return _NUMBER_OPS
    if type_name == "string":
        return _STRING_OPS
    return _COMPARE + ("in", "not in", "contains", "is null", "is not null")  # "any" (JSON)


def filter_ops_for(type_name: str) -> tuple[str, ...]:
    """Operators for a row filter (no windows: a filter tests one row)."""
    if type_name in ("timestamp", "date"):
        return ("before", "on or after", "is null", "is not null")
    return ops_for(type_name)


def empty_root() -> dict:
    return {"kind": "group", "op": "and", "not": False, "items": []}


def new_node(kind: str, catalog: Any = None) -> dict:
    """A fresh condition (or group) of ``kind`` with the catalogue's first choices."""
    first_field = catalog.first_profile_field() if catalog else ("email_opt_in", "boolean")
    if kind == "group":
        return empty_root()
    if kind == "field":
        name, type_name = first_field
        return {"kind": "field", "field": name, "op": ops_for(type_name)[0], "value": "", "value2": ""}
    if kind == "activity":
        source = catalog.first_source() if catalog else "orders"
        return {"kind": "activity", "measure": "count", "source": source, "field": "", "op": ">=",
                "value": "1", "filters": [], **_window_defaults()}
    if kind == "purchased":
        return {"kind": "purchased", "negated": False, "filters": [_filter("category")],
                **_window_defaults()}
    if kind == "segment":
        names = catalog.segment_names() if catalog else []
        return {"kind": "segment", "name": names[0] if names else "", "negated": False}
    if kind == "text":
        return {"kind": "text", "text": ""}
    raise UsageError(f"The builder has no condition of kind {kind!r}.")


def _window_defaults() -> dict:
    return {"w_type": "all", "w_amount": "90", "w_unit": "days", "w_far": "365", "w_near": "90",
            "w_date": "", "w_end": ""}


def _filter(field: str = "", op: str = "=", value: str = "") -> dict:
    return {"field": field, "op": op, "value": value, "value2": ""}


# -- builder -> rule ----------------------------------------------------------------------
@dataclass
class _Out:
    paths: dict[str, str]  # JSON path -> builder node id


def to_rule(root: dict, types: Any, parse_text: Any) -> tuple[dict, dict[str, str]]:
    """The JSON face of the builder's rule and the JSON path -> node id map.

    ``types(source, field)`` gives a field's type name (source ``None`` for the profile);
    ``parse_text(text)`` parses a ``text`` condition into a JSON node (raising located
    errors). An empty rule is refused with what to do.
    """
    out = _Out({})
    node = _node(root, "r", "$.rule", types, parse_text, out)
    if node is None:
        raise BuilderError("The rule is empty: add a condition.", node="r",
                           hint="Use “Add condition”, or write the rule as text.")
    return {"version": 1, "rule": node}, out.paths


def _node(n: dict, nid: str, path: str, types, parse_text, out: _Out) -> Any:
    out.paths[path] = nid
    kind = n.get("kind")
    if kind == "group":
        return _group(n, nid, path, types, parse_text, out)
    maker = {"field": _field_cond, "activity": _activity_cond, "purchased": _purchased_cond,
             "segment": _segment_cond}.get(kind)
    if kind == "text":
        text = n.get("text", "").strip()
        if not text:
            raise BuilderError("A rule-text condition is empty: write a condition or remove it.", node=nid)
        return parse_text(text, nid)
    if maker is None:
        raise BuilderError(f"Unknown kind of condition {kind!r}.", node=nid)
    return maker(n, nid, types)


def _group(n: dict, nid: str, path: str, types, parse_text, out: _Out) -> Any:
    negated = bool(n.get("not"))
    inner = f"{path}.operand" if negated else path
    items = [(i, it) for i, it in enumerate(n.get("items", []))
             if not (it.get("kind") == "group" and not it.get("items"))]
    if not items:
        return None
    if len(items) == 1:
        i, only = items[0]
        body = _node(only, f"{nid}.{i}", inner, types, parse_text, out)
    else:
        nodes = [_node(it, f"{nid}.{i}", f"{inner}.items[{k}]", types, parse_text, out)
                 for k, (i, it) in enumerate(items)]
        body = {"type": n.get("op") if n.get("op") in ("and", "or") else "and", "items": nodes}
    return {"type": "not", "operand": body} if negated else body


def _literal(raw: str, type_name: str, nid: str, what: str = "value") -> Any:
    text = raw.strip()
    if type_name == "number":
        try:
            number = float(text.replace(",", "")) if text else math.nan
        except ValueError:
            number = math.nan
        if math.isnan(number) or math.isinf(number):
            raise BuilderError(f"{text or 'An empty ' + what!r} is not a number: write one such as 3 or 49.90.",
                               node=nid)
        return int(number) if number.is_integer() and "." not in text and "e" not in text.lower() else number
    if type_name == "boolean":
        return text.lower() in ("true", "yes", "1")
    if type_name in ("timestamp", "date"):
        if not text:
            raise BuilderError(f"Pick a date for the {what}.", node=nid)
        return text
    if type_name == "any":  # an event property (JSON): what the text looks like
        if text in ("true", "false"):
            return text == "true"
        if re.fullmatch(r"-?\d+", text):
            return int(text)
        return float(text) if re.fullmatch(r"-?\d+\.\d*(e-?\d+)?", text) else raw
    return raw


def _values(raw: str, type_name: str, nid: str) -> list:
    parts = [p.strip() for p in re.split(r"[,\n]", raw) if p.strip()]
    if not parts:
        raise BuilderError("List at least one value, separated by commas.", node=nid)
    return [_literal(p, type_name, nid) for p in parts]


def _test(operand: dict, op: str, value: str, value2: str, type_name: str, nid: str) -> dict:
    """A condition on one value (a field, or a row's column in a filter)."""
    if op in ("is null", "is not null"):
        return {"type": "is_null", "operand": operand, "negated": op == "is not null"}
    if op == "is true":
        return operand if operand["type"] == "field" else {"type": "compare", "left": operand, "op": "=", "right": True}
    if op == "is not true":
        return {"type": "not", "operand": _test(operand, "is true", value, value2, type_name, nid)}
    if op == "is false":
        return {"type": "compare", "left": operand, "op": "=", "right": False}
    if op in ("in", "not in"):
        return {"type": "in", "operand": operand, "values": _values(value, type_name, nid),
                "negated": op == "not in"}
    if op in ("between", "not between"):
        return {"type": "between", "operand": operand, "low": _literal(value, type_name, nid, "low end"),
                "high": _literal(value2, type_name, nid, "high end"), "negated": op == "not between"}
    if op in ("within last", "not within last"):
        amount = _amount(value, nid)
        return {"type": "within", "operand": operand, "negated": op == "not within last",
                "window": {"type": "last", "amount": amount, "unit": value2 if value2 in UNITS else "days"}}
    if op == "before":
        return {"type": "compare", "left": operand, "op": "<", "right": _literal(value, "date", nid)}
    if op == "on or after":
        return {"type": "compare", "left": operand, "op": ">=", "right": _literal(value, "date", nid)}
    if type_name in ("string", "any") and op in _COMPARE + ("contains", "not contains", "starts with",
                                                            "ends with") and not value.strip():
        raise BuilderError("Type or pick a value to test against.", node=nid,
                           hint="To find a missing value, use the test “is null”.")
    if op in ("contains", "not contains", "starts with", "ends with"):
        return {"type": "compare", "left": operand, "op": op, "right": value}
    if op in _COMPARE:
        return {"type": "compare", "left": operand, "op": op, "right": _literal(value, type_name, nid)}
    raise BuilderError(f"Unknown operator {op!r}.", node=nid)


def _amount(raw: str, nid: str, least: int = 1) -> int:
    text = raw.strip()
    if not text.isdigit() or int(text) < least:
        raise BuilderError(f"{text or 'An empty amount'!r} is not a whole number of days, weeks, …: write one such as 90.",
                           node=nid)
    return int(text)


def _field_path(name: str) -> dict:
    return {"type": "field", "path": name.split(".")}


def _field_cond(n: dict, nid: str, types) -> dict:
    name = n.get("field", "")
    if not name:
        raise BuilderError("Pick a field.", node=nid)
    return _test(_field_path(name), n.get("op", "="), n.get("value", ""), n.get("value2", ""),
                 types(None, name), nid)


def _where(filters: list[dict], source: str | None, nid: str, types) -> dict | None:
    tests = []
    for f in filters:
        if not f.get("field"):
            continue
        tests.append(_test({"type": "field", "path": [f["field"]]}, f.get("op", "="),
                           f.get("value", ""), f.get("value2", ""), types(source, f["field"]), nid))
    if not tests:
        return None
    return tests[0] if len(tests) == 1 else {"type": "and", "items": tests}


def _window(n: dict, nid: str) -> dict | None:
    kind = n.get("w_type", "all")
    unit = n.get("w_unit") if n.get("w_unit") in UNITS else "days"
    if kind == "last":
        return {"type": "last", "amount": _amount(n.get("w_amount", ""), nid), "unit": unit}
    if kind == "ago":
        far, near = _amount(n.get("w_far", ""), nid, 0), _amount(n.get("w_near", ""), nid, 0)
        if far == near:
            raise BuilderError("The two ends of “between … ago” must differ.", node=nid)
        return {"type": "ago", "far": max(far, near), "near": min(far, near), "unit": unit}
    if kind in ("since", "before"):
        return {"type": kind, "date": _literal(n.get("w_date", ""), "date", nid, "window's date")}
    if kind == "between":
        return {"type": "date_range", "start": _literal(n.get("w_date", ""), "date", nid, "start date"),
                "end": _literal(n.get("w_end", ""), "date", nid, "end date")}
    return None


def _rows(source: str, filters: list[dict], n: dict, nid: str, types) -> dict:
    rows: dict[str, Any] = {}
    where = _where(filters, source, nid, types)
    window = _window(n, nid)
    if where is not None:
        rows["where"] = where
    if window is not None:
        rows["window"] = window
    return rows


def _activity_cond(n: dict, nid: str, types) -> dict:
    source, measure = n.get("source", ""), n.get("measure", "count")
    if not source:
        raise BuilderError("Pick what to count: an event type, orders, order lines or deals.", node=nid)
    rows = _rows(source, n.get("filters", []), n, nid, types)
    if measure in ("exists", "no"):
        return {"type": "exists", "source": source, **rows, "negated": measure == "no"}
    if measure in ("days_since_last", "days_since_first"):
        which = measure.rsplit("_", 1)[1]
        left = {"type": "days_since", "operand": {"type": "occurrence", "which": which, "source": source, **rows}}
    elif measure in _NEEDS_FIELD:
        if not n.get("field"):
            raise BuilderError(f"Pick the field to take the {MEASURES[measure].split()[0]} of.", node=nid)
        left = {"type": "aggregate", "func": measure, "source": source, "field": n["field"], **rows}
    elif measure == "count":
        left = {"type": "aggregate", "func": "count", "source": source, **rows}
    else:
        raise BuilderError(f"Unknown measure {measure!r}.", node=nid)
    op = n.get("op", ">=")
    if op not in _COMPARE:
        raise BuilderError(f"Compare with =, !=, <, <=, > or >=, not {op!r}.", node=nid)
    return {"type": "compare", "left": left, "op": op, "right": _literal(n.get("value", ""), "number", nid)}


def _purchased_cond(n: dict, nid: str, types) -> dict:
    node = {"type": "purchased", **_rows("order_items", n.get("filters", []), n, nid, types)}
    return {"type": "not", "operand": node} if n.get("negated") else node


def _segment_cond(n: dict, nid: str, types) -> dict:
    if not n.get("name"):
        raise BuilderError("Pick a saved segment (save one first if there is none).", node=nid)
    node = {"type": "in_segment", "name": n["name"]}
    return {"type": "not", "operand": node} if n.get("negated") else node


# -- rule -> builder ----------------------------------------------------------------------
def from_rule(doc: dict, text_of: Any) -> dict:
    """A builder tree (a root group) for a rule's JSON face; ``text_of(node)`` gives the
    rule text of a JSON node the builder has no control for."""
    node = doc["rule"] if "version" in doc else doc
    root = _to_builder(node, text_of)
    if root["kind"] != "group":
        root = {**empty_root(), "items": [root]}
    return root


def _to_builder(node: Any, text_of) -> dict:
    t = node.get("type") if isinstance(node, dict) else None
    if t in ("and", "or"):
        return {"kind": "group", "op": t, "not": False, "items": [_to_builder(x, text_of) for x in node["items"]]}
    if t == "not":
        inner = node["operand"]
        it = inner.get("type") if isinstance(inner, dict) else None
        if it in ("and", "or"):
            return {**_to_builder(inner, text_of), "not": True}
        if it in ("purchased", "in_segment"):
            return {**_to_builder(inner, text_of), "negated": True}
        if it == "field":
            return {"kind": "field", "field": ".".join(inner["path"]), "op": "is not true",
                    "value": "", "value2": ""}
        return {"kind": "group", "op": "and", "not": True, "items": [_to_builder(inner, text_of)]}
    found = _condition(node) if isinstance(node, dict) else None
    return found if found is not None else {"kind": "text", "text": text_of(node)}


def _condition(node: dict) -> dict | None:
    t = node["type"]
    if t == "in_segment":
        return {"kind": "segment", "name": node["name"], "negated": False}
    if t == "purchased":
        filters = _filters(node.get("where"))
        return None if filters is None else {"kind": "purchased", "negated": False, "filters": filters,
                                             **_window_fields(node.get("window"))}
    if t == "exists":
        filters = _filters(node.get("where"))
        if filters is None:
            return None
        return {"kind": "activity", "measure": "no" if node.get("negated") else "exists",
                "source": node["source"], "field": "", "op": ">=", "value": "1", "filters": filters,
                **_window_fields(node.get("window"))}
    if t == "compare" and isinstance(node["left"], dict) and _is_literal(node["right"]):
        left = node["left"]
        if left.get("type") in ("aggregate", "days_since"):
            return _activity(left, node["op"], node["right"])
    test = _field_test(node)
    if test is not None and test[0].get("type") == "field":
        operand, op, value, value2 = test
        return {"kind": "field", "field": ".".join(operand["path"]), "op": op, "value": value, "value2": value2}
    return None


def _is_literal(v: Any) -> bool:
    return v is None or isinstance(v, str | int | float | bool)


def _text(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float) and v.is_integer():
        return repr(v)
    return "" if v is None else str(v)


def _field_test(node: dict) -> tuple[dict, str, str, str] | None:
    """(operand, op, value, value2) when ``node`` tests one field against constants."""
    t = node.get("type")
    if t == "field":
        return node, "is true", "", ""
    operand = node.get("operand") if t != "compare" else node.get("left")
    if not isinstance(operand, dict) or operand.get("type") != "field":
        return None
    if t == "compare" and _is_literal(node["right"]):
        op, right = node["op"], node["right"]
        if right is False and op == "=":
            return operand, "is false", "", ""
        if right is True and op == "=":
            return operand, "is true", "", ""
        if op == "<" and isinstance(right, str) and _looks_like_date(right):
            return operand, "before", right, ""
        if op == ">=" and isinstance(right, str) and _looks_like_date(right):
            return operand, "on or after", right, ""
        if op in _COMPARE or op in ("contains", "not contains", "starts with", "ends with"):
            return operand, op, _text(right), ""
        return None
    if t == "in":
        return operand, "not in" if node.get("negated") else "in", ", ".join(_text(v) for v in node["values"]), ""
    if t == "between" and _is_literal(node["low"]) and _is_literal(node["high"]):
        return (operand, "not between" if node.get("negated") else "between", _text(node["low"]),
                _text(node["high"]))
    if t == "is_null":
        return operand, "is not null" if node.get("negated") else "is null", "", ""
    if t == "within" and node["window"]["type"] == "last":
        w = node["window"]
        return operand, "not within last" if node.get("negated") else "within last", str(w["amount"]), w["unit"]
    return None


def _looks_like_date(s: str) -> bool:
    return bool(re.fullmatch(r"\d{4}-\d{2}-\d{2}([T ].*)?", s))


def _filters(where: Any) -> list[dict] | None:
    if where is None:
        return []
    items = where["items"] if isinstance(where, dict) and where.get("type") == "and" else [where]
    out = []
    for item in items:
        test = _field_test(item) if isinstance(item, dict) else None
        if test is None or len(test[0]["path"]) != 1 or test[1] in ("within last", "not within last"):
            return None
        operand, op, value, value2 = test
        out.append({"field": operand["path"][0], "op": op, "value": value, "value2": value2})
    return out


def _window_fields(w: dict | None) -> dict:
    out = _window_defaults()
    if w is None:
        return out
    t = w["type"]
    if t == "last":
        out.update(w_type="last", w_amount=str(w["amount"]), w_unit=w["unit"])
    elif t == "ago":
        out.update(w_type="ago", w_far=str(w["far"]), w_near=str(w["near"]), w_unit=w["unit"])
    elif t in ("since", "before"):
        out.update(w_type=t, w_date=w["date"])
    elif t == "date_range":
        out.update(w_type="between", w_date=w["start"], w_end=w["end"])
    return out


def _activity(left: dict, op: str, right: Any) -> dict | None:
    if op not in _COMPARE or not isinstance(right, int | float) or isinstance(right, bool):
        return None
    if left["type"] == "days_since":
        occ = left["operand"]
        if occ.get("type") != "occurrence":
            return None
        measure, source, rows = f"days_since_{occ['which']}", occ["source"], occ
        field = ""
    else:
        measure, source, rows, field = left["func"], left["source"], left, left.get("field") or ""
    filters = _filters(rows.get("where"))
    if filters is None:
        return None
    return {"kind": "activity", "measure": measure, "source": source, "field": field, "op": op,
            "value": _text(right), "filters": filters, **_window_fields(rows.get("window"))}


# -- the HTML form ------------------------------------------------------------------------
_NODE_ATTRS = ("kind", "op", "not", "field", "value", "value2", "measure", "source", "name",
               "negated", "text", "w_type", "w_amount", "w_unit", "w_far", "w_near", "w_date", "w_end")
_FILTER_ATTRS = ("field", "op", "value", "value2")


def from_form(form: dict[str, list[str]]) -> dict:
    """The builder tree the form's fields describe (``{id}:{attr}``, filters
    ``{id}:f{i}:{attr}``; an ``in`` list may come as several values of one field)."""
    nodes: dict[str, dict] = {}
    for key, values in form.items():
        nid, _, attr = key.partition(":")
        if not _ID.fullmatch(nid) or not attr:
            continue
        node = nodes.setdefault(nid, {"filters": {}})
        fattr = re.fullmatch(r"f(\d{1,3}):(\w+)", attr)
        if fattr and fattr.group(2) in _FILTER_ATTRS:
            node["filters"].setdefault(int(fattr.group(1)), {})[fattr.group(2)] = ", ".join(values)
        elif attr in _NODE_ATTRS:
            node[attr] = ", ".join(v for v in values if v != "") if attr == "value" else values[-1]
    if "r" not in nodes:
        return empty_root()
    return _assemble("r", nodes)


def _assemble(nid: str, nodes: dict[str, dict]) -> dict:
    raw = nodes[nid]
    filters = [_filter() | f for _, f in sorted(raw.pop("filters").items())]
    if raw.get("kind") == "group":
        children = sorted((k for k in nodes if k.rsplit(".", 1)[0] == nid and k != nid),
                          key=lambda k: int(k.rsplit(".", 1)[1]))
        return {"kind": "group", "op": raw.get("op", "and"), "not": raw.get("not") == "on",
                "items": [_assemble(c, nodes) for c in children]}
    base = {"field": "", "op": "", "value": "", "value2": "", "measure": "count", "source": "",
            "name": "", "text": "", **_window_defaults()}
    return {**base, **raw, "filters": filters, "negated": raw.get("negated") == "on"}


def node_label(nid: str | None) -> str:
    """``r.1.0`` -> "condition 2.1" (the numbering the page shows)."""
    if not nid or nid == "r":
        return "the rule"
    return "condition " + ".".join(str(int(p) + 1) for p in nid.split(".")[1:])


def find(root: dict, nid: str) -> dict | None:
    """The node with id ``nid`` (``r``, ``r.1``, ``r.1.0`` ...)."""
    node = root
    for part in nid.split(".")[1:]:
        items = node.get("items") or []
        if not part.isdigit() or int(part) >= len(items):
            return None
        node = items[int(part)]
    return node


def apply(root: dict, action: str, catalog: Any = None) -> dict:
    """The tree after a builder button: ``add:{group}:{kind}``, ``remove:{id}``,
    ``addf:{id}``, ``rmf:{id}:{i}``, ``kind:{id}`` (the condition's kind changed: fresh
    defaults), ``wrap:{id}`` (put a condition into a group of its own)."""
    root = copy.deepcopy(root)
    verb, _, rest = action.partition(":")
    nid, _, arg = rest.partition(":")
    node = find(root, nid)
    if node is None:
        return root
    if verb == "add" and node.get("kind") == "group":
        node["items"].append(new_node(arg or "field", catalog))
    elif verb == "remove" and nid != "r":
        parent = find(root, nid.rsplit(".", 1)[0])
        del parent["items"][int(nid.rsplit(".", 1)[1])]
    elif verb == "addf" and "filters" in node:
        node["filters"].append(_filter(catalog.first_filter_field(node) if catalog else ""))
    elif verb == "rmf" and arg.isdigit() and int(arg) < len(node.get("filters", [])):
        del node["filters"][int(arg)]
    elif verb == "kind" and nid != "r":
        fresh = new_node(arg or node.get("kind", "field"), catalog)
        node.clear()
        node.update(fresh)
    elif verb == "wrap" and nid != "r":
        parent = find(root, nid.rsplit(".", 1)[0])
        i = int(nid.rsplit(".", 1)[1])
        other = "or" if parent.get("op") == "and" else "and"
        parent["items"][i] = {"kind": "group", "op": other, "not": False, "items": [node]}
    return root


# -- what the pickers offer ---------------------------------------------------------------
_GROUPS = (("rfm.", "RFM"), ("clv.", "CLV"), ("persona.", "Persona"), ("lifestage.", "Life stage"),
           ("deal.", "Current deal (funnel)"))
_HIDDEN = {"contact_id"}


class BuilderCatalog:
    """The names the builder offers, from the catalogue's JSON (``GET /api/catalog``)."""

    def __init__(self, data: dict) -> None:
        self.profile = {f["name"]: f["type"] for f in data["profile"] if f["name"] not in _HIDDEN}
        self.sources = {s["name"]: s for s in data["sources"]}
        self.segments = list(data["segments"])

    def profile_groups(self) -> list[tuple[str, list[str]]]:
        """Profile fields, then each model's and the deal's, for grouped options."""
        groups: dict[str, list[str]] = {"Profile": []}
        for name in self.profile:
            label = next((lab for prefix, lab in _GROUPS if name.startswith(prefix)), None)
            if label is None:
                label = "Profile" if "." not in name else name.split(".")[0]
            groups.setdefault(label, []).append(name)
        return [(k, v) for k, v in groups.items() if v]

    def source_groups(self) -> list[tuple[str, list[str]]]:
        tables = [n for n, s in self.sources.items() if s["kind"] != "event"]
        events = sorted(n for n, s in self.sources.items() if s["kind"] == "event")
        return [(label, names) for label, names in (("Tables", tables), ("Events", events)) if names]

    def fields(self, source: str) -> list[tuple[str, str]]:
        src = self.sources.get(source)
        if src is None:
            return []
        return [(f["name"], f["type"]) for f in src["fields"] if f["name"] not in _HIDDEN]

    def numeric_fields(self, source: str) -> list[str]:
        return [n for n, t in self.fields(source) if t == "number"]

    def type_of(self, source: str | None, field: str) -> str:
        if source is None:
            return self.profile.get(field, "any")
        return dict(self.fields(source)).get(field, "any")

    def first_profile_field(self) -> tuple[str, str]:
        for preferred in ("email_opt_in", "city"):
            if preferred in self.profile:
                return preferred, self.profile[preferred]
        name = next(iter(self.profile), "contact_id")
        return name, self.profile.get(name, "string")

    def first_source(self) -> str:
        return "orders" if "orders" in self.sources else next(iter(self.sources), "orders")

    def segment_names(self) -> list[str]:
        return self.segments

    def first_filter_field(self, node: dict) -> str:
        source = "order_items" if node.get("kind") == "purchased" else node.get("source", "")
        names = [n for n, _ in self.fields(source)]
        for preferred in ("category", "device_os", "channel", "stage"):
            if preferred in names:
                return preferred
        return names[0] if names else ""


def normalize(root: dict, cat: BuilderCatalog) -> dict:
    """Make every condition consistent with its choices after one of them changed (a new
    field's type allows other operators, a new source has other fields); in place."""
    for node in walk(root):
        kind = node.get("kind")
        if kind == "field":
            ops = ops_for(cat.type_of(None, node.get("field", "")))
            if node.get("op") not in ops:
                node.update(op=ops[0], value="", value2="")
        elif kind == "activity":
            if node.get("measure") not in MEASURES:
                node["measure"] = "count"
            numbers = cat.numeric_fields(node.get("source", ""))
            if node["measure"] in _NEEDS_FIELD and node.get("field") not in numbers:
                node["field"] = numbers[0] if numbers else ""
            if node.get("op") not in _COMPARE:
                node["op"] = ">="
        if kind in ("activity", "purchased"):
            source = "order_items" if kind == "purchased" else node.get("source", "")
            for f in node.get("filters", []):
                ops = filter_ops_for(cat.type_of(source, f.get("field", "")))
                if f.get("op") not in ops:
                    f.update(op=ops[0], value="", value2="")
    return root


def walk(root: dict):
    """Every node of the tree, groups first."""
    yield root
    for item in root.get("items", []) if root.get("kind") == "group" else []:
        yield from walk(item)


def value_fields(root: dict) -> set[tuple[str | None, str]]:
    """The (source, field) pairs whose values the pickers show (None: the profile)."""
    wanted: set[tuple[str | None, str]] = set()
    for node in walk(root):
        if node.get("kind") == "field" and node.get("field"):
            wanted.add((None, node["field"]))
        source = "order_items" if node.get("kind") == "purchased" else node.get("source")
        for f in node.get("filters", []) if source else []:
            if f.get("field"):
                wanted.add((source, f["field"]))
    return wanted
