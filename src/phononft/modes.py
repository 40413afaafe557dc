"""Imaginary phonon modes: detection, displacement fields, the probe supercell.

Functions of a :class:`phonopy.Phonopy` with force constants returning JSON-able dicts; numbers are
plain floats, arrays nested lists.  Four modules share the work:

* here: :func:`find_imaginary_modes`, :func:`mode_displacements`, :func:`probe_supercell`;
* :mod:`phononft.surface`: the energy surface along the modes;
* :mod:`phononft.phases`: relaxations along the modes, the phases they reach, and the scores;
* :mod:`phononft.imaginary`: the three together, as one step of :mod:`phononft.properties`.

Everything that needs energies is a PLAN (tasks of :mod:`phononft.tasks`) and a RESULT (numbers from the
answered tasks, in the plan's order), so that the reference's labeller (VASP jobs) and every model run the
same code.

Conventions
-----------
* **q-points**: only the q-points commensurate with the phonopy supercell are searched
  (``phonopy.harmonic.dynmat_to_fc.get_commensurate_points``), so that every modulation is periodic in
  that supercell and its energy can be computed exactly in it.  q in fractional coordinates of the
  phonopy *primitive* reciprocal cell; band indices from 0 in ascending frequency order.  A model is
  probed on a supercell commensurate with the *reference's* modes (:func:`probe_supercell`).
* **Amplitude**: the displacement field of a mode is phonopy's modulation,
  ``u_l = Re[c e_k exp(2 pi i q.r_l) / sqrt(m_k)]`` (as ``phonopy.phonon.modulation.Modulation``, with
  its phase choice: the largest component made real), then scaled so that the **largest atomic
  displacement is 1 Å**.  An amplitude ``A`` therefore means "max |u_l| = |A| Å" for one mode
  (independent of masses and supercell size, unlike phonopy's sqrt(amu) Å amplitude); for two modes
  the displacement is ``A1 u1 + A2 u2`` (the max displacement of the sum is not A1 + A2 in general).
* **Normal-mode coordinate** (the study's surface axes): ``Q = sqrt(sum_l m_l |A u_l|^2)`` [amu^1/2 Å],
  the sum over the atoms of the probe supercell, for amplitude ``A`` of one mode (``Q = A * Q_per_amplitude``).
* **Energies**: meV per atom relative to the undistorted supercell at the same (fixed) cell.
* **Reference vs. model**: a model is evaluated on the reference's modes (same q, same branch) and
  the same amplitude grid, so surfaces compare point by point.  Each calculation uses *its own*
  eigenvector at that q (a model relaxed to another lattice constant has its own dynamical matrix):
  when the reference eigenvector is known, the model's eigenvector is the projection of the
  reference eigenvector onto the model's (near-)degenerate subspace of the branch that overlaps it
  most -- this follows branch crossings and fixes the basis inside degenerate subspaces, so that
  "mode 1" and "mode 2" mean the same displacement pattern for reference and model.  Amplitudes stay
  in Å (not scaled with the lattice).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from fractions import Fraction

import numpy as np
from ase import Atoms

from phonopy import Phonopy
from phonopy.harmonic.dynmat_to_fc import get_commensurate_points
from phonopy.physical_units import get_physical_units
from phonopy.structure.cells import get_supercell

from .phonons import to_ase_atoms
from .structures import supercell_matrix

__all__ = [
    "commensurate_qpoints",
    "find_imaginary_modes",
    "mode_displacements",
    "probe_geometry",
    "probe_supercell",
]


def _quiet(_msg: str) -> None:
    pass


# --------------------------------------------------------------------------------------------
# Supercell geometry and eigenvectors
# --------------------------------------------------------------------------------------------
def _dim_wrt_primitive(phonon) -> np.ndarray:
    """Supercell matrix S w.r.t. the primitive cell, phonopy's convention: supercell rows = S^T @ primitive rows."""
    m = phonon.supercell.cell @ np.linalg.inv(phonon.primitive.cell)
    mi = np.rint(m)
    if np.abs(m - mi).max() > 1e-6:
        raise ValueError("phonopy supercell is not an integer multiple of its primitive cell")
    return mi.astype(int).T


