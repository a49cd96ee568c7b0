"""Send-time optimisation on the generated retailer: the chosen hours match the planted
habitual hours far more often than random or population hours, and leaving out the
machine opens the generator marks makes them match better."""

from __future__ import annotations

import pyarrow.parquet as pq
import pytest

from segmentum.activation.send_time import SendTimeConfig, best_hours, evaluate
from tests.workspaces import generated_workspace

T = "2026-11-01"


@pytest.fixture(scope="module")
def retailer(tmp_path_factory):
    ws, manifest, data = generated_workspace(tmp_path_factory.mktemp("st"), contacts=4000, seed=5)
    truth = pq.read_table(data / "traits.parquet").select(["contact_id", "open_hour_local"])
    yield ws, truth
    ws.close()


def test_optimised_hours_beat_random_and_population_hours(retailer):
    ws, truth = retailer
    r = evaluate(ws, truth, T)
    own = r["windows"]["1"]["with_own_history"]
    assert r["with_own_history"] > 300
    assert own["lift_vs_random"] > 5 and own["lift_vs_population"] > 2, r
    assert r["windows"]["2"]["all"]["lift_vs_random"] > 2, r


def test_machine_opens_left_out_improve_the_match(retailer):
    ws, truth = retailer
    machine = ws.con.raw_sql(
        "SELECT count(*) FROM events WHERE type = 'email_open' "
        "AND json_extract_string(properties, '$.is_machine_open') = 'true'").fetchone()[0]
    assert machine > 0
    kept = evaluate(ws, truth, T, config=SendTimeConfig(exclude_machine_opens=True))
    counted = evaluate(ws, truth, T, config=SendTimeConfig(exclude_machine_opens=False))
    assert kept["exact_hour_share"] > counted["exact_hour_share"]


def test_exploration_share_on_real_contacts(retailer):
    ws, _ = retailer
    rows = best_hours(ws, "email", T).to_pyarrow()
    sources = rows.column("source").to_pylist()
    assert 0.07 < sources.count("explore") / len(sources) < 0.13
    assert rows.num_rows == ws.table("contacts").count().execute()
