"""Workspace settings: which warehouse a workspace is, and how to reach it.

A workspace is named by ``--workspace PATH`` or ``SEGMENTUM_WORKSPACE`` (default
``./segmentum.duckdb``):

* a DuckDB file path (``shop.duckdb``) - the embedded default;
* a YAML file (``workspace.yaml``) describing another backend, e.g. Spark::

      backend: spark
      spark:
        master: "spark://cluster:7077"      # or local[2]
        database: segmentum                  # catalog database holding the tables
        conf: {spark.sql.shuffle.partitions: "200"}
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from segmentum.errors import ConfigError

DEFAULT_WORKSPACE = "segmentum.duckdb"

__all__ = ["WorkspaceConfig", "SparkSettings", "SparkTable", "DEFAULT_WORKSPACE", "resolve_config"]


class SparkTable(BaseModel):
    """Existing data read as one canonical table: files by ``path`` and ``format``
    (parquet, delta, orc, ... - whatever the session can read) or a catalog ``table``
    (e.g. an Iceberg table ``lake.crm.orders`` of a catalog set up in ``conf``)."""

    model_config = ConfigDict(extra="forbid")

    path: str | None = None
    format: str = "parquet"
    table: str | None = None
    options: dict[str, str] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _one_source(self) -> SparkTable:
        if bool(self.path) == bool(self.table):
            raise ValueError("give either path (with format) or table, not both or neither")
        return self


class SparkSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    master: str = "local[2]"
    database: str = "segmentum"
    app_name: str = "segmentum"
    # "hive" keeps table definitions in a metastore (clusters); "in-memory" is Spark's
    # default, and Segmentum re-registers the tables it wrote from the database's folder
    catalog: Literal["in-memory", "hive"] = "in-memory"
    log_level: str = "ERROR"
    conf: dict[str, str] = Field(default_factory=dict)
    tables: dict[str, SparkTable] = Field(default_factory=dict)


class WorkspaceConfig(BaseModel):
    """Where the warehouse is. ``backend`` picks the engine; the rest configures it."""

    model_config = ConfigDict(extra="forbid")

    backend: Literal["duckdb", "spark"] = "duckdb"
    path: str = DEFAULT_WORKSPACE
    # DuckDB's buffer limit; with Arrow buffers and Python on top, a whole process stays
    # under 4 GiB at 1M contacts. Set SEGMENTUM_MEMORY_LIMIT (e.g. 16GB) on a bigger machine.
    memory_limit: str | None = Field(
        default_factory=lambda: os.environ.get("SEGMENTUM_MEMORY_LIMIT", "2500MB")
    )
    threads: int | None = None
    spark: SparkSettings = Field(default_factory=SparkSettings)


def resolve_config(workspace: str | os.PathLike | WorkspaceConfig | None = None) -> WorkspaceConfig:
    """Turn ``--workspace`` / ``SEGMENTUM_WORKSPACE`` / the default into a config."""
    if isinstance(workspace, WorkspaceConfig):
        return workspace
    target = str(workspace or os.environ.get("SEGMENTUM_WORKSPACE") or DEFAULT_WORKSPACE)
    if target.endswith((".yaml", ".yml")):
        path = Path(target)
        if not path.exists():
            raise ConfigError(f"Workspace config {target} does not exist.")
        try:
            raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
            cfg = WorkspaceConfig.model_validate(raw)
        except (yaml.YAMLError, ValidationError) as exc:
            raise ConfigError(f"Workspace config {target} is not valid: {exc}") from None
        if cfg.backend == "duckdb" and not Path(cfg.path).is_absolute():
            cfg.path = str(path.parent / cfg.path)
        return cfg
    return WorkspaceConfig(backend="duckdb", path=target)
