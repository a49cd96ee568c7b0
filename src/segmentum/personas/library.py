"""Persona templates: ready segment definitions from the seed articles, with typed parameters.

A template is a YAML file in ``segmentum/personas/templates/``::

    name: high_value_buyer
    title: High-value buyer
    seed: "003"                     # the source article (PRODUCT.md, seeds/)
    description: A woman in a big city who regularly spends a lot.
    ground_truth_label: high_value_woman_big_city   # the generator's planted label, if any
    needs:                          # the data the rule reads
      tables: [contacts, orders]
      events: [email_open]          # event types
      properties: {product_view: [in_stock]}   # event properties, per event type
      analytics: [rfm, clv]         # score tables (segmentum rfm, segmentum clv fit)
      models: {rfm: {levels: 3}}    # model settings the rule is written for
    actions: [Cross-selling, Upselling]
    params:
      min_spend: {type: number, default: 400, min: 0, description: EUR in the last year}
      cities: {type: "list[string]", default: [London, Paris, Berlin]}
    rule: |
      city in {cities} and sum(orders.total, last 365 days) >= {min_spend}

Parameter types are ``string``, ``number``, ``integer``, ``boolean`` and ``list[string]``,
``list[number]``, ``list[integer]``; numbers may have ``min`` / ``max``, strings
``choices``. A value is checked against its type and limits, then handed to the segment
parser, which puts it into the rule as one literal token (:func:`segmentum.segments.parser.
parse` with ``params``): a value is never pasted into rule text, so no value can change the
rule's structure. Everything here is pure (no workspace); see :mod:`.needs` for what a
workspace has and :mod:`.apply` for saving a template as a segment.

    >>> lib = load_library()
    >>> t = lib.get("high_value_buyer")
    >>> t.bind({"min_spend": "500"})          # the rule's syntax tree, min_spend = 500
"""

from __future__ import annotations

import dataclasses as dc
import math
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import yaml

from segmentum.data.schema import KINDS
from segmentum.errors import SegmentumError, UsageError, did_you_mean
from segmentum.segments import ast as A
from segmentum.segments.catalog import ANALYTICS
from segmentum.segments.errors import SegmentError
from segmentum.segments.parser import parse
from segmentum.segments.printer import to_text

__all__ = [
    "TEMPLATES_DIR",
    "PARAM_TYPES",
    "TemplateFileError",
    "Param",
    "Needs",
    "PersonaTemplate",
    "Library",
    "load_template",
    "load_library",
]

TEMPLATES_DIR = Path(__file__).resolve().parent / "templates"
PARAM_TYPES = (
    "string",
    "number",
    "integer",
    "boolean",
    "list[string]",
    "list[number]",
    "list[integer]",
)
KEYS = (
    "name",
    "title",
    "seed",
    "description",
    "ground_truth_label",
    "needs",
    "actions",
    "params",
    "rule",
)
REQUIRED_KEYS = ("name", "title", "seed", "description", "rule")
PARAM_KEYS = ("type", "default", "description", "min", "max", "choices")
NEEDS_KEYS = ("tables", "events", "properties", "analytics", "models")
MAX_STRING = 1000
_NAME = re.compile(r"[a-z][a-z0-9_]*")
_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
_INT = re.compile(r"[+-]?[0-9]+")
_TRUE, _FALSE = ("true", "yes", "on", "1"), ("false", "no", "off", "0")


class TemplateFileError(SegmentumError):
    """A persona template file that is not valid (a bug in the library, or a user's own file)."""

    code = "template_file"

    def __init__(self, file: str, key: str | None, message: str) -> None:
        where = f"{file}: key {key!r}" if key else file
        super().__init__(f"{where}: {message}", file=file, key=key)


