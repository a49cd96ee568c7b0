"""ServiceState: everything one running service holds, opened and closed in order.

Opening takes the workspace (DuckDB's write lock, on the workspace thread), the intake
log's lock, the de-duplication keys (re-adding any the log holds past their checkpoint)
and the key store; ``start()`` starts the consumer. Closing stops the consumer after its
current run, writes what the log has waiting, and closes the workspace.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from segmentum.errors import ConfigError
from segmentum.live.dedup import DAY, Deduplicator
from segmentum.live.intake import Intake
from segmentum.live.mapping import MappingConfig
from segmentum.live.segment_log import SegmentLog
from segmentum.live.spec import Limits
from segmentum.service.access import WorkspaceAccess
from segmentum.service.consumer import Consumer
from segmentum.service.keys import KeyStore, keys_path
from segmentum.service.settings import ServeSettings

__all__ = ["ServiceState"]


@dataclass
class ServiceState:
    settings: ServeSettings
    access: WorkspaceAccess
    log: SegmentLog
    intake: Intake
    consumer: Consumer
    keys: KeyStore
    limits: Limits
    mapping: MappingConfig
    live: Any = None  # segmentum.service.live.LiveService, when settings.live

    @classmethod
    def open(cls, settings: ServeSettings) -> ServiceState:
        from segmentum.workspace import open_workspace

        path = settings.workspace_path
        if path.suffix in (".yaml", ".yml"):
            raise ConfigError(
                f"segmentum serve needs a DuckDB workspace; {path.name} is a workspace YAML.",
                hint="Tracked events are validated and stored by the embedded DuckDB warehouse.",
            )
        mapping = settings.mapping()
        access = WorkspaceAccess(lambda: open_workspace(str(path)))
        log = intake = None
        try:
            log = SegmentLog(
                settings.intake_path / "log",
                fsync=settings.fsync,
                retention_seconds=settings.log_retention_hours * 3600,
            )
            dedup = Deduplicator(settings.intake_path / "dedup", window_seconds=settings.dedup_days * DAY)
            intake = Intake(log, dedup)
            intake.recover()
        except BaseException:
            for part in (intake, log, access):
                if part is not None:
                    part.close()
            raise
        consumer = Consumer(log, access, mapping, batch=settings.consumer_batch)
        live = None
        if settings.live:
            from segmentum.service.live import LiveService

            try:
                live = LiveService(settings, access, log, consumer)
            except BaseException:
                for part in (intake, log, access):
                    part.close()
                raise
        return cls(settings, access, log, intake, consumer, KeyStore(keys_path(path)),
                   settings.limits(), mapping, live)

    def start(self) -> None:
        if self.live is not None:
            self.live.start()  # baseline and timers first: the consumer's first run is evaluated
        self.consumer.start()

    def close(self) -> None:
        self.consumer.stop()
        if self.live is not None:
            self.live.stop()
        self.intake.close()
        self.log.close()
        self.access.close()

    def health(self) -> dict:
        out = {"status": "ok", "log": self.log.stats(), "consumer": self.consumer.stats()}
        if self.live is not None:
            out["live"] = self.live.stats()
        return out