def commensurate_qpoints(phonon) -> np.ndarray:
    """Fractional q-points (primitive basis) commensurate with ``phonon``'s supercell, in [-0.5, 0.5)."""
    q = np.asarray(get_commensurate_points(_dim_wrt_primitive(phonon)), dtype=float)
    q = q - np.floor(q + 0.5 + 1e-9)  # fold to [-0.5, 0.5)
    q[np.abs(q) < 1e-12] = 0.0
    return q


def _eigensystem(phonon, q) -> tuple[np.ndarray, np.ndarray]:
    """(frequencies [THz], eigenvectors as columns) at one q-point."""
    dm = phonon.dynamical_matrix  # used directly, so that the phonon's stored q-point results stay untouched
    if dm is None:
        raise ValueError("the phonon has no force constants (dynamical matrix not built)")
    dm.run(np.asarray(q, dtype=float))
    w, v = np.linalg.eigh(dm.dynamical_matrix)
    factor = getattr(phonon, "unit_conversion_factor", None) or get_physical_units().DefaultToTHz
    return np.sign(w) * np.sqrt(np.abs(w)) * factor, v


def _is_commensurate(phonon, q, tol: float = 1e-6) -> bool:
    x = _dim_wrt_primitive(phonon).T @ np.asarray(q, dtype=float)
    return bool(np.abs(x - np.rint(x)).max() < tol)


def _mode_eigvec(mode: Mapping) -> np.ndarray | None:
    if mode.get("eigenvector_real") is None:
        return None
    return np.asarray(mode["eigenvector_real"], dtype=float) + 1j * np.asarray(mode.get("eigenvector_imag", 0.0))


def _map_q(mode: Mapping, phonon) -> np.ndarray:
    """The mode's q in ``phonon``'s primitive basis (mapped through the unit cells if the primitive matrices differ)."""
    q = np.asarray(mode["q"], dtype=float)
    p_src = mode.get("primitive_matrix")
    if p_src is None:
        return q
    p_src = np.asarray(p_src, dtype=float)
    p_dst = np.asarray(phonon.primitive_matrix, dtype=float)
    return q if np.allclose(p_src, p_dst) else q @ np.linalg.inv(p_src) @ p_dst


def _resolve_mode(phonon, mode: Mapping, degeneracy_tol: float = 1e-3) -> tuple[np.ndarray, np.ndarray, float, int]:
    """(q, eigenvector, frequency, band) of ``mode`` in ``phonon`` (see the module docstring)."""
    q = _map_q(mode, phonon)
    if not _is_commensurate(phonon, q):
        raise ValueError(f"q = {q.tolist()} is not commensurate with the phonopy supercell")
    freqs, vecs = _eigensystem(phonon, q)
    ref = _mode_eigvec(mode)
    if ref is None or ref.shape[0] != vecs.shape[0]:
        band = int(mode["band_index"])
        return q, vecs[:, band], float(freqs[band]), band
    overlap = np.abs(vecs.conj().T @ ref) ** 2
    band = int(np.argmax(overlap))
    block = np.abs(freqs - freqs[band]) < degeneracy_tol
    sub = vecs[:, block]
    proj = sub @ (sub.conj().T @ ref)
    norm = np.linalg.norm(proj)
    vec = proj / norm if norm > 1e-8 else vecs[:, band]
    return q, vec, float(freqs[band]), band


