"""Campaigns: what to send to whom, when, and how to measure it; YAML files; the table.

A campaign file (``kind: campaign`` may be left out)::

    name: autumn-newsletter
    description: The October newsletter, with a 20 % control group.
    audience: {segment: subscribers}        # or {rule: 'email_opt_in and count(orders) > 0'}
    channel: email                          # a configured channel
    content: autumn                         # templates/autumn/ next to the file, or
                                            # {subject: ..., text: ..., html: ...}
    schedule: {at: 2026-10-06T09:00:00Z}    # now (default) | {at} | {every: 7d, start}
                                            # | {cron: "0 9 * * MON", start}
    control_pct: 20                         # campaign control, drawn outside the global one
    control_salt: autumn-newsletter         # default: the name
    caps: [{channel: email, tag: marketing, limit: 2, window: 7d}]
    quiet_hours: {start: "21:00", end: "08:00"}   # in each contact's time zone
    send_time: optimised                    # null (at the run time) | fixed (send_hour) | optimised
    conversion: {window_days: 14, event: order}   # or an event type, e.g. app_purchase
    tags: [marketing, newsletter]
    transactional: false                    # true: no controls, no caps, consent "all" only
    on_cap: drop                            # or defer (by defer_hours, then expire)

Errors name the file, the line and the key (:class:`~segmentum.errors.CampaignFileError`).
A run of a campaign is named by its scheduled time, e.g. ``2026-10-06T09:00:00Z``
(:meth:`Schedule.run_at`): planning the same run again changes nothing.

Table ``campaigns``: name, spec_json (the campaign as JSON), source (the file it came
from), created_at, updated_at.
"""

from __future__ import annotations

import datetime as _dt
import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    ValidationError,
    field_validator,
    model_validator,
)

from segmentum.clock import to_utc
from segmentum.errors import CampaignFileError, NotFoundError, UsageError, did_you_mean

__all__ = [
    "Audience",
    "CapSpec",
    "Campaign",
    "CampaignStore",
    "Conversion",
    "InlineContent",
    "QuietHoursSpec",
    "Schedule",
    "load_campaign",
    "loads_campaign",
    "file_error",
    "format_duration",
    "parse_duration",
    "run_id",
]

TABLE = "campaigns"
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(w|d|h|m|s)\s*$")
_UNITS = {"w": 604800, "d": 86400, "h": 3600, "m": 60, "s": 1}
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")


def parse_duration(value: Any) -> _dt.timedelta:
    """``7d``, ``12h``, ``30m``, ``2w``, ``45s`` (or a timedelta) as a timedelta."""
    if isinstance(value, _dt.timedelta):
        return value
    match = _DURATION.match(str(value))
    if not match or float(match.group(1)) <= 0:
        raise ValueError(
            f"a duration is a positive number and a unit (w, d, h, m, s), e.g. 7d; got {value!r}"
        )
    return _dt.timedelta(seconds=float(match.group(1)) * _UNITS[match.group(2)])


def format_duration(value: _dt.timedelta) -> str:
    """A timedelta in the largest unit that divides it: ``7d``, ``36h``, ``90m``, ``45s``."""
    seconds = value.total_seconds()
    for unit in ("d", "h", "m"):
        if seconds % _UNITS[unit] == 0:
            return f"{int(seconds // _UNITS[unit])}{unit}"
    return f"{seconds:g}s"


Duration = Annotated[
    _dt.timedelta,
    BeforeValidator(parse_duration),
    PlainSerializer(format_duration, when_used="json"),
]


def run_id(at: _dt.datetime) -> str:
    """The name of the run scheduled at ``at``: ISO 8601 in UTC to the second."""
    return to_utc(at).strftime("%Y-%m-%dT%H:%M:%SZ")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Audience(_Model):
    """A saved segment or a rule (evaluated as of the run's time)."""

    segment: str | None = None
    rule: str | None = None

    @model_validator(mode="after")
    def _one(self) -> Audience:
        if (self.segment is None) == (self.rule is None):
            raise ValueError("give either segment or rule")
        return self

    def rule_text(self) -> str:
        return self.rule if self.rule is not None else f"in_segment({json.dumps(self.segment)})"


