"""The segment benchmark's baselines compute what the rules say.

On a generated 20k-contact retailer: every rule text parses; the pandas iPhone rule finds the
generator's planted ``apple_fan`` persona (precision and recall >= 0.9); the PostgreSQL
queries return exactly the pandas member sets (slow: starts a throwaway PostgreSQL 15
cluster); and the engine returns the same members again (slow: loads all six tables).
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

from segmentum import open_workspace
from segmentum.data.generate import generate
from segmentum.segments.parser import parse

BENCH = Path(__file__).resolve().parents[2] / "benchmarks"
sys.path.insert(0, str(BENCH))

import postgres  # noqa: E402
from segments_baselines import (  # noqa: E402
    AS_OF,
    IPHONE,
    TWENTY,
    export_scores,
    ground_truth_check,
    load_pandas,
    load_postgres,
    members_digest,
    run_pandas,
    run_postgres,
)
from segments_rules import RULES, SEGMENTS, order  # noqa: E402

N = 20_000


@pytest.fixture(scope="module")
def bench(tmp_path_factory):
    """Generated data (with rfm / clv exported from a workspace) and the workspace."""
    base = tmp_path_factory.mktemp("bench")
    data = base / "data"
    generate(data, contacts=N, seed=0)
    ws = open_workspace(base / "ws.duckdb")
    for kind in ("products", "contacts", "orders", "order_items"):
        ws.load(kind, data / f"{kind}.parquet")
    export_scores(ws, data, AS_OF)
    yield data, ws
    ws.close()


@pytest.fixture(scope="module")
def pandas_run(bench):
    data, _ = bench
    frames, _ = load_pandas(data)
    return run_pandas(frames, IPHONE + TWENTY, AS_OF)


def test_twenty_segments_every_rule_parses():
    assert len(SEGMENTS) == 20 and "iphone-accessories" in RULES
    for name, rule in RULES.items():
        parse(rule.text)  # raises a located SegmentSyntaxError otherwise
        assert "%(T)s" in rule.sql, name


def test_in_segment_names_exist_and_come_first():
    deps = {n: re.findall(r'in_segment\("([^"]+)"\)', r.text) for n, r in SEGMENTS.items()}
    assert any(deps.values())
    ordered = order()
    for name, names in deps.items():
        for dep in names:
            assert dep in SEGMENTS
            assert ordered.index(dep) < ordered.index(name)


def test_iphone_rule_finds_the_planted_apple_fans(bench, pandas_run):
    data, _ = bench
    gt = ground_truth_check(data, pandas_run.members["iphone-accessories"])
    assert gt["precision"] >= 0.9 and gt["recall"] >= 0.9, gt


def test_every_segment_has_members_but_not_everyone(pandas_run):
    for name, members in pandas_run.members.items():
        assert 0 < len(members) < N // 2, (name, len(members))


def test_digest_is_order_free():
    assert members_digest(["b", "a"]) == members_digest({"a", "b"}) != members_digest(["a"])


@pytest.mark.slow
def test_postgres_returns_the_pandas_members(bench, pandas_run):
    pytest.importorskip("psycopg", reason="psycopg is not installed")
    if not postgres.available():
        pytest.skip(f"PostgreSQL 15 is not installed ({postgres.PG_BIN}/initdb is missing)")
    data, _ = bench
    with postgres.Cluster.start() as pg:  # a new folder under /tmp, removed on exit
        loaded = load_postgres(data, pg.dsn)
        assert loaded["rows"] > N
        res = run_postgres(pg.dsn, IPHONE + TWENTY, AS_OF)
    for name in IPHONE + TWENTY:
        assert res.members[name] == pandas_run.members[name], name


@pytest.mark.slow
def test_engine_returns_the_pandas_members(bench, pandas_run):
    from segmentum.segments import SegmentEngine

    data, ws = bench
    for kind in ("events", "deals"):
        ws.load(kind, data / f"{kind}.parquet")
    engine = SegmentEngine(ws)
    for name in order():
        engine.create(name, RULES[name].text)
    for name in IPHONE + TWENTY:
        got = engine.members(RULES[name].text, as_of=AS_OF).to_pyarrow().column(0).to_pylist()
        assert set(got) == pandas_run.members[name], name
