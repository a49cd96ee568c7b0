"""Channel settings: the ``channels:`` section of a workspace-side YAML file.

The file is ``segmentum.yaml`` in the workspace's folder, or one given with
``--channels FILE`` / ``load_settings(ws, path)``. Secrets are never in it: it names the
environment variables that hold them (``password_env``, ``secret_env``)::

    timezone: Europe/Warsaw              # contacts without a time zone are in this one
    caps:                                # workspace-wide caps, on top of each campaign's
      - {channel: "*", tag: marketing, limit: 4, window: 7d}
    channels:
      email:
        type: smtp                       # smtp | webhook | outbox
        host: smtp.example.com
        port: 587
        security: starttls               # starttls | ssl | none
        username: shop
        password_env: SMTP_PASSWORD
        from: "Shop <news@shop.example>"
        unsubscribe:                     # List-Unsubscribe (RFC 8058 one-click) on marketing mail
          url: "https://shop.example/unsubscribe?t={token}"
          secret_env: UNSUBSCRIBE_SECRET
      sms:
        type: webhook
        url: https://sms-gateway.example/send
        secret_env: SMS_WEBHOOK_SECRET   # HMAC-SHA256 key for the signature header
        address_field: phone
        consent_field: sms_opt_in
      archive:
        type: outbox
        path: outbox.jsonl               # relative to this file's folder

Every fault is a :class:`~segmentum.errors.ConfigError` naming the file, the key path and
its line.
"""

from __future__ import annotations

import datetime as _dt
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from segmentum.errors import ConfigError, did_you_mean

__all__ = [
    "SETTINGS_FILE",
    "SmtpSpec",
    "WebhookSpec",
    "OutboxSpec",
    "UnsubscribeSpec",
    "CapSetting",
    "SendSettings",
    "settings_path",
    "load_settings",
    "parse_window",
    "secret",
]

SETTINGS_FILE = "segmentum.yaml"
_WINDOW = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d|w)\s*$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_window(value: Any) -> _dt.timedelta:
    """A duration: a timedelta, seconds, or text such as ``30m``, ``36h``, ``7d``, ``2w``."""
    if isinstance(value, _dt.timedelta):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return _dt.timedelta(seconds=value)
    match = _WINDOW.match(str(value))
    if not match:
        raise ValueError(f"a duration is a number and a unit (s, m, h, d, w), e.g. 7d; got {value!r}")
    return _dt.timedelta(**{_UNITS[match.group(2)]: float(match.group(1))})


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class UnsubscribeSpec(_Spec):
    """The one-click unsubscribe link: an https URL with ``{token}``, and its signing key."""

    url: str
    secret_env: str
    mailto: str | None = None

    @field_validator("url")
    @classmethod
    def _https(cls, url: str) -> str:
        if not url.startswith("https://") or "{token}" not in url:
            raise ValueError('the unsubscribe url is https:// and contains "{token}"')
        return url


class SmtpSpec(_Spec):
    """An SMTP server (e-mail)."""

    type: Literal["smtp"]
    host: str
    port: int = Field(default=587, ge=1, le=65535)
    security: Literal["starttls", "ssl", "none"] = "starttls"
    username: str | None = None
    password_env: str | None = None
    from_: str = Field(alias="from")
    reply_to: str | None = None
    timeout: float = Field(default=30, gt=0)
    message_id_domain: str | None = None
    unsubscribe: UnsubscribeSpec | None = None
    address_field: str = "email"
    consent_field: str = "email_opt_in"


class WebhookSpec(_Spec):
    """An HTTP endpoint taking one JSON message per POST (SMS, push, messengers)."""

    type: Literal["webhook"]
    url: str
    secret_env: str
    address_field: str
    consent_field: str
    timeout: float = Field(default=10, gt=0)
    retries: int = Field(default=3, ge=0, le=10)
    backoff: float = Field(default=0.5, ge=0)
    max_backoff: float = Field(default=30, gt=0)
    headers: dict[str, str] = Field(default_factory=dict)

    @field_validator("url")
    @classmethod
    def _http(cls, url: str) -> str:
        if not url.startswith(("https://", "http://")):
            raise ValueError("a webhook url starts with https:// (or http://)")
        return url


class OutboxSpec(_Spec):
    """A JSON Lines file, one line per message (for anything else to pick up)."""

    type: Literal["outbox"]
    path: str
    address_field: str = "email"
    consent_field: str = "email_opt_in"


ChannelSpec = Annotated[SmtpSpec | WebhookSpec | OutboxSpec, Field(discriminator="type")]


class CapSetting(_Spec):
    """A workspace-wide frequency cap (see ``activation.caps``)."""

    channel: str = "*"
    tag: str | None = None
    limit: int = Field(ge=1)
    window: _dt.timedelta

    @field_validator("window", mode="before")
    @classmethod
    def _window(cls, value: Any) -> _dt.timedelta:
        return parse_window(value)