class InlineContent(_Model):
    """A message written in the campaign file itself (Jinja2 text)."""

    subject: str | None = None
    text: str | None = None
    html: str | None = None

    @model_validator(mode="after")
    def _some(self) -> InlineContent:
        if self.text is None and self.html is None:
            raise ValueError("inline content needs text or html")
        return self


class CapSpec(_Model):
    """At most ``limit`` messages on ``channel`` ("*" = any) with ``tag`` per ``window``."""

    channel: str = "*"
    tag: str | None = None
    limit: int = Field(ge=1)
    window: Duration


class QuietHoursSpec(_Model):
    """No message between ``start`` and ``end`` local time (may wrap midnight)."""

    start: _dt.time
    end: _dt.time


class Conversion(_Model):
    """What counts as a conversion: a completed order (or an event type) within the window."""

    window_days: float = Field(default=7, gt=0, le=365)
    event: str = "order"


class Schedule(_Model):
    """When a campaign runs: on demand (nothing given), once ``at`` a time, ``every`` an
    interval from ``start``, or on a five-field ``cron`` expression (UTC)."""

    at: _dt.datetime | None = None
    every: Duration | None = None
    cron: str | None = None
    start: _dt.datetime | None = None
    end: _dt.datetime | None = None

    @field_validator("at", "start", "end", mode="after")
    @classmethod
    def _utc(cls, v: _dt.datetime | None) -> _dt.datetime | None:
        return None if v is None else to_utc(v)

    @field_validator("cron")
    @classmethod
    def _cron(cls, v: str | None) -> str | None:
        if v is not None:
            from segmentum.activation.cron import Cron

            try:
                Cron.parse(v)
            except UsageError as exc:
                raise ValueError(str(exc)) from None
        return v

    @model_validator(mode="after")
    def _one(self) -> Schedule:
        given = [k for k in ("at", "every", "cron") if getattr(self, k) is not None]
        if len(given) > 1:
            raise ValueError(f"give one of at, every and cron, not {' and '.join(given)}")
        if self.every is not None and self.start is None:
            raise ValueError("an interval schedule needs a start time")
        return self

    @property
    def kind(self) -> str:
        for k in ("at", "every", "cron"):
            if getattr(self, k) is not None:
                return k
        return "now"

    def run_at(self, as_of: Any = None) -> _dt.datetime:
        """The time of the run due at ``as_of``: the latest scheduled time at or before it
        (on demand: ``as_of`` itself, to the second)."""
        T = to_utc(as_of)
        if self.kind == "now":
            return T.replace(microsecond=0)
        first = self.at if self.kind == "at" else self.start
        if first is not None and T < first:
            raise UsageError(
                f"The campaign's first run is at {run_id(first)}; nothing is due at {run_id(T)}.",
                hint=f"pass --as-of {run_id(first)} or later",
            )
        if self.end is not None:
            T = min(T, self.end)
        if self.kind == "at":
            return self.at
        if self.kind == "every":
            steps = (T - self.start) // self.every
            return self.start + steps * self.every
        from segmentum.activation.cron import Cron

        found = Cron.parse(self.cron).latest(T, not_before=self.start)
        if found is None:
            raise UsageError(
                f"The cron schedule {self.cron!r} has no run at or before {run_id(T)}."
            )
        return found


