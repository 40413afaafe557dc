"""Elastic and Slack-type properties of a crystal with any ASE calculator.

Every function is a pure function of ``(atoms, calc)``: it never modifies ``atoms`` and returns a JSON-able
dict of plain floats/bools/lists (NaN where a quantity is undefined, e.g. sound velocities of a
mechanically unstable crystal).  Units are in the key names or listed below.

The structure passed in is assumed to be *relaxed* with the same calculator (cell and positions, as the
evaluate stage does with :func:`phononft.tasks.relax`): the stress-strain and energy-volume curves
are taken around it.  A residual stress only shifts the finite-strain coefficients by O(stress), and
central differences cancel the first-order part.

Every property is a PLAN (strained cells to compute, as tasks of :mod:`phononft.tasks`) and a RESULT (the
numbers from the answered tasks), so that the reference's DFT labeller (VASP jobs) and every model run the
same code; the ``(atoms, calc)`` functions compose the two with an ASE calculator in this process.

Conventions
-----------
* Stress follows ASE: ``atoms.get_stress()`` = (1/V) dE/d(strain) in eV/Å^3, Voigt order
  xx, yy, zz, yz, xz, xy; positive = tensile (the cell wants to shrink).  Hence C = d(sigma)/d(epsilon)
  with no sign flip.
* Voigt strain: engineering shear strains (epsilon_4 = 2 eps_yz, ...), so C is the usual 6x6 matrix
  (C44 of a cubic crystal is the shear modulus of the {100}<010> shear).
* Moduli in GPa, sound velocities in m/s, density in kg/m^3, Debye temperatures in K, thermal
  conductivity in W/m/K.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import spglib
from ase import Atoms
from ase.eos import EquationOfState
from ase.units import GPa, _amu, _hbar, _k

from .tasks import labelled_energy, labelled_stress, run_tasks, task

__all__ = [
    "eos_tasks",
    "eos_result",
    "elastic_tasks",
    "elastic_result",
    "strain_components",
    "properties_tasks",
    "properties_result",
    "eos_bulk_modulus",
    "elastic_constants",
    "elastic_moduli",
    "slack_kappa",
    "slack_prefactor",
    "elastic_properties",
]

#: Linear strains of the EOS scan (+-3 %, 7 points) and the finite strain of the elastic tensor.
DEFAULT_EOS_STRAINS = tuple(np.linspace(-0.03, 0.03, 7))
DEFAULT_ELASTIC_DELTA = 0.005


def eos_tasks(atoms: Atoms, strains: Sequence[float] = DEFAULT_EOS_STRAINS) -> list[Atoms]:
    """PLAN of the EOS scan: the cell scaled isotropically by ``1 + s`` for every *linear* strain ``s``
    (default +-3 %, 7 points: volumes -8.7 % .. +9.3 %), fractional positions fixed (static tasks)."""
    out = []
    for s in np.asarray(strains, dtype=float):
        a = atoms.copy()
        a.set_cell(atoms.cell[:] * (1.0 + s), scale_atoms=True)
        out.append(task(a, "static", eos_strain=float(s)))
    return out


def eos_result(atoms: Atoms, labelled: Sequence[Atoms], *, eos: str = "birchmurnaghan") -> dict:
    """RESULT of the EOS scan: Birch-Murnaghan fit (ASE's :class:`ase.eos.EquationOfState`, third order).

    Fixed fractional positions: exact for Bravais lattices and high-symmetry cells, where forces vanish by
    symmetry at every volume; for internal degrees of freedom this is the *unrelaxed* EOS, slightly stiffer.
    Keys: ``bulk_modulus_eos`` [GPa], ``v0_per_atom`` [Å^3], ``e0_per_atom`` [eV/atom],
    ``bprime`` (dB/dP, dimensionless), ``eos_error`` (None, or why the fit failed: then NaNs),
    ``eos_volumes_per_atom`` [Å^3] and ``eos_energies_per_atom`` [eV/atom] (the scan, for plots).
    """
    n = len(atoms)
    volumes = [a.get_volume() for a in labelled]
    energies = [labelled_energy(a) for a in labelled]
    nan = float("nan")
    error = None
    try:
        fit = EquationOfState(volumes, energies, eos=eos)
        v0, e0, b0 = fit.fit()
        params = np.asarray(fit.eos_parameters)  # birchmurnaghan: E0, B0, BP, V0
        bprime = float(params[2]) if eos in ("birchmurnaghan", "murnaghan", "vinet", "pouriertarantola") else nan
    except Exception as exc:  # noqa: BLE001 - a pathological model must not stop the evaluation
        v0 = e0 = b0 = bprime = nan
        error = f"{type(exc).__name__}: {exc}"
    return {
        "eos_error": error,
        "bulk_modulus_eos": float(b0 / GPa),
        "v0_per_atom": float(v0 / n),
        "e0_per_atom": float(e0 / n),
        "bprime": bprime,
        "eos_volumes_per_atom": [float(v / n) for v in volumes],
        "eos_energies_per_atom": [float(e / n) for e in energies],
    }


def eos_bulk_modulus(atoms: Atoms, calc, *, strains: Sequence[float] = DEFAULT_EOS_STRAINS,
                     eos: str = "birchmurnaghan") -> dict:
    """Bulk modulus from an isotropic volume scan with ``calc`` (:func:`eos_tasks` + :func:`eos_result`)."""
    return eos_result(atoms, run_tasks(eos_tasks(atoms, strains), calc), eos=eos)


# --------------------------------------------------------------------------------------------
# Elastic tensor
# --------------------------------------------------------------------------------------------
def _strain_tensor(voigt: np.ndarray) -> np.ndarray:
    """Voigt strain (engineering shears) -> symmetric 3x3 tensor."""
    v = np.asarray(voigt, dtype=float)
    return np.array([[v[0], v[5] / 2, v[4] / 2], [v[5] / 2, v[1], v[3] / 2], [v[4] / 2, v[3] / 2, v[2]]])


def _strain_voigt(eps: np.ndarray) -> np.ndarray:
    return np.array([eps[0, 0], eps[1, 1], eps[2, 2], 2 * eps[1, 2], 2 * eps[0, 2], 2 * eps[0, 1]])


def _stress_tensor(voigt: np.ndarray) -> np.ndarray:
    v = np.asarray(voigt, dtype=float)
    return np.array([[v[0], v[5], v[4]], [v[5], v[1], v[3]], [v[4], v[3], v[2]]])


def _stress_voigt(sig: np.ndarray) -> np.ndarray:
    return np.array([sig[0, 0], sig[1, 1], sig[2, 2], sig[1, 2], sig[0, 2], sig[0, 1]])


def _strained(atoms: Atoms, voigt_index: int, amount: float) -> Atoms:
    """Copy of ``atoms`` under a homogeneous symmetric strain with one Voigt component = ``amount``."""
    eps = _strain_tensor(np.eye(6)[voigt_index] * amount)
    a = atoms.copy()
    a.set_cell(atoms.cell[:] @ (np.eye(3) + eps), scale_atoms=True)  # rows are lattice vectors
    return a


def point_group(atoms: Atoms, symprec: float = 1e-3) -> np.ndarray:
    """The crystal's point-group rotations in Cartesian coordinates (spglib), shape (n, 3, 3)."""
    sym = spglib.get_symmetry((atoms.cell[:], atoms.get_scaled_positions(), atoms.numbers), symprec=symprec)
    if sym is None:
        return np.eye(3)[None]
    lattice = atoms.cell[:].T  # columns are lattice vectors: x_cart = L x_frac
    rotations = {tuple(np.round(lattice @ r @ np.linalg.inv(lattice), 8).ravel()) for r in sym["rotations"]}
    return np.array([np.reshape(r, (3, 3)) for r in sorted(rotations)])


def strain_components(atoms: Atoms, symprec: float | None = 1e-3) -> list[int]:
    """The Voigt strain components whose stress responses, with their images under the point group, determine
    the whole elastic tensor: 2 of 6 for cubic crystals (xx, yz), 3 for hexagonal, 6 for triclinic (and for
    ``symprec=None``: no symmetry used).  Each component costs two strained cells (+-delta)."""
    if symprec is None:
        return list(range(6))
    rotations = point_group(atoms, symprec)
    known: list[np.ndarray] = []
    chosen = []
    for j in range(6):
        e = np.eye(6)[j]
        if known and np.linalg.matrix_rank(np.array(known + [e]), tol=1e-8) == np.linalg.matrix_rank(np.array(known), tol=1e-8):
            continue
        chosen.append(j)
        eps = _strain_tensor(e)
        known.extend(_strain_voigt(r @ eps @ r.T) for r in rotations)
        if np.linalg.matrix_rank(np.array(known), tol=1e-8) == 6:
            break
    return chosen


def elastic_tasks(atoms: Atoms, *, delta: float = DEFAULT_ELASTIC_DELTA, fmax: float = 1e-4,
                  relax_ions: bool = True, symprec: float | None = 1e-3) -> list[Atoms]:
    """PLAN of the elastic tensor: each strain component of :func:`strain_components` at +-``delta``
    (engineering strain; ``cell' = cell (1 + eps)``), positions relaxed at fixed cell (``relax_ions`` tasks:
    the *relaxed-ion* constants) or not (static tasks).  ``symprec=None``: all six components."""
    out = []
    for j in strain_components(atoms, symprec):
        for sign in (1.0, -1.0):
            kind = "relax_ions" if relax_ions and len(atoms) > 1 else "static"
            out.append(task(_strained(atoms, j, sign * delta), kind, fmax=fmax if kind != "static" else None,
                            elastic_component=j, elastic_strain=sign * delta))
    return out


def elastic_result(atoms: Atoms, labelled: Sequence[Atoms], *, symprec: float | None = 1e-3) -> dict:
    """RESULT of the elastic tensor: central differences of the stresses, completed by symmetry.

    For each computed component j, ``D_j = [sigma(+delta) - sigma(-delta)] / (2 delta)`` is the stress
    response to the unit strain e_j; every point-group rotation R gives the response ``R D_j R^T`` to the
    strain ``R e_j R^T`` (the crystal is invariant under R), and C [GPa] is the least-squares solution of
    all these ``sigma = C epsilon``, symmetrised ``(C + C^T)/2`` (the asymmetry before that is
    ``cij_asymmetry`` [GPa]).  For a triclinic crystal (or ``symprec=None``: no rotation used) this is the
    plain 12-cell finite-strain tensor.

    Returns :func:`elastic_moduli`'s keys (Cij, VRH moduli [GPa], Poisson ratio, sound velocities [m/s],
    ``density`` [kg/m^3], ``debye_temperature`` [K], ``mechanically_stable``) plus ``elastic_delta``,
    ``elastic_cells`` (strained cells computed) and ``ionic_relaxation_steps``.
    """
    rotations = point_group(atoms, symprec) if symprec is not None else np.eye(3)[None]
    by_component: dict[int, dict[float, np.ndarray]] = {}
    steps = 0
    for a in labelled:
        by_component.setdefault(int(a.info["elastic_component"]), {})[float(a.info["elastic_strain"])] = \
            labelled_stress(a)
        steps += int(a.info.get("relax_steps", 0) or 0)
    strains, stresses, delta = [], [], float("nan")
    for j, pair in sorted(by_component.items()):
        (d_plus, s_plus), (d_minus, s_minus) = sorted(pair.items(), reverse=True)
        delta = d_plus
        response = _stress_tensor((s_plus - s_minus) / (d_plus - d_minus) / GPa)
        eps = _strain_tensor(np.eye(6)[j])
        for r in rotations:
            strains.append(_strain_voigt(r @ eps @ r.T))
            stresses.append(_stress_voigt(r @ response @ r.T))
    c_t, *_ = np.linalg.lstsq(np.array(strains), np.array(stresses), rcond=None)
    c = c_t.T
    asym = float(np.abs(c - c.T).max())
    c = 0.5 * (c + c.T)
    volume = atoms.get_volume()
    density = atoms.get_masses().sum() * _amu / (volume * 1e-30)
    out = elastic_moduli(c, density=density, volume_per_atom=volume / len(atoms))
    out.update({"cij_asymmetry": asym, "elastic_delta": float(delta), "elastic_cells": len(labelled),
                "ionic_relaxation_steps": steps})
    return out


def elastic_moduli(cij: np.ndarray, *, density: float | None = None, volume_per_atom: float | None = None) -> dict:
    """Voigt-Reuss-Hill moduli, sound velocities, Debye temperature and Born stability from Cij [GPa].

    * Voigt: K_V = [(C11+C22+C33) + 2(C12+C23+C13)]/9,
      G_V = [(C11+C22+C33) - (C12+C23+C13) + 3(C44+C55+C66)]/15;
      Reuss from S = C^-1: 1/K_R = (S11+S22+S33) + 2(S12+S23+S13),
      15/G_R = 4(S11+S22+S33) - 4(S12+S23+S13) + 3(S44+S55+S66); Hill = arithmetic means.
    * Young's modulus E = 9KG/(3K+G), Poisson ratio nu = (3K-2G)/(2(3K+G)) (Hill values).
    * Sound velocities (isotropic aggregate, Hill moduli): v_l = sqrt((K + 4G/3)/rho),
      v_t = sqrt(G/rho), mean v_m = [(2/v_t^3 + 1/v_l^3)/3]^(-1/3) [m/s]; NaN if G <= 0.
    * Debye temperature (Anderson): theta_D = (hbar/k_B) v_m (6 pi^2 n)^(1/3), n = atoms per volume.
    * Born stability: all eigenvalues of the (symmetrised) 6x6 C positive -> ``mechanically_stable``;
      the smallest eigenvalue is ``cij_min_eigenvalue`` [GPa].
    """
    c = np.asarray(cij, dtype=float)
    eig = np.linalg.eigvalsh(0.5 * (c + c.T))
    k_v = (c[0, 0] + c[1, 1] + c[2, 2] + 2.0 * (c[0, 1] + c[1, 2] + c[0, 2])) / 9.0
    g_v = (c[0, 0] + c[1, 1] + c[2, 2] - (c[0, 1] + c[1, 2] + c[0, 2]) + 3.0 * (c[3, 3] + c[4, 4] + c[5, 5])) / 15.0
    try:
        s = np.linalg.inv(c)
        k_r = 1.0 / (s[0, 0] + s[1, 1] + s[2, 2] + 2.0 * (s[0, 1] + s[1, 2] + s[0, 2]))
        g_r = 15.0 / (4.0 * (s[0, 0] + s[1, 1] + s[2, 2]) - 4.0 * (s[0, 1] + s[1, 2] + s[0, 2])
                      + 3.0 * (s[3, 3] + s[4, 4] + s[5, 5]))
    except np.linalg.LinAlgError:
        k_r = g_r = float("nan")
    k_h, g_h = 0.5 * (k_v + k_r), 0.5 * (g_v + g_r)
    young = 9.0 * k_h * g_h / (3.0 * k_h + g_h)
    poisson = (3.0 * k_h - 2.0 * g_h) / (2.0 * (3.0 * k_h + g_h))
    out = {
        "C": [[float(x) for x in row] for row in c],
        **{f"C{i + 1}{j + 1}": float(c[i, j]) for i in range(6) for j in range(i, 6)},
        "cij_min_eigenvalue": float(eig.min()),
        "mechanically_stable": bool(eig.min() > 0),
        "bulk_modulus_voigt": float(k_v), "bulk_modulus_reuss": float(k_r), "bulk_modulus_vrh": float(k_h),
        "shear_modulus_voigt": float(g_v), "shear_modulus_reuss": float(g_r), "shear_modulus_vrh": float(g_h),
        "youngs_modulus": float(young), "poisson_ratio": float(poisson),
    }
    nan = float("nan")
    v_l = v_t = v_m = theta = nan
    if density is not None and density > 0:
        kp, gp = k_h * 1e9, g_h * 1e9  # Pa
        if np.isfinite(gp) and gp > 0 and kp + 4.0 * gp / 3.0 > 0:
            v_l = math.sqrt((kp + 4.0 * gp / 3.0) / density)
            v_t = math.sqrt(gp / density)
            v_m = ((2.0 / v_t**3 + 1.0 / v_l**3) / 3.0) ** (-1.0 / 3.0)
            if volume_per_atom:
                n_density = 1.0 / (volume_per_atom * 1e-30)  # atoms per m^3
                theta = _hbar / _k * v_m * (6.0 * math.pi**2 * n_density) ** (1.0 / 3.0)
    out.update({"density": float(density) if density else nan, "v_longitudinal": v_l, "v_transverse": v_t,
                "v_mean": v_m, "debye_temperature": float(theta)})
    return out


def elastic_constants(atoms: Atoms, calc, *, delta: float = DEFAULT_ELASTIC_DELTA, relax_ions: bool = True,
                      fmax: float = 1e-4, symprec: float | None = 1e-3) -> dict:
    """Full 6x6 elastic tensor [GPa] by finite strain with ``calc`` (:func:`elastic_tasks` +
    :func:`elastic_result`), plus ``residual_stress`` [GPa] of the input cell."""
    out = elastic_result(atoms, run_tasks(elastic_tasks(atoms, delta=delta, fmax=fmax, relax_ions=relax_ions,
                                                         symprec=symprec), calc), symprec=symprec)
    a0 = atoms.copy()
    a0.calc = calc
    out["residual_stress"] = [float(x) for x in np.asarray(a0.get_stress(voigt=True)) / GPa]
    return out


# --------------------------------------------------------------------------------------------
# Slack
# --------------------------------------------------------------------------------------------
def gruneisen_from_poisson(nu: float) -> float:
    """Acoustic Grüneisen parameter gamma = 3(1 + nu) / (2(2 - 3 nu)) (Sanditov & Belomestnykh)."""
    return 3.0 * (1.0 + nu) / (2.0 * (2.0 - 3.0 * nu))


def slack_prefactor(gamma: float) -> float:
    """Slack's A(gamma) in W/m/K per (amu K^3 Å), Julian's gamma dependence.

    A = 0.849 * 3 * 4^(1/3) / (20 pi^3 (1 - 0.514/gamma + 0.228/gamma^2)) * k_B^3 * amu * Å / hbar^3
      = 2.4297e-6 / (1 - 0.514/gamma + 0.228/gamma^2)   (3.04e-6 at gamma = 2, Slack's ~3.1e-6).
    """
    base = 0.849 * 3.0 * 4.0 ** (1.0 / 3.0) / (20.0 * math.pi**3) * (_k / _hbar) ** 3 * _amu * 1e-10
    return base / (1.0 - 0.514 / gamma + 0.228 / gamma**2)


def slack_kappa(*, debye_temperature: float, poisson_ratio: float, mean_atomic_mass: float,
                volume_per_atom: float, atoms_per_primitive_cell: int, temperature: float = 300.0) -> dict:
    """Lattice thermal conductivity from the Slack formula (Morelli & Slack 2006) [W/m/K].

        kappa = A(gamma) * M * theta_a^3 * delta * n^(1/3) / (gamma^2 * T)

    with M the mean atomic mass [amu], delta = (volume per atom)^(1/3) [Å], n the number of atoms in
    the primitive cell, theta_a = theta_D n^(-1/3) the acoustic Debye temperature [K] (theta_D from
    the mean sound velocity, :func:`elastic_moduli`), gamma from the Poisson ratio
    (:func:`gruneisen_from_poisson`), A(gamma) from :func:`slack_prefactor`, T = ``temperature`` [K].
    Equivalently kappa = A M theta_D^3 delta / (gamma^2 n^(2/3) T).  NaN when an input is undefined
    (unstable crystal) or gamma <= 0.

    Keys: ``kappa_slack`` [W/m/K], ``gruneisen_slack``, ``debye_temperature_acoustic`` [K],
    ``slack_A`` [W/m/K/(amu K^3 Å)], ``kappa_temperature`` [K].
    """
    nan = float("nan")
    n = int(atoms_per_primitive_cell)
    gamma = gruneisen_from_poisson(poisson_ratio) if np.isfinite(poisson_ratio) and poisson_ratio < 2 / 3 else nan
    theta_a = debye_temperature * n ** (-1.0 / 3.0) if np.isfinite(debye_temperature) else nan
    if not (np.isfinite(gamma) and gamma > 0 and np.isfinite(theta_a)):
        return {"kappa_slack": nan, "gruneisen_slack": float(gamma), "debye_temperature_acoustic": float(theta_a),
                "slack_A": nan, "kappa_temperature": float(temperature)}
    a = slack_prefactor(gamma)
    delta = volume_per_atom ** (1.0 / 3.0)
    kappa = a * mean_atomic_mass * theta_a**3 * delta * n ** (1.0 / 3.0) / (gamma**2 * temperature)
    return {"kappa_slack": float(kappa), "gruneisen_slack": float(gamma), "debye_temperature_acoustic": float(theta_a),
            "slack_A": float(a), "kappa_temperature": float(temperature)}


def _atoms_per_primitive_cell(atoms: Atoms, symprec: float = 1e-3) -> int:
    cell = (atoms.cell[:], atoms.get_scaled_positions(), atoms.numbers)
    prim = spglib.find_primitive(cell, symprec=symprec)
    return len(prim[2]) if prim is not None else len(atoms)


# --------------------------------------------------------------------------------------------
# Bundle
# --------------------------------------------------------------------------------------------
def properties_tasks(atoms: Atoms, *, strains: Sequence[float] = DEFAULT_EOS_STRAINS,
                     delta: float = DEFAULT_ELASTIC_DELTA, fmax: float = 1e-4, relax_ions: bool = True,
                     symprec: float = 1e-3) -> list[Atoms]:
    """PLAN of every elastic property: the EOS scan and the strained cells of the elastic tensor."""
    return eos_tasks(atoms, strains) + elastic_tasks(atoms, delta=delta, fmax=fmax, relax_ions=relax_ions,
                                                     symprec=symprec)


def properties_result(atoms: Atoms, labelled: Sequence[Atoms], *, temperature: float = 300.0,
                      symprec: float = 1e-3) -> dict:
    """RESULT of :func:`properties_tasks`: EOS, elastic tensor, VRH moduli, sound velocities, Debye
    temperature and Slack kappa, flat.

    Keys (flat, for the metrics table): ``bulk_modulus_eos``, ``v0_per_atom``, ``bprime``,
    ``C11`` .. ``C66`` (upper triangle), ``bulk_modulus_vrh``, ``shear_modulus_vrh`` (and Voigt/Reuss),
    ``youngs_modulus`` [GPa], ``poisson_ratio``, ``v_longitudinal``/``v_transverse``/``v_mean`` [m/s],
    ``density`` [kg/m^3], ``debye_temperature``/``debye_temperature_acoustic`` [K],
    ``mechanically_stable``, ``cij_min_eigenvalue`` [GPa], ``kappa_slack`` [W/m/K], ``gruneisen_slack``,
    ``atoms_per_primitive_cell``, ``mean_atomic_mass`` [amu].  Non-scalar extras: ``C`` (6x6 list),
    ``eos_volumes_per_atom``/``eos_energies_per_atom``.
    """
    eos = [a for a in labelled if "eos_strain" in a.info]
    strained = [a for a in labelled if "elastic_component" in a.info]
    out: dict = {}
    out.update(eos_result(atoms, eos))
    out.update(elastic_result(atoms, strained, symprec=symprec))
    n_prim = _atoms_per_primitive_cell(atoms, symprec)
    mass = float(atoms.get_masses().mean())
    out["atoms_per_primitive_cell"] = n_prim
    out["mean_atomic_mass"] = mass
    out.update(slack_kappa(debye_temperature=out["debye_temperature"], poisson_ratio=out["poisson_ratio"],
                           mean_atomic_mass=mass, volume_per_atom=atoms.get_volume() / len(atoms),
                           atoms_per_primitive_cell=n_prim, temperature=temperature))
    return out


def elastic_properties(atoms: Atoms, calc, *, delta: float = DEFAULT_ELASTIC_DELTA, relax_ions: bool = True,
                       strains: Sequence[float] = DEFAULT_EOS_STRAINS, temperature: float = 300.0,
                       fmax: float = 1e-4, symprec: float = 1e-3) -> dict:
    """:func:`properties_result` of :func:`properties_tasks` answered by ``calc`` in this process."""
    tasks = properties_tasks(atoms, strains=strains, delta=delta, fmax=fmax, relax_ions=relax_ions, symprec=symprec)
    return properties_result(atoms, run_tasks(tasks, calc), temperature=temperature, symprec=symprec)