@dc.dataclass(frozen=True)
class Param:
    """A typed template parameter: its type, default, limits and meaning."""

    name: str
    type: str
    default: Any
    description: str = ""
    min: float | None = None
    max: float | None = None
    choices: tuple[str, ...] | None = None

    @property
    def item_type(self) -> str:
        return self.type[5:-1] if self.type.startswith("list[") else self.type

    def check(self, value: Any) -> Any:
        """``value`` (a Python value) validated against the type and limits; UsageError if not."""
        if self.type.startswith("list["):
            if isinstance(value, tuple):
                value = list(value)
            if not isinstance(value, list) or not value:
                raise self._error(value, "a non-empty list")
            return [self._check_item(v) for v in value]
        return self._check_item(value)

    def parse(self, text: str) -> Any:
        """A value typed on a command line (``--param name=TEXT``), read as this type.

        Strings are taken as they are (quotes and all); lists are ``a,b,c`` or a YAML list
        ``[a, "b, c"]``; numbers, integers and booleans must read as one.
        """
        if not isinstance(text, str):
            return self.check(text)
        if self.type.startswith("list["):
            raw = text.strip()
            if raw.startswith("["):
                try:
                    items = yaml.safe_load(raw)
                except yaml.YAMLError:
                    raise self._error(text, "a list such as [a, b] or a,b") from None
                if not isinstance(items, list):
                    raise self._error(text, "a list such as [a, b] or a,b")
                if self.item_type == "string":
                    items = [v if isinstance(v, str) else _scalar_text(v) for v in items]
                else:
                    items = [self._read(v) if isinstance(v, str) else v for v in items]
            else:
                items = [part.strip() for part in raw.split(",") if part.strip()]
                if self.item_type != "string":
                    items = [self._read(v) for v in items]
            return self.check(items)
        return self._check_item(self._read(text))

    def describe(self) -> str:
        """The type with its limits, e.g. ``integer >= 1``, ``string (F, M, X)``."""
        out = self.type
        if self.choices:
            out += f" ({', '.join(self.choices)})"
        if self.min is not None and self.max is not None:
            out += f" in [{_num(self.min)}, {_num(self.max)}]"
        elif self.min is not None:
            out += f" >= {_num(self.min)}"
        elif self.max is not None:
            out += f" <= {_num(self.max)}"
        return out

    # -- helpers -------------------------------------------------------------------------
    def _read(self, text: str) -> Any:
        """Text as a Python value of the item type (no limits checked yet)."""
        kind, raw = self.item_type, text.strip()
        if kind == "string":
            return text
        if kind == "boolean":
            if raw.lower() in _TRUE:
                return True
            if raw.lower() in _FALSE:
                return False
            raise self._error(text, "true or false")
        if _INT.fullmatch(raw):
            return int(raw)
        if kind == "number":
            try:
                return float(raw)
            except ValueError:
                pass
        raise self._error(text, "a whole number" if kind == "integer" else "a number")

    def _check_item(self, value: Any) -> Any:
        kind = self.item_type
        if kind == "string":
            if not isinstance(value, str):
                raise self._error(value, "a string")
            if len(value) > MAX_STRING:
                raise self._error(value, f"a string of at most {MAX_STRING} characters")
            if self.choices is not None and value not in self.choices:
                same = [c for c in self.choices if c.lower() == value.lower()]
                hint = f' Did you mean "{same[0]}"?' if same else did_you_mean(value, self.choices)
                raise self._error(value, f"one of {', '.join(self.choices)}", hint)
            return value
        if kind == "boolean":
            if not isinstance(value, bool):
                raise self._error(value, "true or false")
            return value
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self._error(value, "a whole number" if kind == "integer" else "a number")
        if kind == "integer":
            if isinstance(value, float):
                if not value.is_integer():
                    raise self._error(value, "a whole number")
                value = int(value)
        elif not math.isfinite(value):
            raise self._error(value, "a finite number")
        if self.min is not None and value < self.min:
            raise self._error(value, f"at least {_num(self.min)}")
        if self.max is not None and value > self.max:
            raise self._error(value, f"at most {_num(self.max)}")
        return value

    def _error(self, value: Any, expected: str, hint: str = "") -> UsageError:
        shown = value if not isinstance(value, str) else _short(value)
        return UsageError(
            f"Parameter {self.name} ({self.describe()}) must be {expected}, "
            f"got {shown!r}.{hint}"
        )


