"""Shared fixtures for analytics tests: small real DuckDB workspaces built from rows.

``make_ws`` (in tests/conftest.py): ``make_ws(contacts=[...], orders=[...], order_items=[...], products=[...], events=[...],
rfm=DataFrame)`` opens ``tmp_path/ws0.duckdb`` and inserts the rows (dicts; missing canonical
columns are null, lineage columns are filled in). Tables other than the canonical six are
written as given with ``replace_table``. ``ws_builder(path, **tables)`` does the same at a
given path, for module-scoped fixtures.
"""

from __future__ import annotations

import pytest

from tests.workspaces import LOADED_AT, build_workspace, canonical_frame  # noqa: E402,F401


@pytest.fixture(scope="session")
def ws_builder():
    """``build(path, **tables)`` for module-scoped workspaces (caller closes them)."""
    return build_workspace