class Campaign(_Model):
    """One campaign (see the module doc for the file format)."""

    kind: Literal["campaign"] = "campaign"
    name: str
    description: str | None = None
    audience: Audience
    channel: str = "email"
    content: str | InlineContent
    schedule: Schedule = Field(default_factory=Schedule)
    control_pct: float = Field(default=10, ge=0, le=50)
    control_salt: str | None = None
    caps: tuple[CapSpec, ...] = ()
    quiet_hours: QuietHoursSpec | None = None
    send_time: Literal["optimised", "fixed"] | None = None
    send_hour: int | None = Field(default=None, ge=0, le=23)
    conversion: Conversion = Field(default_factory=Conversion)
    tags: tuple[str, ...] = ("marketing",)
    transactional: bool = False
    on_cap: Literal["drop", "defer"] = "drop"
    defer_hours: float = Field(default=24, gt=0, le=24 * 30)
    expires_hours: float | None = Field(default=None, gt=0)
    templates_dir: str | None = None  # where a named template is looked up (set on load)

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not _NAME.match(v):
            raise ValueError(
                "a name is 1-100 letters, digits, '-', '_' or '.', starting with a letter or digit"
            )
        return v

    @field_validator("control_salt")
    @classmethod
    def _salt(cls, v: str | None) -> str | None:
        from segmentum.activation.control_groups import check_salt

        if v is not None:
            try:
                check_salt(v)
            except UsageError as exc:
                raise ValueError(exc.message) from None
        return v

    @field_validator("schedule", mode="before")
    @classmethod
    def _now(cls, v: Any) -> Any:
        return {} if v in (None, "now") else v

    @model_validator(mode="after")
    def _fixed_hour(self) -> Campaign:
        if (self.send_time == "fixed") != (self.send_hour is not None):
            raise ValueError('send_time "fixed" and send_hour go together')
        return self

    @property
    def salt(self) -> str:
        return self.control_salt or self.name

    @property
    def effective_tags(self) -> tuple[str, ...]:
        """The tags, with "transactional" for a transactional campaign."""
        if self.transactional and "transactional" not in self.tags:
            return (*self.tags, "transactional")
        return self.tags

    def to_json(self) -> str:
        return self.model_dump_json(exclude_none=True)

    @classmethod
    def from_json(cls, text: str) -> Campaign:
        return cls.model_validate_json(text)


# -- files ------------------------------------------------------------------------------------
def file_error(
    message: str,
    *,
    file: str,
    key: str | None = None,
    line: int | None = None,
    column: int | None = None,
    hint: str | None = None,
) -> CampaignFileError:
    """A CampaignFileError whose text starts with where it is: ``FILE, line L: KEY: ...``."""
    where = file + (f", line {line}" if line else "") + (f": {key}" if key else "")
    return CampaignFileError(
        f"{where}: {message}", file=file, key=key, line=line, column=column, hint=hint
    )


def loads_campaign(text: str, file: str = "<string>", templates_dir: str | None = None) -> Campaign:
    """A campaign from YAML text; ``file`` names it in errors."""
    data, root = _yaml(text, file)
    if not isinstance(data, Mapping):
        raise file_error(
            "a campaign file is a mapping with keys name, audience, channel, content, ...",
            file=file,
        )
    if templates_dir is not None and isinstance(data.get("content"), str):
        data = {**data, "templates_dir": templates_dir}
    try:
        return Campaign.model_validate(data)
    except ValidationError as exc:
        raise _located(exc, root, file) from None


def load_campaign(path: str | Path) -> Campaign:
    """A campaign file read from disk; a named template is looked up in ``templates/``
    next to it."""
    path = Path(path)
    text = read_text(path)
    return loads_campaign(text, str(path), templates_dir=str((path.parent / "templates").resolve()))


def read_text(path: Path) -> str:
    """A YAML file's text, or a CampaignFileError naming it."""
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise file_error(f"can't read the file: {exc.strerror or exc}", file=str(path)) from None
    except UnicodeDecodeError:
        raise file_error("the file is not UTF-8 text", file=str(path)) from None


