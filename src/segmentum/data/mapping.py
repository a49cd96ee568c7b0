"""Column mappings for real CRM exports: the YAML file that says how a file maps onto a kind.

Example (a Polish shop's order export)::

    delimiter: ";"            # , ; tab | or "whitespace"; detected from the header when absent
    encoding: utf-8           # utf-8 (with or without BOM), cp1251, latin-1, ...
    decimal: ","              # decimal comma: "1 234,50" -> 1234.50
    columns:                  # file column -> canonical field
      Nr zamówienia: order_id
      Klient: contact_id
      Data: ordered_at
      Wartość: total
    formats:                  # strptime formats for dates / times
      ordered_at: "%d.%m.%Y"
    timezone: Europe/Warsaw   # for times written without an offset (default UTC)
    constants:                # columns the file lacks, same value on every row
      currency: PLN
    values:                   # value maps, applied before validation
      channel: {Sklep: offline, WWW: online}
    ignore: [Uwagi]           # file columns to leave out (recorded in the load report)
    null_values: ["", "NULL", "-"]
"""

from __future__ import annotations

import os
import re
import zoneinfo
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from segmentum.data.schema import TableSpec
from segmentum.errors import MappingError, did_you_mean

__all__ = ["Mapping", "load_mapping", "normalise_name", "DEFAULT_NULLS", "TRUE_WORDS", "FALSE_WORDS"]

DEFAULT_NULLS = ("", "null", "NULL", "None", "NA", "N/A", "n/a", "\\N", "nan", "NaN")
TRUE_WORDS = ("true", "t", "yes", "y", "1", "on", "tak", "да", "ja", "oui", "si", "sí")
FALSE_WORDS = ("false", "f", "no", "n", "0", "off", "nie", "нет", "nein", "non")

_DELIMITERS = {",": ",", ";": ";", "\t": "\t", "tab": "\t", "|": "|", "whitespace": "whitespace"}


def normalise_name(name: str) -> str:
    """snake_case a header: 'Contact ID ' -> 'contact_id', 'E-mail' -> 'e_mail'."""
    out = re.sub(r"[^0-9a-zA-Z_\u00c0-\uffff]+", "_", name.strip().lstrip("\ufeff")).strip("_")
    return out.lower() or "column"


class Mapping(BaseModel):
    """How one file maps onto a canonical kind. Every key is optional."""

    model_config = ConfigDict(extra="forbid")

    delimiter: str | None = None
    encoding: str = "utf-8"
    header: bool = True
    names: list[str] | None = None
    skip_rows: int = Field(default=0, ge=0)
    decimal: Literal[".", ","] = "."
    thousands: str | None = None
    columns: dict[str, str] = Field(default_factory=dict)
    formats: dict[str, str] = Field(default_factory=dict)
    timezone: str | None = None
    constants: dict[str, Any] = Field(default_factory=dict)
    values: dict[str, dict[str, Any]] = Field(default_factory=dict)
    ignore: list[str] = Field(default_factory=list)
    null_values: list[str] = Field(default_factory=lambda: list(DEFAULT_NULLS))

    @field_validator("delimiter")
    @classmethod
    def _delimiter(cls, v: str | None) -> str | None:
        if v is None:
            return None
        if v not in _DELIMITERS:
            raise ValueError(
                f"delimiter {v!r} is not supported: use one of ',', ';', 'tab', '|', 'whitespace'"
            )
        return _DELIMITERS[v]

    @field_validator("timezone")
    @classmethod
    def _tz(cls, v: str | None) -> str | None:
        if v is None:
            return v
        try:
            zoneinfo.ZoneInfo(v)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"timezone {v!r} is not an IANA time zone (e.g. Europe/Warsaw)") from None
        return v

    @field_validator("formats")
    @classmethod
    def _formats(cls, v: dict[str, str]) -> dict[str, str]:
        for field, fmt in v.items():
            if "%" not in fmt:
                raise ValueError(
                    f"format for {field!r} is {fmt!r}: write it with strptime codes, e.g. '%d.%m.%Y'"
                )
        return v

    def check_against(self, spec: TableSpec, source: str) -> None:
        """Targets of `columns`, `formats`, `constants` and `values` must be fields of the kind."""
        known = set(spec.names)
        targets = set(self.columns.values())

        def bad(section: str, name: str, allow_custom: bool) -> None:
            if name in known or (allow_custom and section == "columns"):
                return
            if allow_custom and name in targets:
                return
            raise MappingError(
                f"{source}: {section}: {name!r} is not a field of {spec.kind}."
                f"{did_you_mean(name, known)} Fields: {', '.join(spec.names)}."
            )

        for target in self.columns.values():
            if normalise_name(target) != target:
                raise MappingError(
                    f"{source}: columns: target name {target!r} must be snake_case "
                    f"(letters, digits, underscores), e.g. {normalise_name(target)!r}."
                )
        for name in self.formats:
            bad("formats", name, allow_custom=False)
        for name in self.values:
            bad("values", name, allow_custom=True)
        for name in self.constants:
            if normalise_name(name) != name:
                raise MappingError(f"{source}: constants: {name!r} must be snake_case.")


def load_mapping(mapping: str | os.PathLike | dict | Mapping | None) -> tuple[Mapping, str | None]:
    """A Mapping from a YAML path, a dict or nothing; with the source text for the load log."""
    if mapping is None:
        return Mapping(), None
    if isinstance(mapping, Mapping):
        return mapping, mapping.model_dump_json()
    source = "mapping"
    if isinstance(mapping, dict):
        raw, text = mapping, yaml.safe_dump(mapping, allow_unicode=True)
    else:
        path = Path(mapping)
        source = str(path)
        if not path.exists():
            raise MappingError(f"Mapping file {path} does not exist.")
        text = path.read_text(encoding="utf-8-sig")
        try:
            raw = yaml.safe_load(text) or {}
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
            raise MappingError(f"{path}: not valid YAML{where}: {getattr(exc, 'problem', exc)}") from None
        if not isinstance(raw, dict):
            raise MappingError(f"{path}: a mapping file must be a YAML dictionary of settings.")
    try:
        return Mapping.model_validate(raw), text
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            loc = ".".join(str(p) for p in err["loc"])
            msg = err["msg"].removeprefix("Value error, ")
            if err["type"] == "extra_forbidden":
                msg = f"unknown setting.{did_you_mean(str(err['loc'][0]), Mapping.model_fields)}"
            problems.append(f"{loc}: {msg}")
        raise MappingError(f"{source}: " + "; ".join(problems)) from None
