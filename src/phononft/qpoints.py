"""q-points of a phonon comparison: the reference's seekpath band path, q-points mapped between two primitive
settings, frequencies at q-points, and the irreducible mesh as the published benchmark sampled it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
import seekpath
import spglib
from numpy.typing import NDArray
from phonopy import Phonopy

from .phonon_io import DEFAULT_SYMPREC, ensure_force_constants

__all__ = ["band_qpoints", "cell_tuple", "frequencies_at", "map_qpoints", "mesh_sampling"]


def cell_tuple(phonon_cell) -> tuple:
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
    std = spglib.standardize_cell(cell_tuple(phonon.primitive), to_primitive=False,
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
