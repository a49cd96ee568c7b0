"""ServeSettings: defaults, SEGMENTUM_SERVE_* variables, the event-types file."""

from __future__ import annotations

import pytest

from segmentum.errors import ConfigError
from segmentum.service.settings import ServeSettings


def test_defaults_and_variables(monkeypatch, tmp_path):
    s = ServeSettings(workspace=str(tmp_path / "w.duckdb"))
    assert (s.host, s.port, s.max_event_bytes, s.max_batch_bytes, s.max_batch_events, s.dedup_days) == (
        "127.0.0.1", 8000, 32768, 512000, 2500, 7.0)
    assert s.intake_path == tmp_path / "w.duckdb.intake" and s.url == "http://127.0.0.1:8000"
    monkeypatch.setenv("SEGMENTUM_SERVE_PORT", "9001")
    monkeypatch.setenv("SEGMENTUM_SERVE_MAX_INFLIGHT", "8")
    s = ServeSettings()
    assert (s.port, s.max_inflight) == (9001, 8)
    with pytest.raises(ValueError):
        ServeSettings(dedup_days=1)  # never less than the promised 7 days


def test_event_types_file(tmp_path):
    path = tmp_path / "types.yaml"
    path.write_text("Viewed Item: product_view\npage: web_page\n")
    types = ServeSettings(event_types=str(path)).mapping().event_types
    assert types["Viewed Item"] == "product_view" and types["page"] == "web_page"
    assert types["Email Opened"] == "email_open"  # the defaults stay
    path.write_text("- not a mapping\n")
    with pytest.raises(ConfigError, match="must map event names"):
        ServeSettings(event_types=str(path)).mapping()
    with pytest.raises(ConfigError, match="Cannot read"):
        ServeSettings(event_types=str(tmp_path / "missing.yaml")).mapping()
