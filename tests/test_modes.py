"""Imaginary modes of EMT bcc Cu (the N-point instability), energy surfaces, relaxation, scores."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from ase.build import bulk
from ase.calculators.emt import EMT

from phononft.imaginary import analyse_imaginary
from phononft.label import SoftenedCalculator
from phononft.modes import commensurate_qpoints, find_imaginary_modes, mode_displacements
from phononft.phases import new_phase_scores, relax_along_modes
from phononft.phonons import finite_displacement_phonons
from phononft.surface import energy_surface
from phononft.tasks import relax

pytestmark = pytest.mark.filterwarnings("ignore::Warning")
QUIET = {"log": lambda s: None}


def _phonon(structure: str, a: float, calc, n: int = 2, atoms=None):
    """(relaxed conventional cell, phonopy n x n x n); ``atoms`` given: used as it is, unrelaxed."""
    if atoms is None:
        atoms, _ = relax(bulk("Cu", structure, a=a, cubic=True), calc, **QUIET)
    phonon, _ = finite_displacement_phonons(atoms, calc, np.eye(3) * n, **QUIET)
    return atoms, phonon


@pytest.fixture(scope="module")
def bcc():
    # 2x2x2 conventional (16 atoms) is commensurate with the N point, where the instability is
    return _phonon("bcc", 2.87, EMT())


@pytest.fixture(scope="module")
def bcc_modes(bcc):
    return find_imaginary_modes(bcc[1])


def test_bcc_cu_soft_modes_at_n(bcc, bcc_modes):
    _, phonon = bcc
    assert len(commensurate_qpoints(phonon)) == 16
    # the six N points (1/2,1/2,0)-type of the bcc primitive reciprocal cell, lowest (TA) branch
    assert len(bcc_modes) == 6
    freqs = [m["frequency"] for m in bcc_modes]
    assert all(b >= a - 1e-4 for a, b in zip(freqs, freqs[1:]))  # most imaginary first
    assert freqs[0] == pytest.approx(-1.14, abs=0.05)
    assert np.allclose(freqs, freqs[0], atol=1e-6)
    for m in bcc_modes:
        assert m["band_index"] == 0 and m["degeneracy"] == 1
        assert sorted(abs(x) for x in m["q"]) == [0.0, 0.5, 0.5] or sorted(abs(x) for x in m["q"]) == [0.0, 0.0, 0.5]
    json.dumps(bcc_modes)


def test_displacements_follow_phonopy_modulation(bcc, bcc_modes):
    _, phonon = bcc
    m = bcc_modes[0]
    vec = np.array(m["eigenvector_real"]) + 1j * np.array(m["eigenvector_imag"])
    sc, u = mode_displacements(phonon, m["q"], vec)
    assert np.linalg.norm(u, axis=1).max() == pytest.approx(1.0)
    mod = phonon.run_modulations(np.rint(sc.cell[:] @ np.linalg.inv(phonon.primitive.cell)).astype(int).T,
                                 [[m["q"], m["band_index"], 1.0, 0.0]])
    up, scp = mod.get_modulations_and_supercell()
    up = up[0].real
    assert np.allclose(scp.positions, sc.get_positions())
    up /= np.linalg.norm(up, axis=1).max()
    assert np.allclose(u, up, atol=1e-8) or np.allclose(u, -up, atol=1e-8)


def test_small_amplitude_energy_is_harmonic(bcc, bcc_modes):
    # E/atom = 1/2 m omega^2 <|u|^2> with omega^2 < 0 for an imaginary mode: checks the amplitude convention
    _, phonon = bcc
    amp = 0.01
    surf = energy_surface(phonon, EMT(), bcc_modes[:1], amplitudes=[amp])
    m = bcc_modes[0]
    vec = np.array(m["eigenvector_real"]) + 1j * np.array(m["eigenvector_imag"])
    _, u = mode_displacements(phonon, m["q"], vec)
    omega = 2 * math.pi * m["frequency"] * 1e12
    mass = phonon.primitive.masses[0] * 1.66053906660e-27
    expected = -0.5 * mass * omega**2 * np.mean(np.sum((amp * u * 1e-10) ** 2, axis=1)) / 1.602176634e-19 * 1e3
    assert surf["energies_meV_per_atom"][0] == pytest.approx(expected, rel=0.05)


def test_bcc_cu_energy_surface(bcc, bcc_modes):
    _, phonon = bcc
    amps = np.linspace(-0.2, 0.2, 9)
    one = energy_surface(phonon, EMT(), bcc_modes[:1], amplitudes=amps)
    e1 = np.array(one["energies_meV_per_atom"])
    assert one["n_modes"] == 1 and e1.shape == (9,)
    assert e1[4] == pytest.approx(0.0, abs=1e-9)
    assert np.allclose(e1, e1[::-1], atol=1e-6)  # N point: u(-A) is u(A) shifted by a lattice vector
    assert one["surface_min_meV_per_atom"] < -1.0  # double well: about -1.4 meV/atom near 0.125 A
    assert 0.05 <= abs(one["surface_min_amplitudes"][0]) <= 0.151
    two = energy_surface(phonon, EMT(), bcc_modes, amplitudes=amps)
    e2 = np.array(two["energies_meV_per_atom"])
    assert two["n_modes"] == 2 and e2.shape == (9, 9)
    assert np.allclose(e2[:, 4], e1, atol=1e-9)  # A2 = 0 column is the 1-D scan
    assert two["surface_min_meV_per_atom"] < -1.0 and any(a != 0 for a in two["surface_min_amplitudes"])
    json.dumps(two)


def test_bcc_cu_relaxes_to_close_packed(bcc, bcc_modes):
    _, phonon = bcc
    out = relax_along_modes(phonon, EMT(), bcc_modes, amplitude=0.1, fmax=1e-3)
    assert out["start_spacegroup"] == "Im-3m (229)"
    # N-point shuffle + cell relaxation = Burgers path to hcp (EMT: hcp 0.9 meV/atom below fcc);
    # the two-arm start ends in fcc
    starts = {r["start"]: r for r in out["starts"]}
    assert starts["mode1"]["final_spacegroup_1e-1"] == "P6_3/mmc (194)"
    assert starts["mode1+mode2"]["final_spacegroup_1e-1"] == "Fm-3m (225)"
    assert out["final_spacegroup_1e-1"] == "P6_3/mmc (194)" and out["final_spacegroup_1e-3"] == "P6_3/mmc (194)"
    assert out["new_phase"] and out["new_phase_strict"]
    assert out["energy_gain_meV_per_atom"] == pytest.approx(33.6, abs=1.0)  # E_bcc - E_hcp under EMT
    assert out["relax_converged"]
    json.dumps(out)


def test_softened_model_uses_reference_modes(bcc, bcc_modes):
    # E_s(R) = E(R/s) on the exactly scaled cell: frequencies / s, surface E_s(A) = E(A/s)
    s = 1.04
    atoms, phonon = bcc
    scaled = atoms.copy()
    scaled.set_cell(atoms.cell[:] * s, scale_atoms=True)
    soft = SoftenedCalculator(EMT(), s)
    _, ph_soft = _phonon("bcc", 2.87, soft, atoms=scaled)
    amps = np.array([-0.1, 0.0, 0.1])
    ref = energy_surface(phonon, EMT(), bcc_modes[:1], amplitudes=amps)
    mod = energy_surface(ph_soft, soft, bcc_modes[:1], amplitudes=amps * s)
    assert mod["mode_band"] == ref["mode_band"] and np.allclose(mod["mode_q"], ref["mode_q"])
    assert mod["mode_frequency"][0] == pytest.approx(ref["mode_frequency"][0] / s, rel=1e-4)
    assert np.allclose(mod["energies_meV_per_atom"], ref["energies_meV_per_atom"], atol=1e-4)


ICFG = {"supercell_min_length": 5.0, "amplitude_max": 0.2, "grid_points": 5, "relax_amplitudes": [0.1], "relax_steps": 1000,
        "fmax": 1e-3, "relax": True}


def test_analyse_bcc_and_fcc():
    _, ph_bcc = _phonon("bcc", 2.87, EMT())
    out = analyse_imaginary(ph_bcc, EMT(), ICFG, **QUIET)
    res, surface = out["metrics"], out["surface_file"]
    assert res["imaginary_commensurate"] and res["n_imaginary_modes"] == 6 and len(out["modes"]) == 6
    assert res["min_imaginary_frequency"] == pytest.approx(-1.14, abs=0.05)
    assert res["surface_modes_source"] == "own"
    assert res["surface_min_meV_per_atom"] < 0
    assert res["new_phase"] and res["energy_gain_meV_per_atom"] > 20 and res["surface_well"]
    assert np.array(surface["surface"]["energies_meV_per_atom"]).shape == (5, 5)
    # relaxations from mode 1, mode 2 and their sum, both signs, at 0.1 Å: two symmetry-distinct starts
    assert res["n_relax_starts"] == 2 and surface["relaxation"]["relax_amplitudes"] == [0.1]
    assert res["phases_1e-1"] == res["new_phases_1e-1"] == ["P6_3/mmc (194)", "Fm-3m (225)"]
    assert res["final_spacegroup_1e-1"] == "P6_3/mmc (194)"
    assert res["probe_supercell_matrix"] == (2 * np.eye(3, dtype=int)).tolist()
    assert len(surface["surface"]["Q_axes"]) == 2 and len(res["surface_min_Q"]) == 2
    json.dumps(out)

    _, ph_fcc = _phonon("fcc", 3.6, EMT())
    out = analyse_imaginary(ph_fcc, EMT(), ICFG, **QUIET)
    res, surface = out["metrics"], out["surface_file"]
    assert not res["imaginary_commensurate"] and res["n_imaginary_modes"] == 0 and out["modes"] == []
    assert res["surface_modes_source"] == "none" and surface["surface"]["n_modes"] == 0
    assert math.isnan(res["min_imaginary_frequency"]) and math.isnan(res["energy_gain_meV_per_atom"])
    assert res["new_phase"] is False and surface["relaxation"] is None
    assert res["phases_1e-1"] == [] and res["n_relax_starts"] == 0 and surface["surface"]["Q_axes"] == []
    json.dumps(out)


def test_new_phase_scores():
    ref = {"a": True, "b": True, "c": False, "d": False}
    s = new_phase_scores(ref, {"a": True, "b": False, "c": True, "d": False, "extra": True})
    assert (s["tp"], s["fp"], s["fn"], s["tn"]) == (1, 1, 1, 1)
    assert s["precision"] == 0.5 and s["recall"] == 0.5 and s["f1"] == 0.5 and s["accuracy"] == 0.5
    assert s["n_materials"] == 4 and s["n_missing"] == 1
    perfect = new_phase_scores(ref, dict(ref))
    assert perfect["f1"] == 1.0
    # no positives anywhere: vacuous precision = recall = 1, F1 = 1 (complete agreement)
    none = new_phase_scores({"a": False, "b": False}, {"a": False, "b": False})
    assert (none["precision"], none["recall"], none["f1"]) == (1.0, 1.0, 1.0)
    # model finds nothing where the reference has a new phase: P = 1 (vacuous), R = 0, F1 = 0
    missed = new_phase_scores({"a": True, "b": False}, {"a": False, "b": False})
    assert (missed["precision"], missed["recall"], missed["f1"]) == (1.0, 0.0, 0.0)
    # spurious new phase where the reference has none: P = 0, R = 1 (vacuous), F1 = 0
    spurious = new_phase_scores({"a": False}, {"a": True})
    assert (spurious["precision"], spurious["recall"], spurious["f1"]) == (0.0, 1.0, 0.0)
    empty = new_phase_scores({}, {"a": True})
    assert math.isnan(empty["f1"]) and empty["n_materials"] == 0
