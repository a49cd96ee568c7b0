"""The generator's ``ads_opt_in`` custom attribute: deterministic, ~70% of the opted-in
contacts, never a contact without an e-mail or SMS opt-in."""

from __future__ import annotations

import pyarrow.parquet as pq

from segmentum.data.generate import generate
from segmentum.data.generate._tables import ads_opt_in


def test_generated_contacts_carry_ads_consent(tmp_path):
    generate(tmp_path / "a", contacts=1_500, seed=21)
    c = pq.read_table(tmp_path / "a" / "contacts.parquet").to_pandas()
    assert c.ads_opt_in.dtype == bool and c.ads_opt_in.notna().all()
    opted = c.email_opt_in | c.sms_opt_in
    assert not c.ads_opt_in[~opted].any()
    share = c.ads_opt_in[opted].mean()
    assert opted.sum() > 500 and 0.63 < share < 0.77, share
    # ads consent comes from a hash of (contact, seed): same seed, same values; other seed, other
    generate(tmp_path / "b", contacts=1_500, seed=21)
    again = pq.read_table(tmp_path / "b" / "contacts.parquet").to_pandas()
    assert again.equals(c)
    generate(tmp_path / "c", contacts=1_500, seed=22)
    other = pq.read_table(tmp_path / "c" / "contacts.parquet").to_pandas()
    assert (other.ads_opt_in != c.ads_opt_in).any()


def test_consent_hash_does_not_draw_from_the_random_stream():
    import numpy as np

    rng = np.random.default_rng(np.random.SeedSequence(5, spawn_key=(1, 0)))
    twin = np.random.default_rng(np.random.SeedSequence(5, spawn_key=(1, 0)))
    g = np.arange(10_000)
    flags = ads_opt_in(rng, g, np.ones(len(g), bool))
    assert rng.random() == twin.random()  # the stream is where it was
    assert 0.68 < flags.mean() < 0.72
    # the same contact gets the same answer in any chunk (it depends on its global index only)
    other_chunk = np.random.default_rng(np.random.SeedSequence(5, spawn_key=(1, 7)))
    assert (ads_opt_in(other_chunk, g[5_000:], np.ones(5_000, bool)) == flags[5_000:]).all()