def _yaml(text: str, file: str) -> tuple[Any, Any]:
    try:
        return yaml.safe_load(text), yaml.compose(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise file_error(
            f"not valid YAML: {getattr(exc, 'problem', None) or exc}",
            file=file,
            line=mark.line + 1 if mark else None,
            column=mark.column + 1 if mark else None,
        ) from None


def _located(exc: ValidationError, root: Any, file: str) -> CampaignFileError:
    """The first validation error, with the key path and its line in the file."""
    err = exc.errors()[0]
    loc = [p for p in err["loc"] if not (isinstance(p, str) and p in _UNION_TAGS)]
    key = ".".join(str(p) for p in loc) or None
    line, column = _position(root, loc)
    message = err["msg"].removeprefix("Value error, ")
    hint = None
    if err["type"] == "extra_forbidden" and loc:
        fields = _fields_at(loc[:-1])
        hint = did_you_mean(str(loc[-1]), fields).strip() or f"keys here: {', '.join(fields)}"
        message = f"unknown key {loc[-1]!r}"
    elif err["type"] == "missing":
        message = f"missing key {loc[-1]!r}" if loc else message
    return file_error(message, file=file, key=key, line=line, column=column, hint=hint)


_UNION_TAGS = {"str", "InlineContent", "function-after[_one(), Schedule]"}


def _fields_at(loc: list) -> list[str]:
    model: Any = Campaign
    for part in loc:
        ann = (
            model.model_fields[part].annotation
            if part in getattr(model, "model_fields", {})
            else None
        )
        model = next(
            (a for a in getattr(ann, "__args__", (ann,)) if hasattr(a, "model_fields")), ann
        )
    return list(getattr(model, "model_fields", {}))


def _position(node: Any, loc: list) -> tuple[int | None, int | None]:
    """Line and column (1-based) of the key (or item) that ``loc`` reaches deepest."""
    if node is None:
        return None, None
    mark = node.start_mark
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            pair = next(((k, v) for k, v in node.value if k.value == str(part)), None)
            if pair is None:
                break
            mark, node = pair[0].start_mark, pair[1]
        elif (
            isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value)
        ):
            node = node.value[part]
            mark = node.start_mark
        else:
            break
    return mark.line + 1, mark.column + 1


# -- the table --------------------------------------------------------------------------------
class CampaignStore:
    """The campaigns saved in a workspace (table ``campaigns``)."""

    def __init__(self, ws) -> None:
        self.ws = ws
        self.wh = ws.warehouse

    def _rows(self) -> list[dict]:
        if not self.wh.has_table(TABLE):
            return []
        return self.wh.table(TABLE).order_by("name").to_pyarrow().to_pylist()

    def names(self) -> list[str]:
        return [r["name"] for r in self._rows()]

    def all(self) -> list[tuple[Campaign, dict]]:
        """Every campaign with its row (source, created_at, updated_at)."""
        return [(Campaign.from_json(r["spec_json"]), r) for r in self._rows()]

    def get(self, name: str) -> Campaign | None:
        for r in self._rows():
            if r["name"] == name:
                return Campaign.from_json(r["spec_json"])
        return None

    def require(self, name: str) -> Campaign:
        found = self.get(name)
        if found is None:
            names = self.names()
            hint = did_you_mean(name, names).strip() or (
                f"campaigns: {', '.join(names[:20])}"
                if names
                else "create one with `segmentum campaign create FILE` or `segmentum apply DIR`"
            )
            raise NotFoundError(f"No campaign named {name!r}.", hint=hint)
        return found

    def save(self, campaign: Campaign, source: str | None = None, *, replace: bool = False) -> str:
        """Insert or (``replace``) update a campaign: "created", "updated" or "unchanged"."""
        import pyarrow as pa

        from segmentum.data.schema import STR, TS

        old = {r["name"]: r for r in self._rows()}.get(campaign.name)
        if old is not None and not replace:
            raise UsageError(
                f"A campaign named {campaign.name!r} already exists.",
                hint="pass --replace to change it (its past runs stay in the delivery log)",
            )
        spec = campaign.to_json()
        if old is not None and old["spec_json"] == spec:
            return "unchanged"
        now = _dt.datetime.now(_dt.UTC)
        schema = {"name": STR, "spec_json": STR, "source": STR, "created_at": TS, "updated_at": TS}
        row = {
            "name": campaign.name,
            "spec_json": spec,
            "source": source,
            "created_at": old["created_at"] if old else now,
            "updated_at": now,
        }
        import ibis

        self.wh.create_table(TABLE, schema)
        with self.wh.transaction():
            self.wh.delete_where(TABLE, "name", [campaign.name])
            self.wh.insert(
                TABLE, pa.Table.from_pylist([row], schema=ibis.schema(schema).to_pyarrow())
            )
        return "updated" if old is not None else "created"

    def delete(self, name: str) -> None:
        self.require(name)
        self.wh.delete_where(TABLE, "name", [name])