def mode_displacements(phonon, q, eigenvector) -> tuple[Atoms, np.ndarray]:
    """(undistorted supercell, real displacement field [Å] with max atomic |u| = 1 Å) of one mode.

    The supercell is phonopy's ``get_supercell(primitive, S)`` with S the phonopy supercell matrix
    w.r.t. the primitive cell; the field follows phonopy's ``Modulation`` (phase: largest complex
    component made real -- the first one, within a relative 1e-6, when several tie -- then the real
    part is taken).
    """
    dim = _dim_wrt_primitive(phonon)
    sc = get_supercell(phonon.primitive, dim)
    masses = np.asarray(sc.masses, dtype=float)
    s2u = sc.s2u_map
    u2u = sc.u2u_map
    prim_index = np.array([u2u[x] for x in s2u])
    spos = sc.scaled_positions
    coefs = np.exp(2j * np.pi * (spos @ dim.T) @ np.asarray(q, dtype=float)) / np.sqrt(masses)
    e = np.asarray(eigenvector).reshape(-1, 3)
    u = e[prim_index] * coefs[:, None]
    flat = u.ravel()
    # the first of the (numerically) largest components: ties (equal |component| at many sites) are
    # broken by position, not by rounding noise, so that two phonons with the same eigenvector choose
    # the same phase (and hence the same real field)
    mag = np.abs(flat)
    big = flat[int(np.argmax(mag >= mag.max() * (1.0 - 1e-6)))]
    u = (u * (abs(big) / big)).real
    umax = np.linalg.norm(u, axis=1).max()
    if umax < 1e-12:
        raise ValueError("mode has a vanishing real displacement field in this supercell")
    return to_ase_atoms(sc), u / umax


# --------------------------------------------------------------------------------------------
# Detection
# --------------------------------------------------------------------------------------------
def probe_geometry(phonon, supercell_matrix=None):
    """The supercell on which modes are displaced: ``phonon`` itself (``supercell_matrix`` None), or a
    force-free Phonopy of the same unit cell and primitive matrix on ``supercell_matrix`` (multiples of the
    unit cell, e.g. :func:`probe_supercell`'s): the modes' eigenvectors still come from ``phonon``'s force
    constants, so the reference needs no second phonon calculation on the probe cell."""
    if supercell_matrix is None:
        return phonon
    return Phonopy(phonon.unitcell, supercell_matrix=np.asarray(supercell_matrix, dtype=int),
                   primitive_matrix=phonon.primitive_matrix, symprec=phonon.symmetry.tolerance)


def _mode_fields(phonon, modes: Sequence[Mapping], supercell_matrix=None) -> tuple[Atoms, list[np.ndarray], list[tuple]]:
    """Undisplaced supercell (``phonon``'s, or the probe ``supercell_matrix``: :func:`probe_geometry`), one
    displacement field per mode, and each mode's resolved (q, frequency, band)."""
    geometry = probe_geometry(phonon, supercell_matrix)
    base, fields, resolved = None, [], []
    for m in modes:
        q, vec, f, band = _resolve_mode(phonon, m)
        if not _is_commensurate(geometry, q):
            raise ValueError(f"q = {q.tolist()} is not commensurate with the probe supercell "
                             f"{np.asarray(geometry.supercell_matrix).tolist()} (phononft.modes.probe_supercell)")
        base, u = mode_displacements(geometry, q, vec)
        fields.append(u)
        resolved.append((q, f, band))
    return base, fields, resolved