class SendSettings(_Spec):
    """The send layer's settings; ``file`` is where they were read from (None: defaults)."""

    timezone: str = "UTC"
    caps: tuple[CapSetting, ...] = ()
    channels: dict[str, ChannelSpec] = Field(default_factory=dict)
    file: str | None = None

    @field_validator("timezone")
    @classmethod
    def _zone(cls, name: str) -> str:
        try:
            ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {name!r}: use an IANA name, e.g. Europe/London") from None
        return name

    @property
    def folder(self) -> Path:
        """The folder relative paths (an outbox's) are read from."""
        return Path(self.file).resolve().parent if self.file else Path.cwd()


def settings_path(ws) -> Path | None:
    """``segmentum.yaml`` next to a DuckDB workspace file (None for other backends);
    ``ws`` is a workspace or its WorkspaceConfig."""
    config = getattr(ws, "config", ws)
    if config.backend != "duckdb":
        return None
    return Path(config.path).resolve().parent / SETTINGS_FILE


def load_settings(ws=None, path: str | os.PathLike | None = None) -> SendSettings:
    """The settings from ``path``, else from the ``segmentum.yaml`` of ``ws`` (a workspace
    or its config); defaults (no channels, UTC) when neither names a file that exists."""
    if path is None:
        found = settings_path(ws) if ws is not None else None
        if found is None or not found.exists():
            return SendSettings()
        path = found
    file = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"Cannot read the settings file {file}: {exc.strerror or exc}.", file=file) from None
    try:
        data, root = yaml.safe_load(text), yaml.compose(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark else None
        raise ConfigError(f"{file}, line {line}: not valid YAML: {getattr(exc, 'problem', exc)}",
                          file=file, line=line) from None
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise ConfigError(f"{file}: the settings file is a mapping (timezone, caps, channels).", file=file)
    try:
        return SendSettings.model_validate({**data, "file": file})
    except ValidationError as exc:
        raise _located(exc, root, file) from None


def secret(env: str | None, *, file: str | None, key: str) -> str | None:
    """The value of the environment variable a setting names (ConfigError when unset)."""
    if env is None:
        return None
    value = os.environ.get(env)
    if not value:
        where = f"{file}: {key}" if file else key
        raise ConfigError(
            f"{where} names the environment variable {env}, which is not set.",
            hint=f"export {env}=... before sending (secrets never go in the file)",
            file=file, key=key,
        )
    return value


# -- located errors ----------------------------------------------------------------------
_CHOICES = {"smtp": SmtpSpec, "webhook": WebhookSpec, "outbox": OutboxSpec}


def _located(exc: ValidationError, root: Any, file: str) -> ConfigError:
    """The first validation error as ConfigError with its key path and line."""
    err = exc.errors()[0]
    loc = [p for p in err["loc"] if p not in _CHOICES]  # pydantic's union tags
    key = ".".join(str(p) for p in loc)
    message = err["msg"].removeprefix("Value error, ")
    hint = None
    if err["type"] == "extra_forbidden":
        allowed = _keys_at(err["loc"][:-1])
        message = f"unknown key {loc[-1]!r}"
        hint = did_you_mean(str(loc[-1]), allowed).strip() or f"keys here: {', '.join(allowed)}"
    elif err["type"] == "missing":
        message = f"missing key {loc[-1]!r}"
    elif err["type"] == "union_tag_invalid":
        message = "type is one of smtp, webhook, outbox"
    line = _line(root, loc)
    where = file + (f", line {line}" if line else "") + (f": {key}" if key else "")
    return ConfigError(f"{where}: {message}", hint=hint, file=file, key=key or None, line=line)


def _keys_at(loc: tuple) -> list[str]:
    """The keys the model at ``loc`` accepts (by alias)."""
    model: Any = SendSettings
    for part in loc:
        if part in _CHOICES:
            model = _CHOICES[part]
        elif isinstance(part, str) and part in getattr(model, "model_fields", {}):
            ann = model.model_fields[part].annotation
            model = next((a for a in getattr(ann, "__args__", ()) if hasattr(a, "model_fields")), ann)
    fields = getattr(model, "model_fields", {})
    return [f.alias or name for name, f in fields.items() if name != "file"]


def _line(node: Any, loc: list) -> int | None:
    """The 1-based line of the deepest key of ``loc`` found in the YAML node tree."""
    line = node.start_mark.line + 1 if node is not None else None
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            pair = next(((k, v) for k, v in node.value if k.value == str(part)), None)
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            pair = (node.value[part], node.value[part])
        else:
            pair = None
        if pair is None:
            break
        line, node = pair[0].start_mark.line + 1, pair[1]
    return line
