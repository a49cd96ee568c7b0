"""Segment files (YAML): a name, a description, a rule and optional parameters.

::

    name: lapsing-offline-buyer
    description: Bought offline, stopped, still opens our e-mails.
    params:
      min_orders: 3                    # short form: the default value
      recent:
        default: 90
        description: days without an offline order
    rule: |
      count(orders where channel = "offline", between 365 and {recent} days ago) >= {min_orders}
      and no(orders where channel = "offline", last {recent} days)
      and exists(email_open, last 30 days)

``rule`` is either rule text or the JSON structure of the rule (a node such as
``{type: and, items: [...]}``, or the whole ``{version: 1, rule: ...}`` document).
``{name}`` placeholders take the parameter's value (the default, or one given to
``bind``); in text they become one literal token each (a string, number, boolean, null or
a list in parentheses), so a value can never change the rule's structure. In the JSON
structure, a string that is exactly ``"{name}"`` becomes the value itself and other strings
have ``{name}`` replaced by the value's text.

Errors name the file and the key (and, for a rule that does not parse, the line in the file
where the rule text has it, when the rule is a ``|`` block).
"""

from __future__ import annotations

import dataclasses as dc
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from segmentum.segments import ast as A
from segmentum.segments.errors import (
    RuleError,
    SegmentFileError,
    SegmentJSONError,
    suggest,
)
from segmentum.segments.json_face import from_json, node_from_json
from segmentum.segments.parser import parse
from segmentum.segments.printer import to_text

__all__ = [
    "REQUIRED",
    "Param",
    "SegmentFile",
    "load_segment",
    "loads_segment",
    "dump_segment",
]

KEYS = ("name", "description", "params", "rule")
PARAM_KEYS = ("default", "description")
_PARAM_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


class _Required:
    def __repr__(self) -> str:
        return "REQUIRED"

    def __reduce__(self) -> str:
        return "REQUIRED"


REQUIRED: Any = _Required()
"""The default of a parameter that has none: a value must be given to ``bind``."""


@dc.dataclass(frozen=True)
class Param:
    """A parameter of a segment template: its name, default (or REQUIRED) and description."""

    name: str
    default: Any = REQUIRED
    description: str | None = None


