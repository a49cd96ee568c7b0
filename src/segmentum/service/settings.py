"""ServeSettings: how ``segmentum serve`` runs, from options, ``SEGMENTUM_SERVE_*`` variables
or defaults (pydantic-settings; e.g. ``SEGMENTUM_SERVE_PORT=9000``).

Files next to the workspace ``W`` (a DuckDB file): ``W.intake/`` (the intake log and its
de-duplication keys), ``W.keys.json`` (API keys), ``W.serve.json`` (while serving).
"""

from __future__ import annotations

from pathlib import Path

import yaml
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from segmentum.errors import ConfigError
from segmentum.live.mapping import DEFAULT_EVENT_TYPES, MappingConfig
from segmentum.live.spec import Limits

__all__ = ["ServeSettings"]


class ServeSettings(BaseSettings):
    """Every setting of the service; the defaults are the documented limits."""

    model_config = SettingsConfigDict(env_prefix="SEGMENTUM_SERVE_", extra="forbid")

    workspace: str = Field(default="segmentum.duckdb", description="the DuckDB workspace file")
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)
    intake_dir: str | None = Field(default=None, description="default: <workspace>.intake")
    # the Segment HTTP Tracking API's limits
    max_event_bytes: int = 32 * 1024
    max_batch_bytes: int = 500 * 1024
    max_batch_events: int = 2500
    dedup_days: float = Field(default=7.0, ge=7.0, description="messageIds remembered at least this long")
    # overload: beyond these a request gets 429 with Retry-After instead of memory
    max_inflight: int = Field(default=256, ge=1, description="tracking requests being handled at once")
    max_backlog: int = Field(default=5_000_000, ge=1, description="events stored but not yet applied")
    consumer_batch: int = Field(default=50_000, ge=1, description="log records applied per run, at most")
    event_types: str | None = Field(
        default=None, description="YAML file: Segment event name (or page/screen/group) -> event type"
    )
    fsync: bool = Field(default=True, description="off only for throwaway test servers")
    log_retention_hours: float = Field(default=24.0, ge=0)
    # live segments (segmentum.service.live)
    live: bool = Field(default=True, description="keep saved segments up to date from stored events")
    live_tick_seconds: float = Field(default=0.2, gt=0, description="how often due timers are looked for")
    live_lag_alarm_seconds: float = Field(default=60.0, gt=0, description="alarm when a segment lags more")
    live_alarm_webhook: str | None = Field(default=None, description="URL alarms are POSTed to")
    live_alarm_secret: str | None = Field(default=None, description="HMAC-SHA256 key signing alarm posts")
    live_refresh_minutes: float = Field(default=60.0, ge=0, description="safety-net full refresh (0: off)")
    live_scores_cron: str | None = Field(default="0 3 * * *", description="RFM and CLV recompute, cron in UTC")

    @property
    def workspace_path(self) -> Path:
        return Path(self.workspace).resolve()

    @property
    def intake_path(self) -> Path:
        return Path(self.intake_dir).resolve() if self.intake_dir else Path(f"{self.workspace_path}.intake")

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def limits(self) -> Limits:
        return Limits(self.max_event_bytes, self.max_batch_bytes, self.max_batch_events)

    def mapping(self) -> MappingConfig:
        """The event-type mapping: the defaults with the YAML file's entries over them."""
        types = dict(DEFAULT_EVENT_TYPES)
        if self.event_types:
            path = Path(self.event_types)
            try:
                raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
            except (OSError, yaml.YAMLError) as exc:
                raise ConfigError(f"Cannot read the event types file {path}: {exc}", file=str(path)) from None
            if not isinstance(raw, dict) or not all(
                isinstance(k, str) and isinstance(v, str) and v.strip() for k, v in raw.items()
            ):
                raise ConfigError(
                    f"{path} must map event names to event types, e.g. 'Product Viewed: product_view'.",
                    file=str(path),
                )
            types.update({k: v.strip() for k, v in raw.items()})
        return MappingConfig(event_types=types)
