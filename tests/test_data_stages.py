"""Structures, rattling and labelling: reproducibility, nesting, round trips, physics of the softening."""

from __future__ import annotations

import numpy as np
import pytest
from ase.build import bulk
from ase.calculators.emt import EMT

from phononft.finetune import write_budget_subset
from phononft.io import get_labels, read_extxyz, write_extxyz
from phononft.label import SoftenedCalculator, check_elements, label_structures, make_calculator
from phononft.rattle import make_split
from phononft.structures import StructureError, prepare_structure, read_structure_file


def test_structure_is_standardised_and_summarised():
    atoms, info = prepare_structure("Cu3Au", {"atoms": {
        "cell": [[3.75, 0, 0], [0, 3.75, 0], [0, 0, 3.75]], "symbols": ["Cu", "Au", "Cu", "Cu"],
        "scaled_positions": [[0, 0.5, 0.5], [0, 0, 0], [0.5, 0, 0.5], [0.5, 0.5, 0]]}})
    assert info["spacegroup"] == "Pm-3m (221)"
    assert info["crystal_system"] == "cubic" and info["natoms_primitive"] == 4
    _, fcc = prepare_structure("Cu", {"bulk": {"name": "Cu", "crystalstructure": "fcc", "a": 3.61}})
    assert fcc["spacegroup"] == "Fm-3m (225)" and fcc["natoms_conventional"] == 4 and fcc["natoms_primitive"] == 1


def test_structure_files_and_bad_input(tmp_path):
    cu = bulk("Cu", "fcc", a=3.61, cubic=True)
    cu.write(tmp_path / "POSCAR", format="vasp")
    cu.write(tmp_path / "cu.cif")
    for name in ("POSCAR", "cu.cif"):
        _, info = prepare_structure("Cu", {"file": name}, base_dir=tmp_path)
        assert info["spacegroup"] == "Fm-3m (225)"
    (tmp_path / "broken.cif").write_text("data_x\n_cell_length_a nonsense\n")
    with pytest.raises(StructureError, match="material 'bad'"):
        prepare_structure("bad", {"file": "broken.cif"}, base_dir=tmp_path)
    with pytest.raises(StructureError, match="does not exist"):
        read_structure_file(tmp_path / "missing.cif")
    with pytest.raises(StructureError, match="closer than"):
        prepare_structure("squashed", {"atoms": {"cell": np.eye(3).tolist(), "symbols": ["Cu", "Cu"],
                                                 "scaled_positions": [[0, 0, 0], [0.1, 0, 0]]}})


def test_rattle_is_byte_reproducible_and_nested(tmp_path):
    unit = bulk("Cu", "fcc", a=3.61, cubic=True)
    a = make_split(unit, "train", 6, seed=3)
    b = make_split(unit, "train", 6, seed=3)
    write_extxyz(tmp_path / "a.extxyz", a)
    write_extxyz(tmp_path / "b.extxyz", b)
    assert (tmp_path / "a.extxyz").read_bytes() == (tmp_path / "b.extxyz").read_bytes()
    # budgets are prefixes of one series
    write_budget_subset(tmp_path / "a.extxyz", 2, tmp_path / "n2.extxyz")
    write_budget_subset(tmp_path / "a.extxyz", 5, tmp_path / "n5.extxyz")
    n2, n5 = read_extxyz(tmp_path / "n2.extxyz"), read_extxyz(tmp_path / "n5.extxyz")
    for x, y in zip(n2, n5[:2]):
        assert np.array_equal(x.positions, y.positions) and np.array_equal(x.cell, y.cell)
    with pytest.raises(ValueError, match="exceeds"):
        write_budget_subset(tmp_path / "a.extxyz", 7, tmp_path / "n7.extxyz")
    # another seed, another series; validation never equals training
    c = make_split(unit, "train", 6, seed=4)
    v = make_split(unit, "valid", 6, seed=3)
    assert not np.allclose(a[0].positions, c[0].positions)
    assert not np.allclose(a[0].positions, v[0].positions)
    # the target rms displacement is honoured (hiphive's MC rattle amplitude corrected by sqrt(n_iter))
    ideal = make_split(unit, "train", 1, seed=3, rattle_std=0.0, volume_strain=0.0)[0]
    d = np.concatenate([x.get_scaled_positions() - ideal.get_scaled_positions() for x in
                        make_split(unit, "train", 6, seed=3, volume_strain=0.0)])
    d = (d - np.round(d)) @ ideal.cell[:]
    rms = np.sqrt(np.mean(np.sum(d**2, axis=1) / 3))
    assert 0.02 < rms < 0.06


