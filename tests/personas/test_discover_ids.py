"""Persona clusters keep their ids and names across runs while they describe the same group.

On the discovery test shop (Home & Garden in shops, Fashion, Car care, never bought) a run
is saved; discovery again with other seeds, or after the car-care buyers have grown from
the smallest group to the largest, finds the same groups under the same ids and names
(numbering by size would have renumbered them), and the saved model is refreshed in place.
A run that really finds other groups gives them new ids, never an old one, and saving it is
refused while segments read the model, unless replaced (with the impact per segment).
Templates written for 3-level RFM are "not ready" when the workspace's RFM has 5 levels.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from segmentum.analytics.rfm import compute_rfm
from segmentum.errors import ModelConflictError
from segmentum.personas.discover import match_clusters, number_clusters, Previous
from segmentum.personas.library import load_library
from segmentum.personas.needs import missing_data
from segmentum.personas.run import discover_personas, save_personas, save_segments
from segmentum.segments import SegmentEngine
from segmentum.workspace import open_workspace
from tests.personas.test_discover_cli import T, kind_of, shop_rows
from tests.test_cli import run
from tests.workspaces import build_workspace


def test_matching_is_one_to_one_on_scaled_distance_with_a_threshold():
    old = {3: {"a": 0.0, "b": 0.0}, 5: {"a": 4.0, "b": 0.0}, 9: {"a": 0.0, "b": 8.0}}
    new = [{"a": 3.9, "b": 0.2}, {"a": 0.1}, {"a": 2.0, "b": 2.0}]  # b missing: 0
    scales = {"a": 1.0, "b": 2.0}
    assert match_clusters(old, new, scales) == {0: 5, 1: 3}  # 9 is 3.6 from the third: new
    assert match_clusters(old, new, scales, threshold=3.7) == {0: 5, 1: 3, 2: 9}
    # one-to-one: two new clusters near the same old one, only the closer gets its id
    assert match_clusters({1: {"a": 0.0}}, [{"a": 0.5}, {"a": 0.2}], {"a": 1.0}) == {1: 1}


def test_new_clusters_get_ids_after_every_id_used_before_largest_first():
    sizes = np.array([10, 50, 30])
    centres = np.zeros((3, 1))
    cents = [{"a": 0.0}, {"a": 9.0}, {"a": 20.0}]
    assert number_clusters(sizes, centres, cents, {"a": 1.0}, None)[0].tolist() == [3, 1, 2]
    previous = Previous(names={2: "Old"}, centroids={2: {"a": 0.1}}, next_id=7)
    ids, kept = number_clusters(sizes, centres, cents, {"a": 1.0}, previous)
    assert ids.tolist() == [2, 7, 8] and kept == {0: "Old"}


def changed_shop(extra: int = 16) -> dict[str, list[dict]]:
    """The shop with ``extra`` more car-care buyers (copies of K00.. under new ids)."""
    rows = shop_rows()
    for kind in ("contacts", "orders", "order_items", "events"):
        copies = []
        for r in rows[kind]:
            cid = r.get("contact_id") or r["order_id"][1:4]
            if cid.startswith("K") and int(cid[1:3]) < extra:
                new = {k: (v.replace(cid, f"K{int(cid[1:3]) + 50}")
                           if isinstance(v, str) else v) for k, v in r.items()}
                copies.append(new)
        rows[kind] += copies
    return rows


@pytest.fixture
def shop(tmp_path):
    ws = build_workspace(tmp_path / "shop.duckdb", **shop_rows())
    yield ws
    ws.close()


def groups(res) -> dict[int, set[str]]:
    a = res.assignments.to_pandas()
    a["kind"] = a.contact_id.map(kind_of)
    return {int(c): set(part.kind) for c, part in a.groupby("cluster")}


def test_the_same_groups_keep_their_ids_and_names_across_seeds_and_changed_data(shop, tmp_path):
    first = discover_personas(shop, T, k=3, seed=0)
    assert save_personas(shop, first).status == "new"
    before = groups(first)
    assert sorted(len(v) for v in before.values()) == [1, 1, 1, 1]  # one kind per cluster
    for seed in (1, 2, 3):
        again = discover_personas(shop, T, k=3, seed=seed)
        assert groups(again) == before and again.names() == first.names()
        assert again.kept() == [1, 2, 3] and again.retired() == {}
        assert save_personas(shop, again).status == "refreshed"

    # the car-care buyers grow from the smallest group (16) to the largest (32)
    changed = build_workspace(tmp_path / "changed.duckdb", **changed_shop())
    for table in ("persona_clusters", "personas", "models"):
        changed.warehouse.replace_table(table, shop.table(table).to_pyarrow())
    later = discover_personas(changed, T, k=3, seed=0)
    car = next(c for c, kinds in before.items() if kinds == {"car"})
    assert car != 1  # the smallest cluster; by size it would now be number 1
    assert groups(later) == before and later.names() == first.names()
    sizes = later.clusters.set_index("cluster").contacts
    assert sizes[car] == sizes.max() == 32
    changed.close()


def test_another_grouping_gets_new_ids_and_saving_it_needs_replace(shop):
    first = discover_personas(shop, T, k=3, seed=0)
    save_personas(shop, first)
    segments = save_segments(shop, first)
    SegmentEngine(shop).refresh(as_of=T)
    two = discover_personas(shop, T, k=2, seed=0)  # two buyer groups: one is a merge
    kept, retired = two.kept(), two.retired()
    assert len(kept) == 1 and len(retired) == 2
    new = [c for c in two.names() if c and c not in kept]
    assert new == [4]  # after every id used before, never an old one
    with pytest.raises(ModelConflictError) as info:
        save_personas(shop, two)
    assert info.value.details["segments"] == sorted(segments)
    written = save_personas(shop, two, replace=True)
    impact = {i.segment: i for i in written.impact}
    for c, name in retired.items():
        seg = next(s for s in segments if s.startswith(f"persona-{c}-"))
        assert impact[seg].would_be == 0 and impact[seg].exited == impact[seg].members > 0
    assert json.loads(shop.table("persona_clusters").to_pandas().centroid[1])  # saved


def test_a_named_persona_model_is_read_by_its_name(shop):
    res = discover_personas(shop, T, k=3, seed=0, name="persona3")
    save_personas(shop, res)
    assert save_segments(shop, res)[1].startswith("persona3-1-")
    engine = SegmentEngine(shop)
    want = int((res.assignments.column("cluster").to_numpy() == 2).sum())
    assert engine.count("persona3.cluster = 2", as_of=T) == want
    assert not shop.warehouse.has_table("personas")  # the default model untouched


def test_templates_for_3_level_rfm_are_not_ready_on_5_levels(shop, tmp_path):
    lib = load_library()
    compute_rfm(shop, as_of=T, levels=5)
    missing = [m.what for m in missing_data(shop, lib.get("lapsing_buyer"))]
    assert "rfm has levels 5, the rule is written for levels 3" in missing
    assert not [m for m in missing_data(shop, lib.get("champions"))]  # any levels
    compute_rfm(shop, as_of=T, levels=3)
    assert not [m for m in missing_data(shop, lib.get("champions"))]
    assert "rfm has levels" not in " ".join(
        m.what for m in missing_data(shop, lib.get("lapsing_buyer")))
    compute_rfm(shop, as_of=T, levels=5)
    path = shop.location
    shop.close()
    r = run("-w", str(path), "persona", "list", "--json", cwd=tmp_path)
    rows = {t["name"]: t for t in json.loads(r.stdout)["templates"]}
    assert rows["grown_up_children"]["ready"] is False
    assert any("levels 5" in m["what"] for m in rows["grown_up_children"]["missing"])
    r = run("-w", str(path), "persona", "list", cwd=tmp_path, env={"COLUMNS": "250"})
    line = next(x for x in r.stdout.splitlines() if "lapsing_buyer" in x)
    assert "no: " in line and "rfm has levels 5, the rule is written for levels 3" in line