@dc.dataclass(frozen=True)
class Needs:
    """The data a template's rule reads."""

    tables: tuple[str, ...] = ()
    events: tuple[str, ...] = ()
    properties: tuple[tuple[str, str], ...] = ()  # (event type, property)
    analytics: tuple[str, ...] = ()
    models: tuple[tuple[str, str, Any], ...] = ()  # (model, setting, value the rule assumes)

    def to_dict(self) -> dict[str, Any]:
        props: dict[str, list[str]] = {}
        for event, prop in self.properties:
            props.setdefault(event, []).append(prop)
        models: dict[str, dict[str, Any]] = {}
        for model, key, value in self.models:
            models.setdefault(model, {})[key] = value
        return {
            "tables": list(self.tables),
            "events": list(self.events),
            "properties": props,
            "analytics": list(self.analytics),
            "models": models,
        }


@dc.dataclass(frozen=True)
class PersonaTemplate:
    """One persona: what it is, where it comes from, the data it needs and its rule."""

    name: str
    title: str
    seed: str
    description: str
    rule: str  # rule text with {param} placeholders
    params: tuple[Param, ...] = ()
    needs: Needs = Needs()
    actions: tuple[str, ...] = ()
    ground_truth_label: str | None = None
    file: str = dc.field(default="<string>", compare=False)

    def param(self, name: str) -> Param:
        for p in self.params:
            if p.name == name:
                return p
        names = [p.name for p in self.params]
        raise UsageError(
            f"Template {self.name} has no parameter {name!r}."
            + (did_you_mean(name, names) or "")
            + (f" Its parameters: {', '.join(names)}." if names else " It has no parameters.")
        )

    def values(self, overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Every parameter's value: the default, or the override (text is read as the type)."""
        given = dict(overrides or {})
        for key in given:
            self.param(key)  # unknown names are errors
        out = {}
        for p in self.params:
            if p.name in given:
                v = given[p.name]
                out[p.name] = p.parse(v) if isinstance(v, str) else p.check(v)
            else:
                out[p.name] = p.default
        return out

    def bind(self, overrides: Mapping[str, Any] | None = None) -> A.Node:
        """The rule's syntax tree with checked parameter values as literals."""
        values = self.values(overrides)
        try:
            return parse(self.rule, values)
        except SegmentError as exc:  # only a broken template can get here: values are typed
            raise TemplateFileError(self.file, "rule", f"the rule does not parse: {exc}") from None

    def rule_text(self, overrides: Mapping[str, Any] | None = None, *, pretty: bool = True) -> str:
        """The resolved rule in canonical text."""
        return to_text(self.bind(overrides), pretty=pretty)

    def to_dict(self, overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
        values = self.values(overrides)
        return {
            "name": self.name,
            "title": self.title,
            "seed": self.seed,
            "description": self.description,
            "ground_truth_label": self.ground_truth_label,
            "needs": self.needs.to_dict(),
            "actions": list(self.actions),
            "params": [
                {
                    "name": p.name,
                    "type": p.type,
                    "default": p.default,
                    "value": values[p.name],
                    "description": p.description,
                    "min": p.min,
                    "max": p.max,
                    "choices": list(p.choices) if p.choices is not None else None,
                }
                for p in self.params
            ],
            "rule_template": self.rule,
            "rule": to_text(parse(self.rule, values), pretty=True),
        }


class Library:
    """The persona templates, by name (in file-name order)."""

    def __init__(self, templates: list[PersonaTemplate]) -> None:
        self._by_name: dict[str, PersonaTemplate] = {}
        for t in templates:
            if t.name in self._by_name:
                raise TemplateFileError(
                    t.file, "name", f"{t.name!r} is also the name of {self._by_name[t.name].file}"
                )
            self._by_name[t.name] = t

    def names(self) -> list[str]:
        return list(self._by_name)

    def get(self, name: str) -> PersonaTemplate:
        if name not in self._by_name:
            raise UsageError(
                f"No persona template {name!r}.{did_you_mean(name, self._by_name)} "
                f"Templates: {', '.join(self._by_name)} (segmentum persona list)."
            )
        return self._by_name[name]

    def __iter__(self) -> Iterator[PersonaTemplate]:
        return iter(self._by_name.values())

    def __len__(self) -> int:
        return len(self._by_name)


def load_library(directory: str | Path | None = None) -> Library:
    """Every ``*.yaml`` template in ``directory`` (default: the templates shipped here)."""
    folder = Path(directory) if directory is not None else TEMPLATES_DIR
    if not folder.is_dir():
        raise UsageError(f"No template folder {folder}.")
    return Library([load_template(p) for p in sorted(folder.glob("*.yaml"))])


def load_template(path: str | Path) -> PersonaTemplate:
    """One template file, checked: keys, types, defaults, placeholders, and that it parses."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise TemplateFileError(str(path), None, f"can't read it: {exc}") from None
    return loads_template(text, file=str(path))


def loads_template(text: str, file: str = "<string>") -> PersonaTemplate:
    """A template from YAML text (``file`` names it in errors)."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise TemplateFileError(file, None, f"not valid YAML: {exc}") from None
    if not isinstance(data, Mapping):
        raise TemplateFileError(file, None, f"a template is a mapping with keys {', '.join(KEYS)}")
    for key in data:
        if key not in KEYS:
            raise TemplateFileError(
                file, str(key), f"unknown key.{did_you_mean(str(key), KEYS)}"
            )
    for key in REQUIRED_KEYS:
        if not isinstance(data.get(key), str) or not data[key].strip():
            raise TemplateFileError(file, key, "missing, or not a non-empty string")
    name = data["name"]
    if not _NAME.fullmatch(name):
        raise TemplateFileError(file, "name", "use lower-case letters, digits and _")
    label = data.get("ground_truth_label")
    if label is not None and not isinstance(label, str):
        raise TemplateFileError(file, "ground_truth_label", "a label name (string)")
    actions = data.get("actions") or []
    if not isinstance(actions, list) or not all(isinstance(a, str) for a in actions):
        raise TemplateFileError(file, "actions", "a list of strings")
    params = _params(data.get("params"), file)
    template = PersonaTemplate(
        name=name,
        title=data["title"].strip(),
        seed=data["seed"].strip(),
        description=" ".join(data["description"].split()),
        rule=data["rule"],
        params=params,
        needs=_needs(data.get("needs"), file),
        actions=tuple(actions),
        ground_truth_label=label,
        file=file,
    )
    used = set(_PLACEHOLDER.findall(template.rule))
    declared = {p.name for p in params}
    if used - declared:
        raise TemplateFileError(
            file, "rule", f"placeholders without a parameter: {', '.join(sorted(used - declared))}"
        )
    if declared - used:
        raise TemplateFileError(
            file, "params", f"parameters the rule never uses: {', '.join(sorted(declared - used))}"
        )
    template.bind()  # the rule parses with the defaults
    return template


def _params(raw: Any, file: str) -> tuple[Param, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, Mapping):
        raise TemplateFileError(file, "params", "a mapping of parameter names to specs")
    out = []
    for name, spec in raw.items():
        key = f"params.{name}"
        if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
            raise TemplateFileError(file, key, "use letters, digits and _")
        if not isinstance(spec, Mapping):
            raise TemplateFileError(file, key, "a mapping with type, default, description, ...")
        for sub in spec:
            if sub not in PARAM_KEYS:
                raise TemplateFileError(
                    file, f"{key}.{sub}", f"unknown key.{did_you_mean(str(sub), PARAM_KEYS)}"
                )
        kind = spec.get("type")
        if kind not in PARAM_TYPES:
            raise TemplateFileError(
                file, f"{key}.type", f"one of {', '.join(PARAM_TYPES)}, not {kind!r}"
            )
        if "default" not in spec:
            raise TemplateFileError(file, f"{key}.default", "every parameter needs a default")
        limits = {}
        for bound in ("min", "max"):
            v = spec.get(bound)
            if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float))):
                raise TemplateFileError(file, f"{key}.{bound}", "a number")
            limits[bound] = v
        choices = spec.get("choices")
        if choices is not None and (
            not isinstance(choices, list) or not all(isinstance(c, str) for c in choices)
        ):
            raise TemplateFileError(file, f"{key}.choices", "a list of strings")
        p = Param(
            name=name,
            type=kind,
            default=None,
            description=str(spec.get("description") or ""),
            min=limits["min"],
            max=limits["max"],
            choices=tuple(choices) if choices is not None else None,
        )
        try:
            default = p.check(spec["default"])
        except UsageError as exc:
            raise TemplateFileError(file, f"{key}.default", str(exc)) from None
        out.append(dc.replace(p, default=default))
    return tuple(out)