@dc.dataclass(frozen=True)
class SegmentFile:
    """A segment definition as written in a file.

    ``rule`` is the rule text (placeholders unsubstituted) or its JSON structure (a dict).
    ``file`` is where it was read from (for messages; not part of equality).
    """

    name: str
    rule: str | dict[str, Any]
    description: str | None = None
    params: tuple[Param, ...] = ()
    file: str = dc.field(default="<string>", compare=False)
    # where the rule text sits in the file: (YAML style, line, column, block indent)
    rule_position: tuple[Any, int, int, int] | None = dc.field(
        default=None, compare=False, repr=False
    )

    @classmethod
    def from_rule(cls, name: str, rule: A.Node, description: str | None = None) -> SegmentFile:
        """A segment file holding ``rule`` as (pretty) text."""
        return cls(name=name, rule=to_text(rule, pretty=True) + "\n", description=description)

    def values(self, overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Each parameter's value: the default, or the override given."""
        overrides = dict(overrides or {})
        declared = {p.name for p in self.params}
        for key in overrides:
            if key not in declared:
                raise SegmentFileError(
                    f"unknown parameter {key!r}",
                    file=self.file,
                    key="params",
                    hint=suggest(key, declared)
                    or (
                        f"parameters are: {', '.join(sorted(declared))}"
                        if declared
                        else "this segment has no parameters"
                    ),
                )
        out = {}
        for p in self.params:
            value = overrides.get(p.name, p.default)
            if value is REQUIRED:
                raise SegmentFileError(
                    f"parameter {p.name!r} needs a value",
                    file=self.file,
                    key=f"params.{p.name}",
                    hint="it has no default",
                )
            out[p.name] = value
        return out

    def bind(self, overrides: Mapping[str, Any] | None = None, **values: Any) -> A.Node:
        """The rule's syntax tree with parameters substituted (defaults unless overridden)."""
        merged = {**(overrides or {}), **values}
        params = self.values(merged)
        if isinstance(self.rule, str):
            try:
                return parse(self.rule, params)
            except RuleError as exc:
                raise self._rule_error(exc) from None
        try:
            data = _substitute(self.rule, params, "rule")
            if isinstance(data, Mapping) and "version" in data:
                return from_json(data, path="rule")
            return node_from_json(data, "rule")
        except SegmentJSONError as exc:
            raise SegmentFileError(
                f"the rule is not valid: {exc.message}",
                file=self.file,
                key="rule",
                hint=exc.hint,
                cause=exc,
            ) from None

    def to_yaml(self) -> str:
        """The YAML text of this segment file."""
        return dump_segment(self)

    def _rule_error(self, exc: RuleError) -> SegmentFileError:
        line, column = self._file_position(exc)
        return SegmentFileError(
            f"the rule does not parse: {exc.message}",
            file=self.file,
            key="rule",
            hint=exc.hint,
            cause=exc,
            line=line,
            column=column,
        )

    def _file_position(self, exc: RuleError) -> tuple[int | None, int | None]:
        if self.rule_position is None:
            return None, None
        style, line0, col0, indent = self.rule_position
        if style == "|":
            return line0 + exc.line, indent + exc.column
        if style is None and exc.line == 1:
            return line0, col0 + exc.column
        return None, None


def _substitute(data: Any, params: Mapping[str, Any], path: str) -> Any:
    if isinstance(data, str):
        whole = _PLACEHOLDER.fullmatch(data)
        if whole:
            name = whole.group(1)
            if name not in params:
                raise SegmentJSONError(
                    f"parameter {{{name}}} has no value",
                    path=path,
                    hint=suggest(name, params) or "declare it under params:",
                )
            return params[name]
        return _PLACEHOLDER.sub(
            lambda m: _text(params[m.group(1)]) if m.group(1) in params else m.group(0), data
        )
    if isinstance(data, Mapping):
        return {k: _substitute(v, params, f"{path}.{k}") for k, v in data.items()}
    if isinstance(data, list):
        return [_substitute(v, params, f"{path}[{i}]") for i, v in enumerate(data)]
    return data


def _text(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _check_param_value(value: Any, file: str, key: str) -> None:
    ok = value is None or isinstance(value, (str, int, float, bool))
    if isinstance(value, list):
        ok = bool(value) and all(v is None or isinstance(v, (str, int, float, bool)) for v in value)
    if not ok:
        raise SegmentFileError(
            f"a parameter value is a string, number, boolean, null or a list "
            f"of those, not {value!r}",
            file=file,
            key=key,
        )


def loads_segment(text: str, file: str = "<string>") -> SegmentFile:
    """A segment file from YAML text; ``file`` names it in errors.

    The rule is checked at once (parsed with the parameters' defaults) when every parameter
    has a default.
    """
    try:
        data = yaml.safe_load(text)
        root = yaml.compose(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        column = mark.column + 1 if mark is not None else None
        problem = getattr(exc, "problem", None) or str(exc)
        raise SegmentFileError(
            f"not valid YAML: {problem}", file=file, line=line, column=column
        ) from None
    if not isinstance(data, Mapping):
        raise SegmentFileError(
            "a segment file is a mapping with keys name, rule, description and params", file=file
        )
    for key in data:
        if key not in KEYS:
            raise SegmentFileError(
                f"unknown key {key!r}",
                file=file,
                key=str(key),
                hint=suggest(str(key), KEYS) or f"keys are: {', '.join(KEYS)}",
            )
    for key in ("name", "rule"):
        if key not in data or data[key] is None:
            raise SegmentFileError(f"missing key {key!r}", file=file, key=key)
    name = data["name"]
    if not isinstance(name, str) or not name.strip():
        raise SegmentFileError("the name is a non-empty string", file=file, key="name")
    description = data.get("description")
    if description is not None and not isinstance(description, str):
        raise SegmentFileError("the description is a string", file=file, key="description")
    rule = data["rule"]
    if not isinstance(rule, (str, Mapping)):
        raise SegmentFileError(
            "the rule is rule text or its JSON structure (a mapping)", file=file, key="rule"
        )
    if isinstance(rule, str) and not rule.strip():
        raise SegmentFileError(
            "the rule is empty",
            file=file,
            key="rule",
            hint="write a condition, e.g. count(orders) > 0",
        )
    params = _params(data.get("params"), file)
    seg = SegmentFile(
        name=name,
        rule=rule if isinstance(rule, str) else dict(rule),
        description=description,
        params=params,
        file=file,
        rule_position=_rule_position(root),
    )
    if all(p.default is not REQUIRED for p in params):
        seg.bind()
    return seg


def _rule_position(root: Any) -> tuple[Any, int, int, int] | None:
    if not isinstance(root, yaml.MappingNode):
        return None
    for key, value in root.value:
        if getattr(key, "value", None) == "rule" and isinstance(value, yaml.ScalarNode):
            mark = value.start_mark
            indent = 0
            if value.style == "|":
                lines = mark.buffer.split("\n") if mark.buffer else []
                nxt = lines[mark.line + 1] if mark.line + 1 < len(lines) else ""
                indent = len(nxt) - len(nxt.lstrip(" "))
            return (value.style, mark.line + 1, mark.column, indent)
    return None


def _params(raw: Any, file: str) -> tuple[Param, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, Mapping):
        raise SegmentFileError(
            "params is a mapping of parameter names to defaults", file=file, key="params"
        )
    out = []
    for name, spec in raw.items():
        key = f"params.{name}"
        if not isinstance(name, str) or not _PARAM_NAME.fullmatch(name):
            raise SegmentFileError(
                f"bad parameter name {name!r}",
                file=file,
                key=key,
                hint="use letters, digits and _, starting with a letter",
            )
        if isinstance(spec, Mapping):
            for sub in spec:
                if sub not in PARAM_KEYS:
                    raise SegmentFileError(
                        f"unknown key {sub!r}",
                        file=file,
                        key=f"{key}.{sub}",
                        hint=suggest(str(sub), PARAM_KEYS)
                        or "a parameter has a default and a description",
                    )
            default = spec.get("default", REQUIRED)
            description = spec.get("description")
            if description is not None and not isinstance(description, str):
                raise SegmentFileError(
                    "a description is a string", file=file, key=f"{key}.description"
                )
        else:
            default, description = spec, None
        if default is not REQUIRED:
            _check_param_value(default, file, key)
        out.append(Param(name, default, description))
    return tuple(out)


def load_segment(path: str | Path) -> SegmentFile:
    """A segment file read from disk."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise SegmentFileError(
            f"can't read the file: {exc.strerror or exc}", file=str(path)
        ) from None
    except UnicodeDecodeError:
        raise SegmentFileError("the file is not UTF-8 text", file=str(path)) from None
    return loads_segment(text, file=str(path))


class _Dumper(yaml.SafeDumper):
    pass


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


def dump_segment(seg: SegmentFile) -> str:
    """The YAML text of a segment file (keys: name, description, params, rule)."""
    data: dict[str, Any] = {"name": seg.name}
    if seg.description is not None:
        data["description"] = seg.description
    if seg.params:
        params: dict[str, Any] = {}
        for p in seg.params:
            if p.description is None and p.default is not REQUIRED:
                params[p.name] = p.default
            else:
                spec: dict[str, Any] = {}
                if p.default is not REQUIRED:
                    spec["default"] = p.default
                if p.description is not None:
                    spec["description"] = p.description
                params[p.name] = spec
        data["params"] = params
    data["rule"] = seg.rule
    return yaml.dump(data, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=100)
