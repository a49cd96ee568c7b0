"""Discovery recovers the generator's planted behaviour groups (``groups.parquet``).

20,000 generated contacts are loaded into a real workspace and clustered as of the generator's
end date. The planted groups are no purchase, three family groups by the child's age, and
electronics, Home & Garden, fashion and car care buyers (see
``segmentum.data.generate._groups``): seven buyer groups, so K = 7. The adjusted Rand index
against them must reach 0.6 (measured 0.70 with K = 7 and 0.63 with --auto, which picks K = 10;
printed when run with -s), and the description of every clean cluster (80% or more of one
group) names what that group buys.
"""

from __future__ import annotations


import pandas as pd
import pytest

from segmentum.personas.run import discover_personas, truth_agreement
from tests.workspaces import generated_workspace

pytestmark = pytest.mark.slow

# what a cluster made of one planted group must say it buys
WORDS = {
    "no_purchase": ("no completed purchase",),
    "home_garden": ("Home & Garden",),
    "fashion": ("Fashion",),
    "car_care": ("Car care",),
    "family_school": ("School",),
    "family_baby_toddler": ("Baby food", "Toddler"),
    "family_preschool": ("Preschool", "Toddler"),
    "electronics": ("accessories", "iPhones", "Phones"),
}


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    root = tmp_path_factory.mktemp("discover_generated")
    ws, manifest, data = generated_workspace(root, contacts=20_000, seed=0)
    yield ws, pd.Timestamp(manifest["as_of"]).to_pydatetime(), data / "groups.parquet"
    ws.close()


def test_the_generator_writes_every_contacts_planted_group(generated):
    ws, _, path = generated
    groups = pd.read_parquet(path)
    assert len(groups) == 20_000 and groups.contact_id.is_unique
    assert set(groups.group) == set(WORDS)
    assert set(groups.contact_id) == set(ws.table("contacts").to_pandas().contact_id)


@pytest.mark.parametrize("k,auto", [(7, False), (None, True)])
def test_discovery_recovers_the_planted_groups_and_names_what_they_buy(generated, k, auto):
    ws, as_of, path = generated
    res = discover_personas(ws, as_of, k=k, auto=auto, seed=0)
    agreement = truth_agreement(res, path)
    print(f"\nK = {res.k} (auto: {auto}): ARI {agreement['ari']:.3f}")
    print(res.clusters[["cluster", "persona", "contacts", "description"]].to_string())
    assert agreement["matched"] == 20_000
    assert agreement["ari"] >= 0.6

    described = dict(zip(res.clusters.cluster, res.clusters.description, strict=True))
    clean = [m for m in agreement["majority"] if m["purity"] >= 0.8]
    assert len(clean) >= 6, agreement["majority"]
    for m in clean:
        words = WORDS[m["group"]]
        assert any(w in described[m["cluster"]] for w in words), (m, described[m["cluster"]])
