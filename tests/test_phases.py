"""Plan / result of the surface and of the relaxations along imaginary modes; phase sets, scores, scenarios.

Physics case: EMT bcc Cu on a 2x2x2 conventional supercell (16 atoms), unstable at the N points; relaxed
along the modes it ends in hcp (one N mode: the Burgers shuffle) or fcc (two N modes together).
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from ase.build import bulk
from ase.calculators.emt import EMT

from phononft.io import read_extxyz, set_labels, write_extxyz
from phononft.modes import _mode_fields, find_imaginary_modes
from phononft.tasks import run_tasks, task
from phononft.phases import (
    imaginary_scenario,
    phase_set_scores,
    phases_reached,
    relaxation_starts,
    space_group_of,
    surface_well,
)
from phononft.phonons import finite_displacement_phonons
from phononft.tasks import relax
from phononft.surface import energy_surface, surface_from_labels, surface_structures

pytestmark = pytest.mark.filterwarnings("ignore::Warning")
QUIET = {"log": lambda s: None}
HCP, FCC, BCC = "P6_3/mmc (194)", "Fm-3m (225)", "Im-3m (229)"


@pytest.fixture(scope="module")
def bcc():
    atoms, _ = relax(bulk("Cu", "bcc", a=2.87, cubic=True), EMT(), **QUIET)
    phonon, _ = finite_displacement_phonons(atoms, EMT(), np.eye(3) * 2, **QUIET)
    return phonon, find_imaginary_modes(phonon)


def _emt_energy(atoms) -> float:
    a = atoms.copy()
    a.calc = EMT()
    return a.get_potential_energy()


# --------------------------------------------------------------------------------------------
# Energy surface: plan -> labels -> result
# --------------------------------------------------------------------------------------------
def test_surface_plan_and_result_give_the_direct_energies(bcc, tmp_path):
    phonon, modes = bcc
    amps = [-0.2, -0.1, 0.0, 0.1, 0.2]
    base, fields, _ = _mode_fields(phonon, modes[:2])
    n = len(base)
    e0 = _emt_energy(base)
    direct = np.array([[(_emt_energy(_displaced(base, a1 * fields[0] + a2 * fields[1])) - e0) / n * 1000
                        for a2 in amps] for a1 in amps])
    surf = energy_surface(phonon, EMT(), modes, amplitudes=amps)
    assert np.array(surf["energies_meV_per_atom"]) == pytest.approx(direct, abs=1e-9)  # meV/atom: rounding only

    # the same through files, as labelled jobs come back on the real path
    plan_base, grid = surface_structures(phonon, modes, amps)
    assert len(grid) == 25 and grid[7].info["surface_amplitudes"] == [amps[1], amps[2]]
    write_extxyz(tmp_path / "grid.extxyz", run_tasks([plan_base, *grid], EMT()))
    back = read_extxyz(tmp_path / "grid.extxyz")
    again = surface_from_labels(phonon, modes, back[0], back[1:], amplitudes=amps)
    assert np.allclose(again["energies_meV_per_atom"], surf["energies_meV_per_atom"], rtol=0, atol=1e-9)
    with pytest.raises(ValueError, match="plan"):  # labels returned in another order are refused
        surface_from_labels(phonon, modes, back[0], back[1:][::-1], amplitudes=amps)

    # normal-mode axes: at the N point every atom moves by the same |u| = A, so Q = A sqrt(N m)
    q_per_a = math.sqrt(n * phonon.primitive.masses[0])
    assert surf["Q_per_amplitude"] == pytest.approx([q_per_a, q_per_a], rel=1e-9)
    assert surf["Q_axes"][0] == pytest.approx([a * q_per_a for a in amps])
    assert surf["surface_min_Q"] == pytest.approx([a * q_per_a for a in surf["surface_min_amplitudes"]])
    json.dumps(surf)


def _displaced(base, u):
    a = base.copy()
    a.set_positions(base.get_positions() + u)
    return a


# --------------------------------------------------------------------------------------------
# Relaxations: plan -> labels -> result
# --------------------------------------------------------------------------------------------
def test_relaxation_starts_are_tagged_and_symmetry_unique(bcc):
    phonon, modes = bcc
    every = relaxation_starts(phonon, modes, [0.05, 0.1, 0.2], unique=False)
    assert len(every) == 18  # 3 amplitudes x (mode1, mode2, mode1+mode2) x 2 signs
    names = [a.info["start_name"] for a in every]
    assert names[:6] == ["+mode1@0.05", "-mode1@0.05", "+mode2@0.05", "-mode2@0.05",
                         "+(mode1+mode2)@0.05", "-(mode1+mode2)@0.05"]
    for a in every:
        assert a.info["task"] == "relax_free" and a.info["task_fmax"] == 1e-3
        u = np.linalg.norm(a.arrays["start_displacement"], axis=1).max()
        if a.info["start"] != "mode1+mode2":  # one mode: max displacement = amplitude
            assert u == pytest.approx(a.info["start_amplitude"])
    unique = relaxation_starts(phonon, modes, [0.05, 0.1, 0.2])
    # N-point modes: -A is +A shifted by a lattice vector, and the two N points are related by a rotation
    assert [a.info["start_name"] for a in unique] == ["+mode1@0.05", "+(mode1+mode2)@0.05", "+mode1@0.1",
                                                      "+(mode1+mode2)@0.1", "+mode1@0.2", "+(mode1+mode2)@0.2"]
    groups = [a.info["equivalent_starts"].split(";") for a in unique]
    assert sorted(sum(groups, [])) == sorted(names)  # every start is accounted for, once
    energy = {a.info["start_name"]: _emt_energy(a) for a in every}
    for group in groups:  # a necessary condition of equivalence: equal energies
        assert np.ptp([energy[g] for g in group]) < 1e-9
    assert abs(energy["+mode1@0.1"] - energy["+(mode1+mode2)@0.1"]) > 1e-3  # two genuinely different starts


def test_phases_reached_by_bcc_cu_relaxations(bcc, tmp_path):
    phonon, modes = bcc
    starts = relaxation_starts(phonon, modes, [0.05, 0.2])
    base, _ = surface_structures(phonon, modes, [0.0])
    # the real path: plan written, labelled elsewhere, read back
    write_extxyz(tmp_path / "starts.extxyz", starts)
    relaxed = run_tasks(read_extxyz(tmp_path / "starts.extxyz"), EMT())  # each start is a relax_free task
    write_extxyz(tmp_path / "relaxed.extxyz", relaxed)
    write_extxyz(tmp_path / "base.extxyz", run_tasks([base], EMT()))
    res = phases_reached(read_extxyz(tmp_path / "starts.extxyz"), read_extxyz(tmp_path / "relaxed.extxyz"),
                         base=read_extxyz(tmp_path / "base.extxyz")[0])
    assert res["start_spacegroup"] == res["start_spacegroup_1e-1"] == BCC
    assert res["phases_1e-3"] == res["phases_1e-1"] == [HCP, FCC]  # sorted by space-group number
    assert res["new_phases_1e-1"] == [HCP, FCC] and res["any_new_phase"]
    per = {d["name"]: d["final_spacegroup_1e-1"] for d in res["starts"]}
    assert per == {"+mode1@0.05": HCP, "+(mode1+mode2)@0.05": FCC, "+mode1@0.2": HCP, "+(mode1+mode2)@0.2": FCC}
    # lowest end point: hcp, 33.6 meV/atom below bcc under EMT (fcc: 32.7)
    assert res["final_spacegroup_1e-3"] == HCP and res["new_phase"] and res["new_phase_strict"]
    assert res["energy_gain_meV_per_atom"] == pytest.approx(33.6, abs=0.5)
    fcc_gain = -min(d["final_energy_meV_per_atom"] for d in res["starts"] if d["final_spacegroup_1e-1"] == FCC)
    assert fcc_gain == pytest.approx(32.7, abs=0.5)
    assert res["all_converged"] and res["n_relax_starts"] == 4 and res["relax_amplitudes"] == [0.05, 0.2]
    assert res["starts"][0]["equivalent_starts"] == ["+mode1@0.05", "-mode1@0.05", "+mode2@0.05", "-mode2@0.05"]
    # coarse fingerprint: atoms in the primitive cell (hcp 2, fcc 1)
    fp = phases_reached(starts, relaxed, base=run_tasks([base], EMT())[0], fingerprint=True)
    assert fp["phases_1e-1"] == [f"{HCP} Z=2", f"{FCC} Z=1"]
    json.dumps(res)


def test_phases_reached_is_a_pure_function_of_labels(bcc):
    phonon, modes = bcc
    starts = relaxation_starts(phonon, modes, [0.1])
    base, _ = surface_structures(phonon, modes, [0.0])
    set_labels(base, -10.0, np.zeros((len(base), 3)), None)
    back = []  # every relaxation "returns" to the undistorted bcc cell, at energies chosen here
    for energy in (-10.016, -10.032):
        b = base.copy()
        set_labels(b, energy, np.zeros((len(b), 3)), None)
        back.append(b)
    res = phases_reached(starts, back, base=base)
    assert res["phases_1e-1"] == [BCC] and res["new_phases_1e-1"] == [] and not res["any_new_phase"]
    assert not res["new_phase"] and res["best_start_name"] == "+(mode1+mode2)@0.1"
    assert res["energy_gain_meV_per_atom"] == pytest.approx(32.0 / 16)
    assert res["relax_converged"] is None  # not reported by the labeller
    no_base = phases_reached(starts, back)  # undistorted cell recovered from the starts; energies unknown
    assert no_base["start_spacegroup"] == BCC and math.isnan(no_base["energy_gain_meV_per_atom"])
    with pytest.raises(ValueError, match="starts but"):
        phases_reached(starts, back[:1], base=base)
    with pytest.raises(ValueError, match="other atoms"):
        phases_reached(starts, [back[0], back[1][:8]], base=base)
    assert relaxation_starts(phonon, [], [0.1]) == [] and phases_reached([], [])["phases_1e-1"] == []


def test_task_kinds_in_process():
    strained = bulk("Cu", "fcc", a=3.7, cubic=True)
    static = run_tasks([task(strained, "static")], EMT())[0]
    assert static.info["REF_energy"] == pytest.approx(_emt_energy(strained), abs=1e-12)
    ions = run_tasks([task(strained, "relax_ions", fmax=1e-3)], EMT())[0]
    assert np.allclose(ions.cell[:], strained.cell[:]) and ions.info["relax_converged"]
    cell = run_tasks([task(strained, "relax_cell", fmax=1e-3)], EMT())[0]
    assert cell.get_volume() < strained.get_volume() - 1.0 and space_group_of(cell, 1e-3) == FCC
    assert cell.info["REF_energy"] < static.info["REF_energy"] and np.abs(cell.info["REF_stress"]).max() < 1e-3
    with pytest.raises(ValueError, match="task kind"):
        task(strained, "md")
    with pytest.raises(ValueError, match="fmax"):
        task(strained, "relax_free")


# --------------------------------------------------------------------------------------------
# Phase sets: scores and the study's four scenarios (hand-made sets)
# --------------------------------------------------------------------------------------------
def test_scenario_1_same_transition():
    out = imaginary_scenario({HCP}, {HCP}, BCC, reference_well=True, model_well=True)
    assert out["scenario"] == "same_transition" and out["study_scenario"] == 1
    assert out["shared_new"] == [HCP] and out["precision"] == out["recall"] == 1.0


def test_scenario_2_no_transition_harmonic_surface():
    # DFT mode imaginary by interpolation error: harmonic surface, relaxation back to Imm2; model agrees
    out = imaginary_scenario({"Imm2 (44)"}, {"Imm2 (44)"}, "Imm2 (44)", reference_well=False, model_well=False)
    assert out["scenario"] == "no_transition" and out["study_scenario"] == 2
    assert out["new_reference"] == out["new_model"] == [] and out["precision"] == out["recall"] == 1.0


def test_scenario_3_spurious_well_same_space_group():
    # the model has an anharmonic well where DFT is harmonic, but relaxes back to the same space group
    out = imaginary_scenario({"Imm2 (44)"}, {"Imm2 (44)"}, "Imm2 (44)", reference_well=False, model_well=True)
    assert out["scenario"] == "spurious_well" and out["study_scenario"] == 3
    assert out["precision"] == out["recall"] == 1.0  # invisible to the phase sets: only the surface shows it


def test_scenario_4_different_transition():
    out = imaginary_scenario({BCC, HCP, FCC}, {BCC, FCC, "Cmcm (63)"}, BCC, reference_well=True, model_well=True)
    assert out["scenario"] == "different_transition" and out["study_scenario"] == 4
    assert out["shared_new"] == [FCC] and out["new_model"] == ["Cmcm (63)", FCC]
    assert out["precision"] == pytest.approx(2 / 3) and out["recall"] == pytest.approx(2 / 3)


def test_outside_the_four_scenarios():
    missed = imaginary_scenario({BCC, HCP}, {BCC}, BCC, reference_well=True, model_well=False)
    assert missed["scenario"] == "missed_transition" and missed["study_scenario"] is None
    assert missed["precision"] == 1.0 and missed["recall"] == 0.5
    spurious = imaginary_scenario({BCC}, {HCP}, BCC)
    assert spurious["scenario"] == "spurious_transition" and spurious["precision"] == spurious["recall"] == 0.0


def test_phase_set_scores_pool_numerators_and_denominators():
    ref = {"a": {HCP}, "b": {"Imm2 (44)"}, "c": {BCC, HCP, FCC}, "d": {"P1 (1)"}}
    mod = {"a": {HCP}, "b": {"Imm2 (44)"}, "c": {BCC, FCC, "Cmcm (63)"}, "e": {HCP}}
    s = phase_set_scores(ref, mod)
    # intersections 1 + 1 + 2 = 4; |S_model| 1 + 1 + 3 = 5; |S_ref| 1 + 1 + 3 = 5 (d, e: one side only)
    assert (s["n_common"], s["n_model"], s["n_reference"]) == (4, 5, 5)
    assert s["precision"] == pytest.approx(0.8) and s["recall"] == pytest.approx(0.8)
    assert s["f1"] == pytest.approx(0.8) and s["n_materials"] == 3 and s["n_missing"] == 2
    assert s["per_material"]["c"]["precision"] == pytest.approx(2 / 3)
    # pooled, not averaged: a material with many phases weighs more
    skew = phase_set_scores({"x": {HCP}, "y": {BCC, HCP, FCC}}, {"x": {FCC}, "y": {BCC, HCP, FCC}})
    assert skew["precision"] == pytest.approx(3 / 4) and skew["recall"] == pytest.approx(3 / 4)
    empty = phase_set_scores({"x": set()}, {"x": set()})
    assert math.isnan(empty["precision"]) and math.isnan(empty["recall"]) and math.isnan(empty["f1"])
    disjoint = phase_set_scores({"x": {HCP}}, {"x": {FCC}})
    assert disjoint["precision"] == disjoint["recall"] == disjoint["f1"] == 0.0


def test_surface_well():
    assert surface_well({"n_modes": 1, "surface_min_meV_per_atom": -1.2}) is True
    assert surface_well({"n_modes": 2, "surface_min_meV_per_atom": 0.0}) is False  # rising: harmonic
    assert surface_well({"n_modes": 0, "surface_min_meV_per_atom": float("nan")}) is None
    assert surface_well(None) is None
