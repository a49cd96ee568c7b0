"""Control groups: stable buckets in Python and in the warehouse, epochs, assignments."""

from __future__ import annotations

import hashlib

import ibis
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from segmentum.activation.control_groups import (
    ControlGroups,
    Epoch,
    arm_expr,
    bucket,
    bucket_expr,
    threshold,
)
from segmentum.errors import UsageError


def test_bucket_is_sha256_mod_10000():
    digest = hashlib.sha256(b"s:C0000001").hexdigest()
    assert bucket("s", "C0000001") == int(digest[:15], 16) % 10000
    assert bucket("s", "C0000001") != bucket("t", "C0000001")


@settings(max_examples=30, deadline=None)
@given(
    st.lists(st.text(min_size=1, max_size=12), min_size=1, max_size=20),
    st.text(st.characters(blacklist_categories=("Cc", "Cs")), min_size=1, max_size=8).filter(str.strip),
)
def test_warehouse_buckets_equal_python_buckets(ids, salt):
    t = ibis.memtable(pa.table({"contact_id": pa.array(ids, pa.string())}))
    got = ibis.duckdb.connect().execute(t.mutate(b=bucket_expr(salt, t.contact_id)))
    assert list(got.b) == [bucket(salt, c) for c in ids]


def test_groups_do_not_change_as_the_base_grows():
    con = ibis.duckdb.connect()
    epoch = Epoch(1, "g", 5.0, None)

    def arms(n):
        t = ibis.memtable({"contact_id": [f"C{i:07d}" for i in range(n)]})
        df = con.execute(t.mutate(arm=arm_expr(t.contact_id, epoch, "camp", 10)))
        return dict(zip(df.contact_id, df.arm, strict=True))

    small, big = arms(2000), arms(20000)
    assert all(big[c] == a for c, a in small.items())
    shares = {
        a: sum(v == a for v in big.values()) / len(big)
        for a in ("global_control", "control", "treatment")
    }
    assert shares["global_control"] == pytest.approx(0.05, abs=0.006)
    # the campaign control is 10% of those outside the global control
    assert shares["control"] == pytest.approx(0.95 * 0.10, abs=0.007)
    t = ibis.memtable({"contact_id": list(big)})
    assert set(
        con.execute(t.mutate(a=arm_expr(t.contact_id, epoch, "camp", 10, transactional=True))).a
    ) == {"treatment"}


@pytest.mark.parametrize("salt", ["", "  ", "a\x00b", "tab\there", "x" * 201])
def test_bad_salts(salt):
    with pytest.raises(UsageError, match="salt"):
        bucket_expr(salt, ibis.literal("C1"))


def test_threshold():
    assert (threshold(5), threshold(0.01), threshold(100)) == (500, 1, 10000)
    with pytest.raises(UsageError, match="between 0 and 100"):
        threshold(101)


def test_epochs_and_assignments(ws):
    cg = ControlGroups(ws)
    assert cg.current() is None and cg.epochs() == []
    first = cg.start_epoch(5, salt="a", at="2026-01-01")
    assert cg.start_epoch(5, salt="a", at="2026-02-01") == first  # same setting: same epoch
    second = cg.start_epoch(5, at="2026-06-01")  # a new random salt
    assert second.epoch == 2 and second.salt not in ("a", "") and len(second.salt) == 16
    assert cg.current("2026-03-01") == first and cg.current("2026-07-01") == second
    assert cg.current("2025-12-31") is None
    with pytest.raises(UsageError, match="can't start before it"):
        cg.start_epoch(3, salt="b", at="2026-05-01")
    arms = ibis.memtable(
        {"contact_id": ["A", "B", "C"], "arm": ["control", "treatment", "global_control"]}
    )
    assert (
        cg.record("camp", "2026-07-02T09:00:00Z", arms, second.epoch, "2026-07-02T09:00:00Z") == 2
    )
    assert cg.record("camp", "2026-07-02T09:00:00Z", arms, second.epoch, "2026-07-03") == 0
    rows = cg.assignments("camp").order_by("contact_id").to_pyarrow().to_pylist()
    assert [(r["contact_id"], r["arm"], r["epoch"]) for r in rows] == [
        ("A", "control", 2),
        ("C", "global_control", 2),
    ]
    assert str(rows[0]["assigned_at"]).startswith("2026-07-02 09:00")
    # a new epoch leaves the old assignments recorded
    cg.start_epoch(10, salt="c", at="2026-08-01")
    assert cg.assignments("camp").count().execute() == 2
