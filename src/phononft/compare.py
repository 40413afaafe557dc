"""Compare two harmonic phonon calculations (reference vs. model).

The benchmark columns follow the published comparison of MACE-MP-0b3 with VASP-PBE phonons
(``JaGeo/mace-mp-03b-phonon-benchmark``, ``evaluation/calculate_phonon_properties.py`` with
``functions/phonon.py`` and ``functions/metric.py``), re-derived here and checked number by number
against its ``phonon_properties.csv``.  What the published recipe does, exactly:

* Force constants: ``phonopy.load(yaml, symprec=1e-4, is_nac=False)`` followed by a *fresh*
  finite-displacement solution from the forces, which overwrites the symmetrised force constants of
  ``phonopy.load``: the published force constants are **not** symmetrised (no translational sum rule,
  no index-permutation symmetry).  Symmetrising changes the MACE phonons of mp-603640 by up to
  0.2 THz (max frequency 3.12 -> 2.90 THz, band rmse 1.46 -> 1.63 THz), so ``load_phonopy``
  defaults to ``symmetrize_fc=False``.
* Band path: seekpath (HPKOT, via pymatgen's ``KPathSeek`` with ``symprec=1e-4``) of the
  *reference* primitive cell; its point coordinates are used as fractional coordinates of the
  phonopy primitive cell of **both** phonons, 101 points per segment.
* Mesh: 20x20x20 Monkhorst-Pack (half-shifted for even meshes) reduced with the point group, as
  phonopy <= 2.x did with spglib's stabilised reciprocal mesh (phonopy 2.27 was used).  For
  hexagonal cells that reduction uses rotations that do not leave the shifted mesh invariant, so the
  weights differ slightly from phonopy 4's (mp-7436: 1100 instead of 4000 irreducible points,
  entropy +0.06 J/K/mol); ``sampling="legacy"`` reproduces it, ``sampling="phonopy"`` uses phonopy
  4's grid.  When the two irreducible meshes differ in size (different symmetry), both phonons use
  the full unsymmetrised mesh.
* Frequencies are sorted at each q-point before any difference is taken.

Units: frequencies THz; heat capacity and entropy J/K/mol, free energy kJ/mol, all per mole of
*primitive cells* (phonopy's convention); volume A^3 of the primitive cell; k_diff W/m/K; rmsd/maxd
dimensionless (pymatgen ``StructureMatcher.get_rms_dist``: distances divided by
``(V / n_sites) ** (1/3)`` after scaling both lattices to the same volume).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import numpy as np
import phonopy
import seekpath
import spglib
from numpy.typing import NDArray
from phonopy import Phonopy
from phonopy.physical_units import get_physical_units
from scipy.optimize import linear_sum_assignment

__all__ = [
    "BENCHMARK_COLUMNS",
    "DEFAULT_IMAGINARY_THRESHOLD",
    "DEFAULT_SYMPREC",
    "PhononLoadError",
    "band_errors",
    "band_qpoints",
    "dos_overlap",
    "find_force_sets",
    "frequencies_at",
    "imaginary_modes",
    "k_diff_high_temp_limit",
    "load_phonopy",
    "map_qpoints",
    "mean_frequency",
    "mesh_errors",
    "mesh_sampling",
    "phonon_like",
    "phonon_metrics",
    "rmse_matched",
    "space_group",
    "structure_distance",
    "thermal_curves",
    "thermal_properties",
]

DEFAULT_SYMPREC = 1e-4
#: Default threshold (THz) below which a frequency counts as imaginary.  Finite-displacement
#: force constants leave the acoustic branches near Gamma at a few -0.01 THz (and unsymmetrised DFT
#: ones occasionally at -0.1 to -0.3 THz right at Gamma); a genuine instability (e.g. bcc Cu under
#: EMT, -0.84 THz) is well below.  ``imaginary_modes`` additionally ignores the three acoustic
#: modes at q-points within ``gamma_radius`` of Gamma, so this threshold can stay tight.
DEFAULT_IMAGINARY_THRESHOLD = -0.1

#: The columns of the published ``phonon_properties.csv`` (without ``material``).
BENCHMARK_COLUMNS = (
    "rmse", "mae", "r2",
    "phonon_rmse", "phonon_mae", "phonon_scaled_rmse", "phonon_rrmse",
    "rmsd", "maxd", "spacegroup", "benchmark_spacegroup",
    "min_frequency", "benchmark_min_frequency", "max_frequency", "benchmark_max_frequency",
    "mean_frequency", "benchmark_mean_frequency", "volume", "benchmark_volume",
    "heat_capacity", "benchmark_heat_capacity", "entropy", "benchmark_entropy",
    "free_energy", "benchmark_free_energy",
    "k_diff_high_temp_limit", "benchmark_k_diff_high_temp_limit",
)

_K_B = 1.380649e-23  # J/K (exact, SI 2019); the benchmark used 1.3806e-23 (-3.5e-5 relative)


class PhononLoadError(ValueError):
    """A phonopy file cannot be turned into force constants."""


# --------------------------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------------------------
def find_force_sets(path: str | Path) -> Path | None:
    """FORCE_SETS belonging to a phonopy yaml: ``<stem>.FORCE_SETS`` beside it, else ``FORCE_SETS``.

    ``mp-938.phonopy.yaml`` -> ``mp-938.FORCE_SETS`` (also ``x.yaml`` -> ``x.FORCE_SETS``), then
    ``FORCE_SETS`` in the same folder.  Returns None when neither exists.
    """
    path = Path(path)
    name = path.name
    stems = []
    for suffix in (".phonopy.yaml", ".phonopy.yml", ".yaml", ".yml"):
        if name.endswith(suffix):
            stems.append(name[: -len(suffix)])
    for stem in stems:
        candidate = path.with_name(f"{stem}.FORCE_SETS")
        if stem and candidate.is_file():
            return candidate
    candidate = path.with_name("FORCE_SETS")
    return candidate if candidate.is_file() else None


def _has_forces(phonon: Phonopy) -> bool:
    dataset = phonon.dataset
    if not dataset:
        return False
    if "first_atoms" in dataset:
        return bool(dataset["first_atoms"]) and all("forces" in d for d in dataset["first_atoms"])
    return dataset.get("forces") is not None


def ensure_force_constants(phonon: Phonopy, *, symmetrize_fc: bool = False, name: str = "phonon") -> Phonopy:
    """Make sure ``phonon`` has force constants; compute them from its displacement dataset if needed."""
    if phonon.force_constants is None:
        if not _has_forces(phonon):
            raise PhononLoadError(f"{name}: neither force constants nor forces of displaced supercells")
        phonon.produce_force_constants()
        if symmetrize_fc:
            phonon.symmetrize_force_constants()
    return phonon


def load_phonopy(
    path: str | Path,
    *,
    force_sets: str | Path | None = None,
    symprec: float = DEFAULT_SYMPREC,
    symmetrize_fc: bool = False,
) -> Phonopy:
    """Load a phonopy.yaml (atomate2 style) and produce its force constants.

    Forces come from the yaml itself, else from ``force_sets`` or the FORCE_SETS found by
    :func:`find_force_sets`; force constants stored in the yaml are used as they are.
    ``symprec=1e-4`` and ``symmetrize_fc=False`` reproduce the published benchmark (see module
    docstring).  Non-analytical term correction is off (``is_nac=False``), as in the benchmark.

    Raises :class:`PhononLoadError` (a ``ValueError``) naming the file when it is missing,
    malformed, or has neither forces nor force constants.
    """
    path = Path(path)
    if not path.is_file():
        raise PhononLoadError(f"{path}: no such file")
    if force_sets is None:
        try:
            text = path.read_text()
        except (OSError, UnicodeDecodeError) as exc:
            raise PhononLoadError(f"{path}: cannot read it ({exc})") from exc
        if not re.search(r"^(unit_cell|supercell|primitive_cell):", text, re.M):
            raise PhononLoadError(f"{path}: not a phonopy yaml (no unit_cell/supercell block)")
        if not re.search(r"^(\s+forces|force_constants):", text, re.M):
            force_sets = find_force_sets(path)
            if force_sets is None:
                raise PhononLoadError(
                    f"{path}: no forces or force constants in the yaml and no "
                    f"{path.name.split('.')[0]}.FORCE_SETS or FORCE_SETS beside it"
                )
    kwargs = {}
    if force_sets is not None:
        force_sets = Path(force_sets)
        if not force_sets.is_file():
            raise PhononLoadError(f"{force_sets}: FORCE_SETS file not found (for {path})")
        kwargs["force_sets_filename"] = str(force_sets)
    try:
        phonon = phonopy.load(
            str(path), is_nac=False, symprec=symprec, symmetrize_fc=symmetrize_fc,
            log_level=0, **kwargs,
        )
    except Exception as exc:  # noqa: BLE001 - phonopy raises many types on bad input
        src = f"{path}" + (f" with {force_sets}" if force_sets is not None else "")
        raise PhononLoadError(f"{src}: phonopy could not load it ({type(exc).__name__}: {exc})") from exc
    return ensure_force_constants(phonon, symmetrize_fc=symmetrize_fc, name=str(path))


def phonon_like(reference: Phonopy, unitcell, calc, *, distance: float | None = None,
                symprec: float | None = None, max_strain: float = 0.1, log=lambda _s: None) -> Phonopy:
    """A model's phonons in the reference's setting: its supercell matrix and primitive matrix.

    ``unitcell``: the model's (relaxed) unit cell (ASE Atoms) in the reference's orientation, atoms in
    the reference unit cell's order -- e.g. the reference's cell relaxed with the model, symmetry
    kept.  With the same primitive matrix every fractional q-point (band path, mesh, modes) is the
    same physical point for both, whatever "auto" would choose on the model's cell (mp-603640: a
    model cell that reaches b = c is I-4m2 at symprec 1e-4, and "auto" then picks another body-centred
    primitive cell).  ``distance`` [Å]: the reference's displacement when its dataset has one, else
    0.01; ``symprec``: the reference's.  Raises ``ValueError`` when the cell is not in the reference's
    setting: other species order, a lattice deformation ``|F - 1| > max_strain`` (rotated or
    permuted axes), or atoms more than 1 Å from their reference sites (mapped through the cells).
    """
    from .phonons import finite_displacement_phonons, to_ase_atoms

    ref_cell = to_ase_atoms(reference.unitcell)
    if unitcell.get_chemical_symbols() != ref_cell.get_chemical_symbols():
        raise ValueError("model unit cell: other atoms (or order) than the reference unit cell")
    deform = np.linalg.solve(ref_cell.cell[:], unitcell.cell[:]).T  # cell rows = ref rows @ F^T
    if np.abs(deform - np.eye(3)).max() > max_strain:
        raise ValueError(f"model unit cell is not in the reference's setting (deformation {deform.round(3).tolist()})")
    shift = unitcell.get_scaled_positions() - ref_cell.get_scaled_positions()
    shift -= np.rint(shift)
    if np.linalg.norm(shift @ unitcell.cell[:], axis=1).max() > 1.0:
        raise ValueError("model unit cell: atoms are not at the reference unit cell's sites (other order?)")
    if distance is None:
        first = (reference.dataset or {}).get("first_atoms") or []
        distance = float(np.linalg.norm(first[0]["displacement"])) if first else 0.01
    phonon, _ = finite_displacement_phonons(
        unitcell, calc, np.asarray(reference.supercell_matrix), distance=distance,
        symprec=reference.symmetry.tolerance if symprec is None else symprec,
        primitive_matrix=np.asarray(reference.primitive_matrix), log=log)
    return phonon


# --------------------------------------------------------------------------------------------
# q-points and frequencies
# --------------------------------------------------------------------------------------------
def _cell_tuple(phonon_cell) -> tuple:
    return (np.array(phonon_cell.cell), np.array(phonon_cell.scaled_positions), np.array(phonon_cell.numbers))


def band_qpoints(
    phonon: Phonopy, *, npoints: int = 101, symprec: float = DEFAULT_SYMPREC
) -> list[NDArray[np.double]]:
    """Seekpath high-symmetry path of ``phonon.primitive``, as the benchmark built it.

    Like pymatgen's ``KPathSeek(structure, symprec)``: spglib-standardised conventional cell
    (no idealisation) -> seekpath HPKOT path (atol 1e-5, angle tolerance 5 deg).  The point
    coordinates (defined on seekpath's standard primitive reciprocal lattice) are used as
    fractional coordinates of the phonopy primitive cell, exactly as the benchmark did (the
    reference and the model get the same fractional q-points, so the comparison is consistent
    even where seekpath's standard primitive cell differs from phonopy's).  Returns one ``(npoints, 3)`` array per segment
    (end points included).
    """
    std = spglib.standardize_cell(_cell_tuple(phonon.primitive), to_primitive=False,
                                  no_idealize=True, symprec=symprec)
    path = seekpath.get_path(std, True, "hpkot", 1e-5, symprec, 5)
    coords = path["point_coords"]
    frac = np.linspace(0.0, 1.0, npoints)[:, None]
    return [np.asarray(coords[a]) + frac * (np.asarray(coords[b]) - np.asarray(coords[a]))
            for a, b in path["path"]]


def map_qpoints(source: Phonopy, target: Phonopy, qpoints: NDArray[np.double]) -> NDArray[np.double]:
    """Fractional q-points of ``source``'s primitive cell -> the same points of ``target``'s.

    Goes through the unit (conventional) cells: q_unit = P_s^-T q_s, q_t = P_t^T q_unit, with
    P the primitive matrices.  This keeps reduced coordinates of the conventional cell (the
    natural correspondence between a reference and a strained model cell of the same
    setting).  Identity when both primitive matrices are equal.
    """
    p_s = np.asarray(source.primitive_matrix, dtype=float)
    p_t = np.asarray(target.primitive_matrix, dtype=float)
    q = np.asarray(qpoints, dtype=float)
    if np.allclose(p_s, p_t):
        return q.copy()
    return q @ np.linalg.inv(p_s) @ p_t


def frequencies_at(phonon: Phonopy, qpoints: NDArray[np.double], *, with_eigenvectors: bool = False):
    """Frequencies (THz, ascending at each q) and optionally eigenvectors at fractional q-points."""
    ensure_force_constants(phonon)
    q = np.ascontiguousarray(np.asarray(qpoints, dtype=float).reshape(-1, 3))
    phonon.run_qpoints(q, with_eigenvectors=with_eigenvectors)
    res = phonon.qpoints
    freqs = np.asarray(res.frequencies, dtype=float)
    if with_eigenvectors:
        return freqs, np.asarray(res.eigenvectors)
    return np.sort(freqs, axis=-1)


def mesh_sampling(
    phonon: Phonopy,
    mesh: int | Sequence[int] = 20,
    *,
    symmetry: bool = True,
    sampling: Literal["legacy", "phonopy"] = "legacy",
) -> tuple[NDArray[np.double], NDArray[np.double]]:
    """Irreducible q-points (fractional, primitive cell) and integer weights of a mesh.

    ``legacy``: phonopy <= 2.x: Monkhorst-Pack (even meshes shifted by half a step), reduced by
    spglib's stabilised reciprocal mesh with the point group of the primitive cell and time
    reversal; this is what the benchmark used.  ``phonopy``: phonopy 4's own reduction
    (``Phonopy.run_mesh``).  ``symmetry=False``: the full mesh, weights 1.
    """
    m = np.array([mesh] * 3 if np.isscalar(mesh) else mesh, dtype=int)
    if sampling == "phonopy":
        ensure_force_constants(phonon)
        phonon.run_mesh(m, is_mesh_symmetry=symmetry, is_time_reversal=symmetry)
        res = phonon.mesh
        return np.asarray(res.qpoints, dtype=float), np.asarray(res.weights, dtype=float)
    if sampling != "legacy":
        raise ValueError(f"unknown sampling {sampling!r}")
    shift = (m % 2 == 0).astype(int)
    if symmetry:
        rotations = phonon.primitive_symmetry.pointgroup_operations
    else:
        rotations = np.eye(3, dtype="intc")[None]
    mapping, address = spglib.get_stabilized_reciprocal_mesh(
        m, np.ascontiguousarray(rotations, dtype="intc"), is_shift=shift, is_time_reversal=symmetry
    )
    ir, weights = np.unique(mapping, return_counts=True)
    q = (address[ir] * 2 + shift) / (2.0 * m)
    q -= np.rint(q)
    return np.ascontiguousarray(q), weights.astype(float)


# --------------------------------------------------------------------------------------------
# Error metrics
# --------------------------------------------------------------------------------------------
def band_errors(reference: NDArray, model: NDArray) -> dict[str, float]:
    """RMSE, MAE (THz) and R^2 between frequencies sorted at each q (arrays ``(..., n_modes)``).

    R^2 = 1 - SS_res / SS_tot over all (q, mode) values, reference as the truth.
    """
    ref = np.sort(np.asarray(reference, dtype=float), axis=-1)
    mod = np.sort(np.asarray(model, dtype=float), axis=-1)
    if ref.shape != mod.shape:
        raise ValueError(f"frequency arrays differ in shape: {ref.shape} vs {mod.shape}")
    diff = ref - mod
    ss_tot = np.sum((ref - ref.mean()) ** 2)
    return {
        "rmse": float(np.sqrt(np.mean(diff**2))),
        "mae": float(np.mean(np.abs(diff))),
        "r2": float(1.0 - np.sum(diff**2) / ss_tot) if ss_tot > 0 else float("nan"),
    }


def mesh_errors(ref_freqs: NDArray, weights: NDArray, model_freqs: NDArray) -> dict[str, float]:
    """Weighted errors over a Brillouin-zone mesh (THz unless noted), frequencies sorted at each q.

    * ``phonon_rmse`` = sqrt(sum_q w_q sum_j (f_ref - f_mod)^2 / (n_modes sum_q w_q))
    * ``phonon_mae``  = the same with |f_ref - f_mod|
    * ``phonon_scaled_rmse``: rmse after scaling all model frequencies by
      max(f_ref) / max(f_mod) (maxima over the mesh): the error left once the overall
      stiffness is corrected.
    * ``phonon_rrmse`` (dimensionless) = phonon_scaled_rmse / rms(f_ref), with
      rms(f_ref) = sqrt(sum w f_ref^2 / (n_modes sum w)).  Note: the benchmark's code divides the
      *scaled* rmse (its scaling step overwrote the model frequencies in place before rrmse was
      computed); the published numbers are reproduced only with that definition.
    * ``phonon_rrmse_unscaled`` = phonon_rmse / rms(f_ref) (the presumably intended quantity).
    """
    ref = np.sort(np.asarray(ref_freqs, dtype=float), axis=1)
    mod = np.sort(np.asarray(model_freqs, dtype=float), axis=1)
    if ref.shape != mod.shape:
        raise ValueError(f"mesh frequency arrays differ in shape: {ref.shape} vs {mod.shape}")
    w = np.asarray(weights, dtype=float)[:, None] * np.ones(ref.shape[1])
    wsum = w.sum()

    def wmean(x):
        return float(np.sum(w * x) / wsum)

    scale = ref.max() / mod.max()
    rms_ref = math.sqrt(wmean(ref**2))
    rmse = math.sqrt(wmean((ref - mod) ** 2))
    scaled = math.sqrt(wmean((ref - scale * mod) ** 2))
    return {
        "phonon_rmse": rmse,
        "phonon_mae": wmean(np.abs(ref - mod)),
        "phonon_scaled_rmse": scaled,
        "phonon_rrmse": scaled / rms_ref,
        "phonon_rrmse_unscaled": rmse / rms_ref,
        "frequency_scale": float(scale),
    }


def mean_frequency(freqs: NDArray, weights: NDArray) -> float:
    """Weighted mean (THz) of the positive frequencies of a mesh (imaginary/zero modes dropped)."""
    f = np.asarray(freqs, dtype=float)
    w = np.asarray(weights, dtype=float)[:, None] * np.ones(f.shape[1])
    mask = f > 0
    return float(np.sum(f[mask] * w[mask]) / np.sum(w[mask]))


def thermal_properties(
    freqs: NDArray, weights: NDArray, temperatures: float | Sequence[float]
) -> dict[str, NDArray[np.double]]:
    """Harmonic thermal properties from mesh frequencies (THz) and q-point weights.

    Only modes with f > 0 count (phonopy's default cutoff).  Per mole of primitive cells:
    ``heat_capacity`` C_v [J/K/mol], ``entropy`` S [J/K/mol], ``free_energy`` F [kJ/mol]
    (including the zero-point energy), and ``internal_energy`` U [kJ/mol].  At T = 0: C_v = S = 0,
    F = U = zero-point energy.  Same physical constants as phonopy, so it agrees with
    ``Phonopy.run_thermal_properties`` to machine precision on the same mesh.
    """
    units = get_physical_units()
    temps = np.atleast_1d(np.asarray(temperatures, dtype=float))
    f = np.asarray(freqs, dtype=float)
    w = np.asarray(weights, dtype=float)
    e = np.where(f > 0, f, np.nan) * units.THzToEv  # eV, NaN for ignored modes
    wn = w / w.sum()
    out = {k: np.zeros(len(temps)) for k in ("heat_capacity", "entropy", "free_energy", "internal_energy")}
    zpe = 0.5 * np.nansum(wn[:, None] * e)
    for i, t in enumerate(temps):
        if t <= 0:
            out["free_energy"][i] = out["internal_energy"][i] = zpe * units.EvTokJmol
            continue
        kt = units.KB * t
        x = e / kt
        ex = np.exp(-x)  # stable for large x
        cv = units.KB * x**2 * ex / (1 - ex) ** 2
        s = units.KB * (x * ex / (1 - ex) - np.log1p(-ex))
        fe = 0.5 * e + kt * np.log1p(-ex)
        u = 0.5 * e + e * ex / (1 - ex)
        out["heat_capacity"][i] = np.nansum(wn[:, None] * cv) * units.EvTokJmol * 1000
        out["entropy"][i] = np.nansum(wn[:, None] * s) * units.EvTokJmol * 1000
        out["free_energy"][i] = np.nansum(wn[:, None] * fe) * units.EvTokJmol
        out["internal_energy"][i] = np.nansum(wn[:, None] * u) * units.EvTokJmol
    out["temperatures"] = temps
    return out


def thermal_curves(
    phonon: Phonopy,
    *,
    t_min: float = 0.0,
    t_max: float = 1000.0,
    t_step: float = 10.0,
    mesh: int | Sequence[int] = 20,
    sampling: Literal["legacy", "phonopy"] = "legacy",
) -> dict[str, NDArray[np.double]]:
    """Thermal properties vs. temperature (0-1000 K by default) on a mesh; see :func:`thermal_properties`."""
    q, w = mesh_sampling(phonon, mesh, sampling=sampling)
    temps = np.arange(t_min, t_max + 0.5 * t_step, t_step)
    return thermal_properties(frequencies_at(phonon, q), w, temps)


def k_diff_high_temp_limit(phonon: Phonopy, mean_freq: float) -> float:
    """Agne et al.'s diffusive thermal conductivity in the high-temperature limit [W/m/K].

    k_diff(T -> inf) = n^(1/3) k_B / pi * <omega> = 2 n^(1/3) k_B <f>, with n the atom (site)
    number density of the primitive cell [m^-3] and <f> the mean phonon frequency [Hz]
    (Agne, Hanus, Snyder, Energy Environ. Sci. 11, 609 (2018)).
    """
    density = len(phonon.primitive) / (abs(np.linalg.det(phonon.primitive.cell)) * 1e-30)
    return float(2.0 * density ** (1.0 / 3.0) * _K_B * mean_freq * 1e12)


# --------------------------------------------------------------------------------------------
# Structure
# --------------------------------------------------------------------------------------------
def space_group(phonon: Phonopy, symprec: float = DEFAULT_SYMPREC) -> str:
    """International symbol of the unit cell, e.g. ``"Fm-3m (225)"`` (spglib at ``symprec``)."""
    return spglib.get_spacegroup(_cell_tuple(phonon.unitcell), symprec=symprec)


def volume(phonon: Phonopy) -> float:
    """Volume of the primitive cell [A^3]."""
    return float(abs(np.linalg.det(phonon.primitive.cell)))


def structure_distance(reference: Phonopy, model: Phonopy) -> tuple[float, float]:
    """(rmsd, maxd) of the primitive cells from pymatgen's default ``StructureMatcher``.

    Lattices are scaled to equal volume; distances are divided by (V / n_sites)^(1/3), so both
    numbers are dimensionless.  NaN when the matcher finds no match.
    """
    from pymatgen.analysis.structure_matcher import StructureMatcher
    from pymatgen.io.phonopy import get_pmg_structure

    res = StructureMatcher().get_rms_dist(get_pmg_structure(model.primitive), get_pmg_structure(reference.primitive))
    if res is None:
        return float("nan"), float("nan")
    return float(res[0]), float(res[1])


# --------------------------------------------------------------------------------------------
# Extra metrics
# --------------------------------------------------------------------------------------------
def rmse_matched(reference: Phonopy, model: Phonopy, qpoints: NDArray, model_qpoints: NDArray | None = None) -> float:
    """Band RMSE (THz) with modes paired by eigenvector character instead of by frequency order.

    At each q the model's modes are assigned to the reference's ones maximising the summed
    overlaps |<e_ref_i|e_mod_j>|^2 (Hungarian algorithm), so a branch is compared with the same
    branch even where it crosses another one.  Sorting pairs frequencies optimally, hence
    ``rmse_matched >= rmse``; the excess measures mode-character errors.  Both primitive cells
    must hold the same atoms in the same order (NaN otherwise).
    """
    if list(reference.primitive.numbers) != list(model.primitive.numbers):
        return float("nan")
    q = np.asarray(qpoints, dtype=float).reshape(-1, 3)
    qm = q if model_qpoints is None else np.asarray(model_qpoints, dtype=float).reshape(-1, 3)
    f_ref, e_ref = frequencies_at(reference, q, with_eigenvectors=True)
    f_mod, e_mod = frequencies_at(model, qm, with_eigenvectors=True)
    sq = 0.0
    for i in range(len(q)):
        overlap = np.abs(e_ref[i].conj().T @ e_mod[i]) ** 2
        rows, cols = linear_sum_assignment(-overlap)
        sq += np.sum((f_ref[i, rows] - f_mod[i, cols]) ** 2)
    return float(np.sqrt(sq / f_ref.size))


def _smeared_dos(freqs, weights, grid, sigma):
    """Gaussian-smeared DOS on an even ``grid``: weighted histogram convolved with a Gaussian."""
    f = np.asarray(freqs, dtype=float)
    w = np.repeat(np.asarray(weights, dtype=float), f.shape[1])
    pitch = grid[1] - grid[0]
    edges = np.concatenate([grid - pitch / 2, [grid[-1] + pitch / 2]])
    hist, _ = np.histogram(f.ravel(), bins=edges, weights=w)
    half = int(np.ceil(5 * sigma / pitch))
    x = np.arange(-half, half + 1) * pitch
    kernel = np.exp(-0.5 * (x / sigma) ** 2)
    return np.convolve(hist, kernel, mode="same")


def dos_overlap(ref_freqs, ref_weights, model_freqs, model_weights, *, sigma: float = 0.05, pitch: float | None = None) -> float:
    """Overlap of two phonon DOS, integral of min(g_ref, g_mod) df with both normalised to 1.

    Gaussian smearing ``sigma`` [THz] (0.05 as the benchmark's DOS); 1 = identical, 0 = disjoint.
    """
    lo = min(np.min(ref_freqs), np.min(model_freqs)) - 5 * sigma
    hi = max(np.max(ref_freqs), np.max(model_freqs)) + 5 * sigma
    pitch = pitch or sigma / 5
    grid = np.arange(lo, hi + pitch, pitch)
    g_ref = _smeared_dos(ref_freqs, ref_weights, grid, sigma)
    g_mod = _smeared_dos(model_freqs, model_weights, grid, sigma)
    g_ref /= np.trapezoid(g_ref, grid)
    g_mod /= np.trapezoid(g_mod, grid)
    return float(np.trapezoid(np.minimum(g_ref, g_mod), grid))


def imaginary_modes(
    phonon: Phonopy,
    qpoints: NDArray,
    *,
    threshold: float = DEFAULT_IMAGINARY_THRESHOLD,
    gamma_radius: float = 0.05,
    freqs: NDArray | None = None,
) -> dict:
    """Imaginary-mode summary over the given q-points (e.g. band path + mesh).

    A mode is imaginary when f < ``threshold`` [THz] (imaginary frequencies are negative, phonopy's
    convention), excluding the three acoustic modes at q-points closer to Gamma than
    ``gamma_radius`` [1/A, without 2 pi] where finite-displacement noise lives.  Returns
    ``has_imaginary``, ``min_frequency_nonacoustic`` [THz], ``imaginary_fraction`` (fraction of
    q-points with an imaginary mode) and ``imaginary_qpoint`` (fractional q of the lowest one).
    """
    q = np.asarray(qpoints, dtype=float).reshape(-1, 3)
    f = frequencies_at(phonon, q) if freqs is None else np.sort(np.asarray(freqs, dtype=float), axis=1)
    qd = q - np.rint(q)
    qcart = qd @ np.linalg.inv(phonon.primitive.cell).T
    near = np.linalg.norm(qcart, axis=1) < gamma_radius
    f = f.copy()
    f[near, :3] = np.inf
    min_per_q = f.min(axis=1)
    imag = min_per_q < threshold
    idx = int(np.argmin(min_per_q))
    return {
        "has_imaginary": bool(imag.any()),
        "min_frequency_nonacoustic": float(min_per_q[idx]),
        "imaginary_fraction": float(imag.mean()),
        "imaginary_qpoint": [float(x) for x in q[idx]] if imag.any() else None,
        "imaginary_threshold": float(threshold),
    }


# --------------------------------------------------------------------------------------------
# The comparison
# --------------------------------------------------------------------------------------------
def phonon_metrics(
    reference: Phonopy,
    model: Phonopy,
    *,
    temperature: float = 300.0,
    mesh: int | Sequence[int] = 20,
    npoints: int = 101,
    symprec: float = DEFAULT_SYMPREC,
    convention: Literal["benchmark", "mapped"] = "benchmark",
    sampling: Literal["legacy", "phonopy"] = "legacy",
    imaginary_threshold: float = DEFAULT_IMAGINARY_THRESHOLD,
    extras: bool = True,
) -> dict:
    """Benchmark metrics of ``model`` against ``reference`` (both Phonopy objects with forces/FCs).

    Keys: the columns of the published ``phonon_properties.csv`` (``BENCHMARK_COLUMNS``; plain
    names describe the model, ``benchmark_*`` the reference), units as in the module docstring,
    thermal properties at ``temperature`` [K].  With ``extras``: ``rmse_matched``, ``dos_overlap``,
    imaginary-mode info of model and reference (``has_imaginary``, ``benchmark_has_imaginary``,
    ...), ``phonon_rrmse_unscaled`` and ``mean_frequency_unscaled``.

    ``convention="benchmark"`` reproduces the published numbers, quirks included: the reference's
    fractional q-points are used unchanged for the model; each phonon on its own mesh (both on
    the full mesh when the irreducible meshes differ); ``mean_frequency`` and
    ``k_diff_high_temp_limit`` of the model use its mesh frequencies scaled by
    max(f_ref)/max(f_mod) (the benchmark overwrote them in place when computing the scaled RMSE).
    ``convention="mapped"`` is the physically consistent variant: reference q-points (band path
    and irreducible mesh) are mapped to the model's primitive basis via the unit cells
    (:func:`map_qpoints`), so differing primitive-cell choices (mp-603640) compare the same
    physical q, and model mean frequency / k_diff are unscaled.  Both agree whenever the two
    phonons share primitive matrix and point group, apart from the scaled mean frequency.
    """
    if convention not in ("benchmark", "mapped"):
        raise ValueError(f"unknown convention {convention!r}")
    ensure_force_constants(reference, name="reference")
    ensure_force_constants(model, name="model")

    # band structure on the reference's seekpath path
    segments = band_qpoints(reference, npoints=npoints, symprec=symprec)
    q_band = np.concatenate(segments)
    q_band_model = q_band if convention == "benchmark" else map_qpoints(reference, model, q_band)
    f_band_ref = frequencies_at(reference, q_band)
    f_band_mod = frequencies_at(model, q_band_model)
    out: dict = dict(band_errors(f_band_ref, f_band_mod))

    # mesh
    q_ref, w_ref = mesh_sampling(reference, mesh, sampling=sampling)
    if convention == "benchmark":
        q_mod, w_mod = mesh_sampling(model, mesh, sampling=sampling)
        if len(q_ref) != len(q_mod):
            q_ref, w_ref = mesh_sampling(reference, mesh, symmetry=False, sampling=sampling)
            q_mod, w_mod = mesh_sampling(model, mesh, symmetry=False, sampling=sampling)
        f_mesh_ref = frequencies_at(reference, q_ref)
        f_mesh_mod = frequencies_at(model, q_mod)
        f_cmp_mod = f_mesh_mod
    else:
        q_mod, w_mod = mesh_sampling(model, mesh, sampling=sampling)
        f_mesh_ref = frequencies_at(reference, q_ref)
        f_mesh_mod = frequencies_at(model, q_mod)
        f_cmp_mod = frequencies_at(model, map_qpoints(reference, model, q_ref))
    errs = mesh_errors(f_mesh_ref, w_ref, f_cmp_mod)
    out.update({k: errs[k] for k in ("phonon_rmse", "phonon_mae", "phonon_scaled_rmse", "phonon_rrmse")})

    out["rmsd"], out["maxd"] = structure_distance(reference, model)
    out["spacegroup"] = space_group(model, symprec)
    out["benchmark_spacegroup"] = space_group(reference, symprec)
    out["min_frequency"] = float(f_band_mod.min())
    out["benchmark_min_frequency"] = float(f_band_ref.min())
    out["max_frequency"] = float(f_band_mod.max())
    out["benchmark_max_frequency"] = float(f_band_ref.max())

    mean_unscaled = mean_frequency(f_mesh_mod, w_mod)
    mean_model = mean_frequency(f_mesh_mod * errs["frequency_scale"], w_mod) if convention == "benchmark" else mean_unscaled
    mean_ref = mean_frequency(f_mesh_ref, w_ref)
    out["mean_frequency"] = mean_model
    out["benchmark_mean_frequency"] = mean_ref
    out["volume"] = volume(model)
    out["benchmark_volume"] = volume(reference)
    tp_mod = thermal_properties(f_mesh_mod, w_mod, temperature)
    tp_ref = thermal_properties(f_mesh_ref, w_ref, temperature)
    for key in ("heat_capacity", "entropy", "free_energy"):
        out[key] = float(tp_mod[key][0])
        out[f"benchmark_{key}"] = float(tp_ref[key][0])
    out["k_diff_high_temp_limit"] = k_diff_high_temp_limit(model, mean_model)
    out["benchmark_k_diff_high_temp_limit"] = k_diff_high_temp_limit(reference, mean_ref)
    out = {k: out[k] for k in BENCHMARK_COLUMNS}

    if extras:
        q_band_mapped = map_qpoints(reference, model, q_band)
        out["rmse_matched"] = rmse_matched(reference, model, q_band, q_band_mapped)
        out["dos_overlap"] = dos_overlap(f_mesh_ref, w_ref, f_mesh_mod, w_mod)
        out["phonon_rrmse_unscaled"] = errs["phonon_rrmse_unscaled"]
        out["mean_frequency_unscaled"] = mean_unscaled
        for prefix, ph, qb, fb, qm, fm in (
            ("", model, q_band_model, f_band_mod, q_mod, f_mesh_mod),
            ("benchmark_", reference, q_band, f_band_ref, q_ref, f_mesh_ref),
        ):
            info = imaginary_modes(ph, np.concatenate([qb, qm]), threshold=imaginary_threshold,
                                   freqs=np.concatenate([fb, fm]))
            for k, v in info.items():
                if k != "imaginary_threshold":
                    out[prefix + k] = v
        out["imaginary_threshold"] = float(imaginary_threshold)
        out["temperature"] = float(temperature)
        out["convention"] = convention
    return out