def _needs(raw: Any, file: str) -> Needs:
    if raw is None:
        return Needs()
    if not isinstance(raw, Mapping):
        raise TemplateFileError(file, "needs", f"a mapping with keys {', '.join(NEEDS_KEYS)}")
    for key in raw:
        if key not in NEEDS_KEYS:
            raise TemplateFileError(
                file, f"needs.{key}", f"unknown key.{did_you_mean(str(key), NEEDS_KEYS)}"
            )

    def names(key: str, allowed: tuple[str, ...] | None = None) -> tuple[str, ...]:
        values = raw.get(key) or []
        if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
            raise TemplateFileError(file, f"needs.{key}", "a list of names")
        for v in values:
            if allowed is not None and v not in allowed:
                raise TemplateFileError(
                    file, f"needs.{key}", f"{v!r} is not one of {', '.join(allowed)}"
                )
        return tuple(values)

    props = raw.get("properties") or {}
    if not isinstance(props, Mapping):
        raise TemplateFileError(file, "needs.properties", "a mapping: event type -> properties")
    pairs = []
    for event, keys in props.items():
        if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
            raise TemplateFileError(file, f"needs.properties.{event}", "a list of property names")
        pairs += [(str(event), k) for k in keys]
    return Needs(
        tables=names("tables", KINDS),
        events=names("events"),
        properties=tuple(pairs),
        analytics=names("analytics", tuple(ANALYTICS)),
        models=_model_needs(raw.get("models") or {}, file),
    )


def _model_needs(raw: Any, file: str) -> tuple[tuple[str, str, Any], ...]:
    """``models: {rfm: {levels: 3}}`` as (model, setting, value) triples."""
    if not isinstance(raw, Mapping):
        raise TemplateFileError(file, "needs.models", "a mapping: model -> {setting: value}")
    out = []
    for model, settings in raw.items():
        if model not in ANALYTICS:
            raise TemplateFileError(
                file, f"needs.models.{model}", f"not one of {', '.join(ANALYTICS)}"
            )
        if not isinstance(settings, Mapping) or not settings:
            raise TemplateFileError(file, f"needs.models.{model}", "a mapping: setting -> value")
        out += [(str(model), str(k), v) for k, v in settings.items()]
    return tuple(out)


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else str(x)


def _short(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _scalar_text(v: Any) -> Any:
    """A YAML scalar read as a string item (``[1, yes]`` -> "1", "true"); other values as
    they are, for the type check to refuse."""
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v) if isinstance(v, (int, float)) else v