def test_labels_round_trip_extxyz(tmp_path):
    images = make_split(bulk("Cu", "fcc", a=3.61, cubic=True) * (1, 1, 1), "train", 3, seed=0)
    labelled = label_structures(images, EMT(), log=lambda s: None)
    write_extxyz(tmp_path / "l.extxyz", labelled)
    back = read_extxyz(tmp_path / "l.extxyz")
    for atoms, orig in zip(back, images):
        e, f, s = get_labels(atoms)
        ref = orig.copy()
        ref.calc = EMT()
        assert e == pytest.approx(ref.get_potential_energy(), abs=1e-10)
        # extxyz stores per-atom arrays as %16.8f: forces round-trip to 5e-9 eV/Å
        np.testing.assert_allclose(f, ref.get_forces(), rtol=0, atol=5e-9)
        np.testing.assert_allclose(s, ref.get_stress(voigt=True), atol=1e-12)
        assert atoms.calc is None  # labels live under REF_* keys, not in a calculator


def test_softened_reference_is_a_stretched_emt():
    s = 1.04
    soft = SoftenedCalculator(EMT(), s)
    atoms = make_split(bulk("Cu", "fcc", a=3.61, cubic=True), "train", 1, seed=0)[0]
    stretched = atoms.copy()
    stretched.set_cell(atoms.cell * s, scale_atoms=True)
    stretched.calc = soft
    atoms.calc = EMT()
    assert stretched.get_potential_energy() == pytest.approx(atoms.get_potential_energy(), abs=1e-10)
    np.testing.assert_allclose(stretched.get_forces(), atoms.get_forces() / s, atol=1e-10)
    # forces are the negative gradient of the softened energy (finite differences)
    probe = stretched.copy()
    probe.calc = soft
    h = 1e-5
    for i, k in [(0, 0), (3, 2)]:
        p = probe.copy(); p.calc = soft; p.positions[i, k] += h
        m = probe.copy(); m.calc = soft; m.positions[i, k] -= h
        fd = -(p.get_potential_energy() - m.get_potential_energy()) / (2 * h)
        assert fd == pytest.approx(probe.get_forces()[i, k], abs=1e-6)
    # stress: derivative of the energy per volume under strain
    eps = 1e-5
    def energy(strain):
        x = probe.copy(); x.calc = soft
        x.set_cell(probe.cell[:] @ (np.eye(3) + strain), scale_atoms=True)
        return x.get_potential_energy()
    e = np.zeros((3, 3)); e[0, 0] = eps
    fd = (energy(e) - energy(-e)) / (2 * eps) / probe.get_volume()
    assert fd == pytest.approx(probe.get_stress(voigt=False)[0, 0], rel=1e-4)


def test_labeller_rejects_unknown_elements():
    calc = make_calculator("ase.calculators.emt:EMT")
    check_elements(calc, ["Cu", "Au"], "material 'x'")
    with pytest.raises(ValueError, match="material 'UO2'.*element U"):
        check_elements(calc, ["U", "O"], "material 'UO2'")
    with pytest.raises(ValueError, match="cannot import calculator"):
        make_calculator("ase.calculators.nonexistent:Foo")
