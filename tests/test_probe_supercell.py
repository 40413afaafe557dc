"""A model is probed on a supercell where the reference's imaginary modes exist (modes.probe_supercell).

Reference: EMT bcc Cu searched on a 3x3x3 conventional supercell, whose most imaginary modes lie at
q = (1/3, 1/3, 0)-type points (unit-cell reciprocal basis), on the Gamma-N line: not commensurate with
the default 5 Å probe cell (2x2x2).  Model: the same potential softened, E_s(R) = E(R/s), on its own
relaxed (exactly scaled) cell, so that its surface along the reference's modes is known exactly:
E_s(A s) = E(A).
"""

from __future__ import annotations

import numpy as np
import pytest
from ase.build import bulk
from ase.calculators.emt import EMT

from phononft.phonon_io import phonon_like
from phononft.imaginary import analyse_imaginary
from phononft.label import SoftenedCalculator
from phononft.modes import find_imaginary_modes, probe_supercell
from phononft.phonons import finite_displacement_phonons
from phononft.surface import energy_surface
from phononft.tasks import relax

pytestmark = pytest.mark.filterwarnings("ignore::Warning")
QUIET = {"log": lambda s: None}
S = 1.03  # softening of the model


@pytest.fixture(scope="module")
def setup():
    atoms, _ = relax(bulk("Cu", "bcc", a=2.87, cubic=True), EMT(), **QUIET)
    ref, _ = finite_displacement_phonons(atoms, EMT(), np.eye(3) * 3, **QUIET)
    modes = find_imaginary_modes(ref)
    model_cell = atoms.copy()
    model_cell.set_cell(atoms.cell[:] * S, scale_atoms=True)
    return atoms, ref, modes, model_cell, SoftenedCalculator(EMT(), S)


def test_reference_modes_need_a_larger_probe_cell(setup):
    atoms, ref, modes, model_cell, soft = setup
    assert len(modes) == 12 and modes[0]["frequency"] == pytest.approx(-0.97, abs=0.05)
    q_unit = np.array(modes[0]["q"]) @ np.linalg.inv(ref.primitive_matrix)
    assert sorted(np.abs(q_unit).round(6)) == pytest.approx([0, 1 / 3, 1 / 3])
    default = probe_supercell(model_cell, 5.0)
    assert np.diag(default).tolist() == [2, 2, 2]
    # today's construction: the model on the default cell cannot be probed along the reference's modes
    small, _ = finite_displacement_phonons(model_cell, soft, default, **QUIET)
    with pytest.raises(ValueError, match="commensurate"):
        energy_surface(small, soft, modes, amplitudes=[0.1])
    # the probe cell follows the modes: the two probed ones, (0,-1/3,-1/3) and (1/3,0,-1/3) -> 3x3x3
    assert np.diag(probe_supercell(model_cell, 5.0, modes)).tolist() == [3, 3, 3]
    assert np.diag(probe_supercell(model_cell, 5.0, modes[:1])).tolist() == [2, 3, 3]  # 1 -> raised to 2
    assert np.diag(probe_supercell(model_cell, 5.0, modes[:1], keep_min_length=False)).tolist() == [1, 3, 3]
    assert np.diag(probe_supercell(ref, 5.0, modes)).tolist() == [3, 3, 3]  # a Phonopy: its unit cell
    # a q that is no fraction of a supercell cannot be probed on any
    with pytest.raises(ValueError, match="fraction"):
        probe_supercell(model_cell, 5.0, [{"q": [0.1234567, 0, 0], "primitive_matrix": np.eye(3).tolist()}])


def test_model_probed_on_the_probe_cell_gets_the_reference_surface(setup):
    atoms, ref, modes, model_cell, soft = setup
    amps = np.array([-0.15, 0.0, 0.15])
    expected = energy_surface(ref, EMT(), modes, amplitudes=amps)
    model, _ = finite_displacement_phonons(model_cell, soft, probe_supercell(model_cell, 5.0, modes), **QUIET)
    got = energy_surface(model, soft, modes, amplitudes=amps * S)
    assert np.allclose(got["mode_q"], expected["mode_q"]) and got["mode_band"] == expected["mode_band"]
    e = np.array(got["energies_meV_per_atom"])
    assert e.shape == (3, 3) and np.isfinite(e).all() and got["surface_min_meV_per_atom"] < 0
    assert np.allclose(e, expected["energies_meV_per_atom"], atol=1e-6)


def test_model_in_the_reference_setting_is_probed_on_the_modes_cell(setup):
    """The workflow builds a model's phonons in the reference's setting (its supercell: here 3x3x3) and probes
    it on the smallest cell >= 5 Å commensurate with the reference's modes (3x3x3, not the 2x2x2 default)."""
    atoms, ref, modes, model_cell, soft = setup
    model = phonon_like(ref, model_cell, soft)
    icfg = {"supercell_min_length": 5.0, "amplitude_max": 0.1, "grid_points": 3, "relax_amplitudes": [0.1],
            "fmax": 1e-3, "relax": False}
    out = analyse_imaginary(model, soft, icfg, given=modes, **QUIET)
    res, surface = out["metrics"], out["surface_file"]["surface"]
    assert res["probe_supercell_matrix"] == (np.eye(3, dtype=int) * 3).tolist()
    assert res["surface_modes_source"] == "given" and surface["n_modes"] == 2
    assert np.isfinite(surface["energies_meV_per_atom"]).all() and res["surface_min_meV_per_atom"] < 0
    # the model's own modes: the reference's twelve, softened by 1/s
    assert res["n_imaginary_modes"] == 12
    assert res["min_imaginary_frequency"] == pytest.approx(modes[0]["frequency"] / S, rel=1e-4)
