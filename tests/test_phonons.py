"""The evaluate stage's phonons against an independent, direct phonopy + EMT calculation."""

from __future__ import annotations

import numpy as np
import pytest
from ase.build import bulk
from ase.calculators.emt import EMT
from scipy.optimize import minimize_scalar

from conftest import stage_settings
from phononft.io import read_json
from phononft.reference import reference_in_process

PHONONS = {"relax_fmax": 1e-5, "relax_steps": 500, "supercell_min_length": 10.0, "displacement": 0.01,
           "mesh": 12, "band_points": 11, "temperature": 300, "convention": "benchmark", "imaginary_threshold": -0.1}
#: phonons only: no elastic tensor, no imaginary-mode analysis
CFG = stage_settings(phonons=PHONONS, evaluate={"elastic": False, "imaginary": {"relax": False, "grid_points": 3}})


def direct_emt_phonopy(a0: float):
    """Plain phonopy on EMT forces: conventional fcc cell, 3x3x3 supercell, 0.01 Å, primitive 'F'."""
    from ase import Atoms
    from phonopy import Phonopy
    from phonopy.structure.atoms import PhonopyAtoms

    unit = bulk("Cu", "fcc", a=a0, cubic=True)
    ph = Phonopy(PhonopyAtoms(symbols=unit.get_chemical_symbols(), cell=unit.cell[:],
                              scaled_positions=unit.get_scaled_positions()),
                 supercell_matrix=3 * np.eye(3, dtype=int), primitive_matrix="F")
    ph.generate_displacements(distance=0.01)
    forces = []
    for sc in ph.supercells_with_displacements:
        atoms = Atoms(sc.symbols, cell=sc.cell, scaled_positions=sc.scaled_positions, pbc=True)
        atoms.calc = EMT()
        forces.append(atoms.get_forces())
    ph.forces = forces
    ph.produce_force_constants()
    return ph


def test_emt_fcc_cu_phonons_match_direct_phonopy(tmp_path):
    # independent equilibrium lattice constant: minimise the EMT energy over a
    res = minimize_scalar(lambda a: _energy(a), bounds=(3.4, 3.8), method="bounded", options={"xatol": 1e-7})
    a0 = res.x
    metrics = reference_in_process(bulk("Cu", "fcc", a=3.65, cubic=True), EMT(), CFG, tmp_path, log=lambda s: None)
    relaxed = __import__("ase.io").io.read(tmp_path / "relaxed.extxyz")
    assert relaxed.cell.lengths()[0] == pytest.approx(a0, abs=1e-4)

    from phononft.phonon_io import load_phonopy

    ours = load_phonopy(tmp_path / "phonopy.yaml")
    direct = direct_emt_phonopy(a0)
    q = np.array([[0, 0, 0], [0.5, 0, 0.5], [0.5, 0.5, 0.5], [0.25, 0, 0.25], [0.1, 0.2, 0.3], [0.375, 0.375, 0.75]])
    f_ours = np.sort([ours.get_frequencies(x) for x in q], axis=1)
    f_direct = np.sort([direct.get_frequencies(x) for x in q], axis=1)
    np.testing.assert_allclose(f_ours, f_direct, atol=2e-3)
    # fcc Cu under EMT is stable with a top frequency near 8 THz (design notes: 8.1 THz)
    assert metrics["min_frequency"] > -1e-2
    assert 7.5 < metrics["max_frequency"] < 8.6
    # near Dulong-Petit at 300 K for one atom per primitive cell (3R = 24.94 J/K/mol)
    assert 23.0 < metrics["heat_capacity"] < 24.94
    bands = read_json(tmp_path / "bands.json")
    assert len(bands["frequencies"]) == len(bands["labels"]) and bands["unit"] == "THz"
    assert np.allclose(np.array(bands["frequencies"][0])[0, :3], 0, atol=1e-3)  # acoustic modes at Γ
    thermal = read_json(tmp_path / "thermal.json")
    assert thermal["temperatures"][0] == 0 and thermal["temperatures"][-1] == 1000


def _energy(a: float) -> float:
    atoms = bulk("Cu", "fcc", a=a)
    atoms.calc = EMT()
    return atoms.get_potential_energy()


def test_bcc_cu_soft_mode_is_imaginary(tmp_path):
    cfg = {**CFG, "phonons": {**CFG["phonons"], "relax_fmax": 1e-4}}
    metrics = reference_in_process(bulk("Cu", "bcc", a=2.87, cubic=True), EMT(), cfg, tmp_path, log=lambda s: None)
    assert metrics["has_imaginary"] == 1
    assert -1.5 < metrics["min_frequency"] < -0.5  # design notes: -0.84 THz (4x4x4, 16^3 mesh)
