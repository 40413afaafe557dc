"""Model phonons in the reference's setting (compare.phonon_like): the same fractional q is the same physical q.

The benchmark's DFT phonons of mp-603640 (GaAs, Imm2, body-centred orthorhombic, non-standard setting)
are the reference; the "model" is the reference itself, an ASE calculator returning the harmonic forces
of the reference's force constants.  Built through phonon_like it reproduces the reference exactly; built
with the primitive cell that phonopy's "auto" picks on a model-relaxed cell of this material (MACE-MP-0b3's,
whose b = c at 1e-5 Å makes it I-4m2 at symprec 1e-4), the benchmark convention compares other q-points.  The last test runs the same exact model through
evaluate.evaluate_model, the function every evaluation job calls (property_steps: relaxation, phonopy in the
reference's setting, the surface along the reference's imaginary modes on the probe cell).
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np
import pytest
from ase.calculators.calculator import Calculator, all_changes
from phonopy import Phonopy
from phonopy.harmonic.force_constants import compact_fc_to_full_fc

from phononft import compare as C
from phononft import phonon_io as P
from phononft.phonons import finite_displacement_phonons, to_ase_atoms

pytestmark = pytest.mark.filterwarnings("ignore::Warning")
BENCH = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "phonon-benchmark"
needs_bench = pytest.mark.skipif(not (BENCH / "dft_pbe" / "mp-603640.phonopy.yaml").is_file(),
                                 reason=f"benchmark data not found at {BENCH}")


class HarmonicForces(Calculator):
    """F_j = -sum_i u_i . Phi[i, j] (phonopy's fc[i, j] = -dF_j/du_i), u from the ideal supercell (mic)."""

    implemented_properties = ["energy", "forces"]

    def __init__(self, supercell, fc_full):
        super().__init__()
        self.cell0, self.pos0 = np.asarray(supercell.cell), np.asarray(supercell.positions)
        self.fc = np.asarray(fc_full).transpose(0, 2, 1, 3).reshape(3 * len(self.pos0), -1)

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        frac = (self.atoms.positions - self.pos0) @ np.linalg.inv(self.cell0)
        u = ((frac - np.rint(frac)) @ self.cell0).ravel()  # same atom order as the ideal supercell
        self.results = {"energy": 0.5 * float(u @ self.fc @ u), "forces": -(u @ self.fc).reshape(-1, 3)}


@lru_cache(maxsize=None)
def _reference() -> tuple[Phonopy, HarmonicForces]:
    """The DFT phonons of mp-603640 and the calculator that *is* them.

    The DFT forces are drift-corrected first, as finite_displacement_phonons does with every model's
    forces: otherwise the exact model's net-force removal alone changes its bands by 1.3e-4 THz."""
    ref = P.load_phonopy(BENCH / "dft_pbe" / "mp-603640.phonopy.yaml")
    forces = np.asarray(ref.forces)
    ref.forces = forces - forces.mean(axis=1, keepdims=True)
    ref.produce_force_constants()
    fc = ref.force_constants
    full = compact_fc_to_full_fc(ref.primitive, fc) if fc.shape[0] != fc.shape[1] else fc
    return ref, HarmonicForces(ref.supercell, full)


@needs_bench
def test_exact_model_through_phonon_like_has_zero_error():
    ref, exact = _reference()
    model = P.phonon_like(ref, to_ase_atoms(ref.unitcell), exact)
    assert np.allclose(model.primitive_matrix, ref.primitive_matrix)
    assert np.array_equal(model.supercell_matrix, ref.supercell_matrix)
    m = C.phonon_metrics(ref, model, convention="benchmark", extras=False)
    assert m["rmse"] < 1e-6 and m["phonon_rmse"] < 1e-6  # THz
    assert m["benchmark_min_frequency"] < -2.0  # not a trivial comparison: an unstable, 4-atom cell


@needs_bench
def test_auto_primitive_of_a_model_cell_compares_other_qpoints():
    ref, exact = _reference()
    # what "auto" picks on a model-relaxed cell of mp-603640 (MACE-MP-0b3's: b = c within 1e-5 Å)
    model_cell = P.load_phonopy(BENCH / "mace_mp_0b3" / "mp-603640.phonopy.yaml").unitcell
    auto = Phonopy(model_cell, supercell_matrix=ref.supercell_matrix, primitive_matrix="auto",
                   symprec=ref.symmetry.tolerance).primitive_matrix
    assert not np.allclose(auto, ref.primitive_matrix)
    # the exact model with that primitive cell: benchmark convention (raw fractional q) -> errors
    old, _ = finite_displacement_phonons(to_ase_atoms(ref.unitcell), exact, ref.supercell_matrix,
                                         symprec=ref.symmetry.tolerance, primitive_matrix=auto, log=lambda s: None)
    m = C.phonon_metrics(ref, old, convention="benchmark", extras=False)
    assert m["rmse"] > 0.01 and m["phonon_rmse"] > 0.01  # measured 0.039 and 0.036 THz
    # ... which are q-point bookkeeping only: mapped to the same physical q they vanish
    mapped = C.phonon_metrics(ref, old, convention="mapped", extras=False)
    assert mapped["rmse"] < 1e-6 and mapped["phonon_rmse"] < 1e-6


@needs_bench
def test_phonon_like_refuses_another_setting():
    ref, exact = _reference()
    cell = to_ase_atoms(ref.unitcell)
    swapped = cell.copy()
    swapped.set_cell(cell.cell[[0, 2, 1]] * [-1, 1, 1], scale_atoms=False)  # b <-> c (right-handed)
    with pytest.raises(ValueError, match="setting"):
        P.phonon_like(ref, swapped, exact)
    reordered = cell[[2, 3, 0, 1]]
    with pytest.raises(ValueError, match="order"):
        P.phonon_like(ref, reordered, exact)


class TiledHarmonic(Calculator):
    """The reference's harmonic model on any cell that tiles its phonopy supercell (unit cell, probe supercell,
    the supercell itself): displacements repeated over the tiles, F = -Phi u, E = u.Phi.u / 2 per tile; zero
    stress (the reference's cell is this model's equilibrium by construction)."""

    implemented_properties = ["energy", "forces", "stress"]

    def __init__(self, supercell, fc_full):
        super().__init__()
        self.cell0, self.pos0 = np.asarray(supercell.cell), np.asarray(supercell.positions)
        self.fc = np.asarray(fc_full).transpose(0, 2, 1, 3).reshape(3 * len(self.pos0), -1)

    def _sites(self, positions):
        """Nearest ideal supercell site of each position and the displacement from it (minimum image)."""
        frac = positions @ np.linalg.inv(self.cell0)
        frac0 = self.pos0 @ np.linalg.inv(self.cell0)
        d = frac[:, None, :] - frac0[None, :, :]
        d -= np.rint(d)
        dist = np.linalg.norm(d @ self.cell0, axis=2)
        site = dist.argmin(axis=1)
        return site, d[np.arange(len(site)), site] @ self.cell0

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        cell = np.asarray(self.atoms.cell)
        reps = np.linalg.solve(cell.T, self.cell0.T).T  # supercell = reps @ this cell, an integer matrix
        assert np.allclose(reps, np.rint(reps), atol=1e-6), "cell does not tile the reference supercell"
        n = np.rint(np.diag(reps)).astype(int)
        assert np.allclose(reps, np.diag(n), atol=1e-6)
        tiles = np.array([(i, j, k) for i in range(n[0]) for j in range(n[1]) for k in range(n[2])]) @ cell
        u = np.zeros((len(self.pos0), 3))
        first = None
        for shift in tiles:
            site, disp = self._sites(self.atoms.positions + shift)
            assert len(set(site.tolist())) == len(site)
            u[site] = disp
            first = site if first is None else first
        forces = -(u.ravel() @ self.fc).reshape(-1, 3)
        self.results = {"energy": 0.5 * float(u.ravel() @ self.fc @ u.ravel()) / len(tiles),
                        "forces": forces[first], "stress": np.zeros(6)}


@needs_bench
def test_workflow_evaluation_of_the_exact_model(tmp_path, monkeypatch):
    """evaluate.evaluate_model, the function every model's evaluation job calls, with the reference's own force
    constants as the model: built in the reference's setting (property_steps), its bands are the reference's at
    every q-point (RMSE 0 under the benchmark convention, where an "auto" primitive cell differs, see above),
    and the energy surface along the reference's imaginary modes, probed on the 7x1x1 cell the modes' q fix,
    is the harmonic -1/2 (2 pi f)^2 Q^2 of their DFT frequencies."""
    from ase.units import _amu, _e

    from phononft import evaluate
    from phononft.config import load_config
    from phononft.io import set_labels, write_extxyz
    from phononft.modes import find_imaginary_modes

    ref, _ = _reference()
    fc = ref.force_constants
    full = compact_fc_to_full_fc(ref.primitive, fc) if fc.shape[0] != fc.shape[1] else fc
    exact = TiledHarmonic(ref.supercell, full)
    monkeypatch.setattr(evaluate, "mace_calculator", lambda *a, **k: exact)
    cfg = load_config(Path(__file__).resolve().parents[1] / "config" / "paper.yaml")
    cfg["evaluate"]["elastic"] = False            # a harmonic model has no strain response
    cfg["evaluate"]["imaginary"]["relax"] = False  # ... and no bottom along an imaginary mode
    cfg["phonons"]["mesh"] = 8
    assert cfg["phonons"]["convention"] == "benchmark"
    unit = to_ase_atoms(ref.unitcell)
    test = unit.repeat((7, 1, 1))  # a labelled test structure: the model's own labels, so zero error
    test.rattle(0.02, seed=1)
    test.calc = exact
    set_labels(test, test.get_potential_energy(), test.get_forces(), None)
    write_extxyz(tmp_path / "test.extxyz", [test])
    modes = find_imaginary_modes(ref, threshold=cfg["phonons"]["imaginary_threshold"])
    ref.save(tmp_path / "reference.yaml", settings={"force_sets": True})  # drift-corrected, see _reference
    m = evaluate.evaluate_model(tmp_path / "unused.model", unit, tmp_path / "reference.yaml",
                                tmp_path / "test.extxyz", cfg, tmp_path / "out", reference_modes=modes,
                                log=lambda s: None)
    assert m["rmse"] < 1e-6 and m["phonon_rmse"] < 1e-6  # THz
    assert m["benchmark_min_frequency"] < -1.5
    assert m["force_mae"] < 1e-3  # meV/Å: the labels as extxyz stores them
    assert m["surface_modes_source"] == "given" and m["probe_supercell_matrix"] == [[7, 0, 0], [0, 1, 0], [0, 0, 1]]
    import json
    surface = json.loads((tmp_path / "out" / "surface.json").read_text())["surface"]
    e = np.asarray(surface["energies_meV_per_atom"])
    assert e.shape == (9, 9) and e.min() < 0
    centre = len(surface["amplitudes"]) // 2
    for axis, (f, q_axis) in enumerate(zip(surface["mode_frequency"], surface["Q_axes"])):
        along = e[:, centre] if axis == 0 else e[centre, :]
        q = np.asarray(q_axis) * 1e-10 * np.sqrt(_amu)  # SI: kg^1/2 m
        harmonic = -0.5 * (2 * np.pi * abs(f) * 1e12) ** 2 * q**2 / _e * 1000 / surface["n_atoms_supercell"]
        assert np.allclose(along, harmonic, rtol=1e-3, atol=1e-6), (axis, along, harmonic)
