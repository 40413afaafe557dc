"""Elastic and Slack-type properties of a crystal with any ASE calculator.

Every function is a pure function of ``(atoms, calc)``: it never modifies ``atoms`` and returns a JSON-able
dict of plain floats/bools/lists (NaN where a quantity is undefined, e.g. sound velocities of a
mechanically unstable crystal).  Units are in the key names or listed below.

The structure passed in is assumed to be *relaxed* with the same calculator (cell and positions, as the
evaluate stage does with :func:`phononft.phonons.relax`): the stress-strain and energy-volume curves
are taken around it.  A residual stress only shifts the finite-strain coefficients by O(stress), and
central differences cancel the first-order part.

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
from ase import Atoms
from ase.units import GPa, _amu, _hbar, _k

__all__ = [
    "eos_bulk_modulus",
    "elastic_constants",
    "elastic_moduli",
    "slack_kappa",
    "slack_prefactor",
    "elastic_properties",
]

_VOIGT = [(0, 0), (1, 1), (2, 2), (1, 2), (0, 2), (0, 1)]


def _energy_at(atoms: Atoms, calc) -> float:
    atoms.calc = calc
    return float(atoms.get_potential_energy())


# --------------------------------------------------------------------------------------------
# Equation of state
# --------------------------------------------------------------------------------------------
def eos_bulk_modulus(atoms: Atoms, calc, *, strains: Sequence[float] = np.linspace(-0.03, 0.03, 7),
                     eos: str = "birchmurnaghan") -> dict:
    """Bulk modulus from an isotropic volume scan fitted with the Birch-Murnaghan EOS.

    The cell is scaled isotropically by ``1 + s`` for every *linear* strain ``s`` in ``strains``
    (default +-3 %, 7 points: volumes -8.7 % .. +9.3 %) with fixed fractional positions (exact for
    the demo's Bravais lattices and high-symmetry cells, where forces vanish by symmetry at every
    volume; for internal degrees of freedom this is the *unrelaxed* EOS, slightly stiffer).
    Fit: ASE's :class:`ase.eos.EquationOfState` (``eos="birchmurnaghan"``, third order).

    Keys: ``bulk_modulus_eos`` [GPa], ``v0_per_atom`` [Å^3], ``e0_per_atom`` [eV/atom],
    ``bprime`` (dB/dP, dimensionless), ``eos_error`` (None, or why the fit failed: then NaNs),
    ``eos_volumes_per_atom`` [Å^3] and ``eos_energies_per_atom``
    [eV/atom] (the scan, for plots).
    """
    from ase.eos import EquationOfState

    n = len(atoms)
    volumes, energies = [], []
    for s in np.asarray(strains, dtype=float):
        a = atoms.copy()
        a.set_cell(atoms.cell[:] * (1.0 + s), scale_atoms=True)
        volumes.append(a.get_volume())
        energies.append(_energy_at(a, calc))
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


# --------------------------------------------------------------------------------------------
# Elastic tensor
# --------------------------------------------------------------------------------------------
def _strained(atoms: Atoms, voigt_index: int, amount: float) -> Atoms:
    """Copy of ``atoms`` under a homogeneous symmetric strain with one Voigt component = ``amount``."""
    eps = np.zeros((3, 3))
    i, j = _VOIGT[voigt_index]
    if i == j:
        eps[i, i] = amount
    else:  # engineering shear strain: eps_ij = eps_ji = amount / 2
        eps[i, j] = eps[j, i] = amount / 2.0
    a = atoms.copy()
    a.set_cell(atoms.cell[:] @ (np.eye(3) + eps), scale_atoms=True)  # rows are lattice vectors
    return a


def _stress_after_ionic_relaxation(atoms: Atoms, calc, *, relax_ions: bool, fmax: float,
                                   max_steps: int, force_tol: float) -> tuple[np.ndarray, int]:
    atoms.calc = calc
    steps = 0
    if relax_ions and len(atoms) > 1 and np.abs(atoms.get_forces()).max() > force_tol:
        from ase.optimize import BFGS

        opt = BFGS(atoms, logfile=None)
        opt.run(fmax=fmax, steps=max_steps)
        steps = int(opt.nsteps)
    return np.asarray(atoms.get_stress(voigt=True), dtype=float), steps


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


def elastic_constants(atoms: Atoms, calc, *, delta: float = 0.005, relax_ions: bool = True,
                      fmax: float = 1e-4, max_steps: int = 500, force_tol: float = 1e-6) -> dict:
    """Full 6x6 elastic tensor [GPa] by finite strain (stress-strain, central differences).

    For each Voigt component j the cell is strained by +-``delta`` (engineering strain, lattice
    vectors as rows: ``cell' = cell (1 + eps)``), the stress is computed, and
    ``C_ij = [sigma_i(+delta) - sigma_i(-delta)] / (2 delta)``; the result is symmetrised,
    ``(C + C^T)/2`` (the asymmetry before that is reported as ``cij_asymmetry`` [GPa]).
    With ``relax_ions`` the positions are relaxed (BFGS, ``fmax`` eV/Å, cell fixed) in each strained
    cell whose forces exceed ``force_tol`` -- the *relaxed-ion* constants; Bravais lattices and
    high-symmetry bases have zero forces under any homogeneous strain and skip it.

    Returns :func:`elastic_moduli`'s keys (Cij, VRH moduli [GPa], Poisson ratio, sound velocities
    [m/s], ``density`` [kg/m^3], ``debye_temperature`` [K], ``mechanically_stable``) plus
    ``elastic_delta``, ``ionic_relaxation_steps`` and ``residual_stress`` [GPa] of the input cell.
    """
    c = np.zeros((6, 6))
    steps_total = 0
    for j in range(6):
        sig = []
        for sign in (1.0, -1.0):
            a = _strained(atoms, j, sign * delta)
            s, steps = _stress_after_ionic_relaxation(a, calc, relax_ions=relax_ions, fmax=fmax,
                                                      max_steps=max_steps, force_tol=force_tol)
            steps_total += steps
            sig.append(s)
        c[:, j] = (sig[0] - sig[1]) / (2.0 * delta) / GPa
    asym = float(np.abs(c - c.T).max())
    c = 0.5 * (c + c.T)
    a0 = atoms.copy()
    a0.calc = calc
    residual = np.asarray(a0.get_stress(voigt=True)) / GPa
    volume = atoms.get_volume()
    density = atoms.get_masses().sum() * _amu / (volume * 1e-30)
    out = elastic_moduli(c, density=density, volume_per_atom=volume / len(atoms))
    out.update({"cij_asymmetry": asym, "elastic_delta": float(delta), "ionic_relaxation_steps": steps_total,
                "residual_stress": [float(x) for x in residual]})
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
    import spglib

    cell = (atoms.cell[:], atoms.get_scaled_positions(), atoms.numbers)
    prim = spglib.find_primitive(cell, symprec=symprec)
    return len(prim[2]) if prim is not None else len(atoms)


# --------------------------------------------------------------------------------------------
# Bundle
# --------------------------------------------------------------------------------------------
def elastic_properties(atoms: Atoms, calc, *, delta: float = 0.005, relax_ions: bool = True,
                       strains: Sequence[float] = np.linspace(-0.03, 0.03, 7), temperature: float = 300.0,
                       symprec: float = 1e-3) -> dict:
    """EOS, elastic tensor, VRH moduli, sound velocities, Debye temperature and Slack kappa, flat.

    Keys (flat, for the metrics table): ``bulk_modulus_eos``, ``v0_per_atom``, ``bprime``,
    ``C11`` .. ``C66`` (upper triangle), ``bulk_modulus_vrh``, ``shear_modulus_vrh`` (and Voigt/Reuss),
    ``youngs_modulus`` [GPa], ``poisson_ratio``, ``v_longitudinal``/``v_transverse``/``v_mean`` [m/s],
    ``density`` [kg/m^3], ``debye_temperature``/``debye_temperature_acoustic`` [K],
    ``mechanically_stable``, ``cij_min_eigenvalue`` [GPa], ``kappa_slack`` [W/m/K], ``gruneisen_slack``,
    ``atoms_per_primitive_cell``, ``mean_atomic_mass`` [amu].  Non-scalar extras: ``C`` (6x6 list),
    ``eos_volumes_per_atom``/``eos_energies_per_atom``, ``residual_stress``.
    """
    out: dict = {}
    out.update(eos_bulk_modulus(atoms, calc, strains=strains))
    out.update(elastic_constants(atoms, calc, delta=delta, relax_ions=relax_ions))
    n_prim = _atoms_per_primitive_cell(atoms, symprec)
    mass = float(atoms.get_masses().mean())
    out["atoms_per_primitive_cell"] = n_prim
    out["mean_atomic_mass"] = mass
    out.update(slack_kappa(debye_temperature=out["debye_temperature"], poisson_ratio=out["poisson_ratio"],
                           mean_atomic_mass=mass, volume_per_atom=atoms.get_volume() / len(atoms),
                           atoms_per_primitive_cell=n_prim, temperature=temperature))
    return out
