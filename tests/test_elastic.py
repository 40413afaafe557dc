"""Elastic, EOS and Slack properties with EMT copper (fast: a few seconds in all)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from ase.build import bulk
from ase.calculators.emt import EMT

from phononft.elastic import (
    eos_bulk_modulus,
    elastic_constants,
    elastic_moduli,
    elastic_properties,
    gruneisen_from_poisson,
    slack_kappa,
    slack_prefactor,
)
from phononft.label import SoftenedCalculator
from phononft.tasks import relax


def _relaxed(structure: str, a: float, calc=None, **kw):
    atoms = bulk("Cu", structure, a=a, **kw)
    relaxed, _ = relax(atoms, calc or EMT(), log=lambda s: None)
    return relaxed


@pytest.fixture(scope="module")
def fcc():
    return _relaxed("fcc", 3.6, cubic=True)


@pytest.fixture(scope="module")
def fcc_props(fcc):
    return elastic_properties(fcc, EMT())


def test_fcc_cu_cubic_tensor(fcc_props):
    p = fcc_props
    c = np.array(p["C"])
    assert p["C11"] > p["C12"] > 0 and p["C44"] > 0
    # cubic symmetry, to numerical precision
    for a, b in [("C11", "C22"), ("C11", "C33"), ("C12", "C13"), ("C12", "C23"), ("C44", "C55"), ("C44", "C66")]:
        assert p[a] == pytest.approx(p[b], abs=1e-6)
    assert np.abs(c[:3, 3:]).max() < 1e-6 and np.abs(c[3:, 3:] - np.diag(np.diag(c[3:, 3:]))).max() < 1e-6
    # EMT Cu (checked with ASE directly): C11 ~ 172.6, C12 ~ 115.4, C44 ~ 89.9 GPa
    assert p["C11"] == pytest.approx(172.6, abs=1.0)
    assert p["C12"] == pytest.approx(115.4, abs=1.0)
    assert p["C44"] == pytest.approx(89.9, abs=1.0)
    assert p["mechanically_stable"] and p["cij_min_eigenvalue"] > 0


def test_fcc_cu_bulk_modulus_consistency(fcc_props):
    p = fcc_props
    assert p["bulk_modulus_eos"] == pytest.approx(134.2, abs=1.0)  # EMT Cu, ase.eos Birch-Murnaghan
    assert 3.5 < p["bprime"] < 5.0
    assert p["v0_per_atom"] == pytest.approx(11.566, abs=0.01)
    assert p["bulk_modulus_vrh"] == pytest.approx(p["bulk_modulus_eos"], rel=0.02)
    assert p["bulk_modulus_vrh"] == pytest.approx((p["C11"] + 2 * p["C12"]) / 3, rel=1e-9)  # cubic: K_V = K_R
    assert p["shear_modulus_voigt"] >= p["shear_modulus_vrh"] >= p["shear_modulus_reuss"] > 0
    k, g = p["bulk_modulus_vrh"], p["shear_modulus_vrh"]
    assert p["youngs_modulus"] == pytest.approx(9 * k * g / (3 * k + g))
    assert 0 < p["poisson_ratio"] < 0.5


def test_fcc_cu_sound_debye_slack(fcc_props, fcc):
    p = fcc_props
    rho = fcc.get_masses().sum() * 1.66053906660e-27 / (fcc.get_volume() * 1e-30)
    assert p["density"] == pytest.approx(rho)
    assert p["v_longitudinal"] > p["v_mean"] > p["v_transverse"] > 0
    assert p["v_longitudinal"] == pytest.approx(math.sqrt((p["bulk_modulus_vrh"] + 4 / 3 * p["shear_modulus_vrh"]) * 1e9 / rho))
    assert 330 < p["debye_temperature"] < 400  # EMT Cu ~368 K (experiment 343 K)
    assert p["atoms_per_primitive_cell"] == 1
    assert p["debye_temperature_acoustic"] == pytest.approx(p["debye_temperature"])
    assert p["gruneisen_slack"] == pytest.approx(gruneisen_from_poisson(p["poisson_ratio"]))
    assert 10 < p["kappa_slack"] < 40  # ~21 W/m/K
    json.dumps(p)  # JSON-able


def test_slack_formula_by_hand():
    # gamma = 2: A = 2.43e-6 / 0.8 = 3.04e-6 (Slack's ~3.1e-6 W/m/K per amu K^3 Angstrom)
    assert slack_prefactor(2.0) == pytest.approx(3.037e-6, rel=1e-3)
    nu = 0.25
    gamma = gruneisen_from_poisson(nu)
    assert gamma == pytest.approx(3 * 1.25 / (2 * 1.25))
    # n = 2 atoms: A M theta_a^3 delta n^(1/3) / (gamma^2 T) == A M theta_D^3 delta / (gamma^2 n^(2/3) T)
    out = slack_kappa(debye_temperature=300.0, poisson_ratio=nu, mean_atomic_mass=30.0, volume_per_atom=20.0,
                      atoms_per_primitive_cell=2, temperature=300.0)
    expected = slack_prefactor(gamma) * 30.0 * 300.0**3 * 20.0 ** (1 / 3) / (gamma**2 * 2 ** (2 / 3) * 300.0)
    assert out["kappa_slack"] == pytest.approx(expected, rel=1e-12)
    assert out["debye_temperature_acoustic"] == pytest.approx(300.0 / 2 ** (1 / 3))
    # undefined inputs -> NaN, no exception
    assert math.isnan(slack_kappa(debye_temperature=float("nan"), poisson_ratio=0.3, mean_atomic_mass=30.0,
                                  volume_per_atom=20.0, atoms_per_primitive_cell=1)["kappa_slack"])


def test_bcc_cu_is_mechanically_unstable():
    bcc = _relaxed("bcc", 2.87, cubic=True)
    p = elastic_constants(bcc, EMT())
    # EMT bcc Cu: C11 ~ 125.7 < C12 ~ 134.0 GPa: negative tetragonal shear C' = (C11 - C12)/2 (Bain path)
    assert p["C11"] < p["C12"]
    assert p["cij_min_eigenvalue"] == pytest.approx((p["C11"] - p["C12"]), abs=1e-6)  # eigenvalue C11 - C12
    assert p["cij_min_eigenvalue"] < -5
    assert not p["mechanically_stable"]
    assert p["C44"] > 0


def test_softened_calculator_scales_moduli_exactly(fcc):
    s = 1.04
    soft = SoftenedCalculator(EMT(), s)
    atoms = fcc.copy()
    atoms.set_cell(fcc.cell[:] * s, scale_atoms=True)  # the softened equilibrium, exactly
    p0 = elastic_properties(fcc, EMT())
    p1 = elastic_properties(atoms, soft)
    for key in ("C11", "C12", "C44", "bulk_modulus_eos", "bulk_modulus_vrh", "shear_modulus_vrh", "youngs_modulus"):
        assert p1[key] == pytest.approx(p0[key] * s**-3, rel=1e-6), key
    assert p1["v0_per_atom"] == pytest.approx(p0["v0_per_atom"] * s**3, rel=1e-6)
    assert p1["bprime"] == pytest.approx(p0["bprime"], rel=1e-5)
    assert p1["poisson_ratio"] == pytest.approx(p0["poisson_ratio"], rel=1e-9)
    # density also scales as s^-3: sound velocities are unchanged, theta_D ~ 1/s, kappa ~ theta^3 delta ~ s^-2
    assert p1["v_mean"] == pytest.approx(p0["v_mean"], rel=1e-9)
    assert p1["debye_temperature"] == pytest.approx(p0["debye_temperature"] / s, rel=1e-9)
    assert p1["kappa_slack"] == pytest.approx(p0["kappa_slack"] * s**-2, rel=1e-9)


def test_hcp_relaxed_ion_constants():
    hcp = _relaxed("hcp", 2.54)
    relaxed = np.array(elastic_constants(hcp, EMT(), relax_ions=True)["C"])
    clamped = np.array(elastic_constants(hcp, EMT(), relax_ions=False)["C"])
    # C_relaxed = C_clamped - Lambda K^-1 Lambda^T: the difference is positive semi-definite and non-zero
    diff = np.linalg.eigvalsh(clamped - relaxed)
    assert diff.min() > -0.05 and diff.max() > 5
    # hexagonal: C66 = (C11 - C12)/2, C11 = C22
    assert relaxed[5, 5] == pytest.approx((relaxed[0, 0] - relaxed[0, 1]) / 2, rel=5e-3)
    assert relaxed[0, 0] == pytest.approx(relaxed[1, 1], rel=1e-3)


def test_moduli_isotropic_input():
    # an isotropic tensor with lambda, mu: K = lambda + 2mu/3, G = mu for Voigt, Reuss and Hill
    lam, mu = 60.0, 40.0
    c = np.zeros((6, 6))
    c[:3, :3] = lam
    c[np.arange(3), np.arange(3)] = lam + 2 * mu
    c[np.arange(3, 6), np.arange(3, 6)] = mu
    m = elastic_moduli(c)
    for key in ("bulk_modulus_voigt", "bulk_modulus_reuss", "bulk_modulus_vrh"):
        assert m[key] == pytest.approx(lam + 2 * mu / 3)
    for key in ("shear_modulus_voigt", "shear_modulus_reuss", "shear_modulus_vrh"):
        assert m[key] == pytest.approx(mu)
    assert m["poisson_ratio"] == pytest.approx(lam / (2 * (lam + mu)))
    assert math.isnan(m["v_mean"])  # no density given


def test_eos_only_cell_scan_shape(fcc):
    out = eos_bulk_modulus(fcc, EMT(), strains=np.linspace(-0.02, 0.02, 5))
    assert len(out["eos_volumes_per_atom"]) == 5
    assert out["e0_per_atom"] == pytest.approx(min(out["eos_energies_per_atom"]), abs=1e-5)
    assert out["v0_per_atom"] == pytest.approx(fcc.get_volume() / len(fcc), rel=1e-3)  # input is relaxed


@pytest.mark.parametrize("structure, expected", [(("fcc", 3.6, True), [0, 3]), (("hcp", 2.54, False), [0, 2, 3])],
                         ids=["fcc", "hcp"])
def test_symmetry_reduced_strains_give_the_full_tensor(structure, expected):
    """2 of 6 strain components (4 strained cells instead of 12) for cubic, 3 for hexagonal; the point group
    completes the tensor to the one of all six components (relaxed ions included)."""
    from phononft.elastic import strain_components

    name, a, cubic = structure
    atoms = _relaxed(name, a, cubic=cubic)
    assert strain_components(atoms) == expected
    reduced = elastic_constants(atoms, EMT(), relax_ions=True)
    full = elastic_constants(atoms, EMT(), relax_ions=True, symprec=None)
    assert reduced["elastic_cells"] == 2 * len(expected) and full["elastic_cells"] == 12
    np.testing.assert_allclose(reduced["C"], full["C"], atol=2e-3 * np.abs(full["C"]).max())