def find_imaginary_modes(phonon, *, threshold: float = -0.1, qpoints="commensurate",
                         gamma_acoustic: bool = False) -> list[dict]:
    """Imaginary modes (f < ``threshold`` THz) at the q-points commensurate with the phonopy supercell.

    ``qpoints="commensurate"`` (default) or an explicit (n, 3) array of fractional q-points (they must
    be commensurate for :func:`energy_surface`).  The three acoustic modes at Gamma are skipped unless
    ``gamma_acoustic``.  Sorted most imaginary first; ties (symmetry-equivalent q-points, degenerate
    branches) broken by q and band, so the order is deterministic.

    Each mode: ``q`` (fractional, primitive basis), ``band_index`` (0-based, ascending frequency),
    ``frequency`` [THz, negative], ``eigenvector_real``/``eigenvector_imag`` (3 x n_primitive
    components, phonopy's normalisation), ``primitive_matrix`` (to map q for another phonon),
    ``degeneracy`` (branches at that q within 1e-3 THz).
    """
    q_all = commensurate_qpoints(phonon) if isinstance(qpoints, str) else np.asarray(qpoints, dtype=float).reshape(-1, 3)
    if isinstance(qpoints, str) and qpoints != "commensurate":
        raise ValueError(f"unknown qpoints option {qpoints!r}")
    modes = []
    for q in q_all:
        freqs, vecs = _eigensystem(phonon, q)
        at_gamma = np.allclose(q - np.rint(q), 0.0)
        for band, f in enumerate(freqs):
            if at_gamma and band < 3 and not gamma_acoustic:
                continue
            if f < threshold:
                modes.append({
                    "q": [float(x) for x in q],
                    "band_index": int(band),
                    "frequency": float(f),
                    "eigenvector_real": [float(x) for x in vecs[:, band].real],
                    "eigenvector_imag": [float(x) for x in vecs[:, band].imag],
                    "primitive_matrix": np.asarray(phonon.primitive_matrix, dtype=float).tolist(),
                    "degeneracy": int(np.sum(np.abs(freqs - f) < 1e-3)),
                })
    modes.sort(key=lambda m: (round(m["frequency"], 4), tuple(round(x, 6) for x in m["q"]), m["band_index"]))
    return modes


# --------------------------------------------------------------------------------------------
# Probe supercell
# --------------------------------------------------------------------------------------------
def _q_in_unitcell(mode: Mapping, fallback_primitive=None) -> np.ndarray:
    """A mode's q in fractional coordinates of the *unit* (conventional) reciprocal cell."""
    p = mode.get("primitive_matrix", fallback_primitive)
    q = np.asarray(mode["q"], dtype=float)
    return q if p is None else q @ np.linalg.inv(np.asarray(p, dtype=float))


def _denominators(q: np.ndarray, max_denominator: int = 48, tol: float = 1e-6) -> list[int]:
    out = []
    for x in q:
        f = Fraction(float(x)).limit_denominator(max_denominator)
        if abs(float(f) - x) > tol:
            raise ValueError(f"q component {x} is not a fraction with denominator <= {max_denominator}")
        out.append(f.denominator)
    return out


def probe_supercell(cell, min_length: float = 5.0, modes: Sequence[Mapping] | None = None, *,
                    n_modes: int = 2, keep_min_length: bool = True) -> np.ndarray:
    """Diagonal supercell matrix (3x3 int, multiples of the unit cell) on which modes are searched/probed.

    ``cell``: the unit cell (ASE Atoms, or a Phonopy whose ``unitcell`` is used), in the setting
    (orientation, axis order) of the reference -- a model's relaxed cell of the same orientation.

    * Without ``modes``: today's probe cell, every lattice vector >= ``min_length`` Å
      (:func:`phononft.structures.supercell_matrix`); the modes of a phonon built on it are searched at
      its commensurate q-points (:func:`commensurate_qpoints`).
    * With ``modes`` (e.g. the reference's, from :func:`find_imaginary_modes`; only the first
      ``n_modes``, those that are probed): the **smallest diagonal multiple of the unit cell that makes
      every given q commensurate** -- n_i is the least common multiple of the denominators of the q's
      i-th fractional coordinate in the unit cell's reciprocal basis (q mapped from each mode's
      ``primitive_matrix``) -- raised, when ``keep_min_length``, to its smallest multiple not below the
      ``min_length`` cell, so that a model is never searched on a coarser q-grid than today's.  A
      model is thus always probed on a cell where the reference's modes exist, even when those were
      found on the reference's own (larger) supercell.
    """
    fallback = None
    if not isinstance(cell, Atoms):
        fallback = cell.primitive_matrix
        cell = to_ase_atoms(cell.unitcell)
    default = np.diag(supercell_matrix(cell, min_length)).astype(int)
    use = list(modes or [])[: max(0, int(n_modes))]
    if not use:
        return np.diag(default)
    need = np.ones(3, dtype=int)
    for m in use:
        need = np.lcm(need, _denominators(_q_in_unitcell(m, fallback)))
    n = need * np.ceil(default / need).astype(int) if keep_min_length else need
    return np.diag(n.astype(int))
