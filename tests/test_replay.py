"""The replay data of multihead fine-tuning: selected once per material, at most num_samples_pt structures of
the material's elements only (mace-torch's fine-tuning selection), and the general set of the forgetting errors."""

from __future__ import annotations

import pytest

from phononft.io import read_extxyz
from phononft.replay import general_set, select_replay


def test_replay_subset_has_at_most_n_structures_of_the_materials_elements(foundation, cu_data, tmp_path):
    model, pretraining = foundation
    pool = read_extxyz(pretraining)
    only_cu = [a for a in pool if set(a.get_chemical_symbols()) == {"Cu"}]
    assert len(only_cu) > 5 and len(only_cu) < len(pool)  # the pool also holds Au and Cu-Au structures
    out = tmp_path / "replay.extxyz"
    n = select_replay(pretraining, cu_data["train"], model, out, num_samples=5, seed=1, log=lambda s: None)
    replay = read_extxyz(out)
    assert n == len(replay) == 5
    assert all(set(a.get_chemical_symbols()) == {"Cu"} for a in replay)
    assert all("REF_energy" in a.info and "REF_forces" in a.arrays for a in replay)  # labels kept
    # the same seed selects the same structures; more samples than Cu structures: all of them, nothing else
    again = tmp_path / "again.extxyz"
    select_replay(pretraining, cu_data["train"], model, again, num_samples=5, seed=1, log=lambda s: None)
    assert [a.get_positions().tolist() for a in read_extxyz(again)] == [a.get_positions().tolist() for a in replay]
    everything = tmp_path / "all.extxyz"
    select_replay(pretraining, cu_data["train"], model, everything, num_samples=10 * len(pool), log=lambda s: None)
    assert len(read_extxyz(everything)) == len(only_cu)
    assert not list(tmp_path.glob(".replay-*"))  # mace's scratch files are gone


def test_replay_without_matching_structures_names_the_elements(foundation, tmp_path):
    from ase.build import bulk

    from phononft.io import set_labels, write_extxyz

    model, pretraining = foundation
    ni = bulk("Ni", "fcc", a=3.52, cubic=True)
    set_labels(ni, 0.0, ni.positions * 0, None)
    write_extxyz(tmp_path / "train.extxyz", [ni])
    with pytest.raises(ValueError, match="made of Ni only"):
        select_replay(pretraining, tmp_path / "train.extxyz", model, tmp_path / "r.extxyz", num_samples=5,
                      log=lambda s: None)


def test_general_set_is_the_validation_split_or_a_seeded_sample(foundation, tmp_path):
    model, pretraining = foundation
    assert general_set(tmp_path / "g.extxyz", valid=pretraining, log=lambda s: None) == len(read_extxyz(pretraining))
    general_set(tmp_path / "a.extxyz", pretraining=pretraining, n_samples=4, seed=3, log=lambda s: None)
    general_set(tmp_path / "b.extxyz", pretraining=pretraining, n_samples=4, seed=3, log=lambda s: None)
    a, b = read_extxyz(tmp_path / "a.extxyz"), read_extxyz(tmp_path / "b.extxyz")
    assert len(a) == 4 and [x.positions.tolist() for x in a] == [x.positions.tolist() for x in b]
