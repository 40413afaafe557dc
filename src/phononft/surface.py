"""Energy surface along imaginary modes (plan / result).

Conventions (amplitudes in Å of the largest atomic displacement, normal-mode coordinates Q in
amu^1/2 Å, energies in meV/atom relative to the undistorted supercell): see :mod:`phononft.modes`.
The surface is a PLAN (:func:`surface_structures`, kind ``static``) and a RESULT
(:func:`surface_from_labels`); :func:`energy_surface` is both with an ASE calculator in between.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from ase import Atoms

from .io import get_labels
from .modes import _mode_fields
from .tasks import run_tasks, task

__all__ = ["DEFAULT_AMPLITUDES", "surface_structures", "surface_from_labels", "energy_surface"]

#: Default amplitude grid [Å of the largest atomic displacement] of :func:`energy_surface`.
DEFAULT_AMPLITUDES = np.linspace(-0.3, 0.3, 13)


# --------------------------------------------------------------------------------------------
# Energy surface: plan, result, in-process composition
# --------------------------------------------------------------------------------------------
def _grid(amplitudes, n_fields: int) -> list[tuple[tuple[int, ...], list[float]]]:
    """((index), [coefficients]) of the surface grid, row-major (A1 slow, A2 fast)."""
    amps = [float(a) for a in amplitudes]
    if n_fields == 1:
        return [((i,), [a]) for i, a in enumerate(amps)]
    return [((i, j), [a1, a2]) for i, a1 in enumerate(amps) for j, a2 in enumerate(amps)]


def surface_structures(phonon, modes: Sequence[Mapping], amplitudes: Sequence[float] = DEFAULT_AMPLITUDES, *,
                       n_modes: int = 2, supercell_matrix=None) -> tuple[Atoms | None, list[Atoms]]:
    """PLAN (static tasks) of the energy surface along the (up to ``n_modes``) first ``modes``.

    Returns ``(base, grid)``: the undistorted supercell and one displaced copy per grid point, 1-D
    (``amplitudes``) for one mode, row-major ``(A1 = amplitudes[i], A2 = amplitudes[j])`` for two.
    Each copy's ``info``: ``surface_role``, ``surface_index`` and ``surface_amplitudes`` [Å].
    ``(None, [])`` without modes.  The supercell: ``phonon``'s, or the probe ``supercell_matrix``
    (:func:`phononft.modes.probe_supercell`) on which the modes are commensurate.
    """
    use = list(modes)[: max(0, int(n_modes))]
    if not use:
        return None, []
    base, fields, _ = _mode_fields(phonon, use, supercell_matrix)
    pos0 = base.get_positions()
    grid = []
    for index, coeffs in _grid(amplitudes, len(fields)):
        a = base.copy()
        a.set_positions(pos0 + sum(c * u for c, u in zip(coeffs, fields)))
        grid.append(task(a, "static", surface_role="grid", surface_index=list(index),
                         surface_amplitudes=list(coeffs)))
    return task(base, "static", surface_role="undistorted"), grid


def surface_from_labels(phonon, modes: Sequence[Mapping], base: Atoms | None, labelled: Sequence[Atoms], *,
                        amplitudes: Sequence[float] = DEFAULT_AMPLITUDES, n_modes: int = 2,
                        supercell_matrix=None) -> dict:
    """RESULT of :func:`surface_structures`: the surface dict of :func:`energy_surface` from labels.

    ``base`` and ``labelled``: the plan's structures with ``REF_energy`` (eV), in the plan's order (the
    same ``phonon``, ``modes``, ``amplitudes``, ``n_modes`` and ``supercell_matrix`` as the plan; positions
    are checked).
    """
    amps = np.asarray(amplitudes, dtype=float)
    use = list(modes)[: max(0, int(n_modes))]
    out = {"amplitudes": [float(a) for a in amps], "n_modes": len(use), "mode_q": [], "mode_band": [],
           "mode_frequency": [], "energies_meV_per_atom": [], "surface_min_meV_per_atom": float("nan"),
           "surface_min_amplitudes": [], "n_atoms_supercell": 0, "Q_unit": "amu^1/2 Å",
           "Q_per_amplitude": [], "Q_axes": [], "surface_min_Q": []}
    if not use:
        return out
    ref_base, fields, resolved = _mode_fields(phonon, use, supercell_matrix)
    grid = _grid(amps, len(fields))
    if base is None or len(labelled) != len(grid):
        raise ValueError(f"surface: {len(labelled)} labelled structures for a plan of {len(grid)} (+ base)")
    pos0 = ref_base.get_positions()
    for atoms, (_, coeffs) in zip([base, *labelled], [((), [0.0] * len(fields)), *grid]):
        expected = pos0 + sum(c * u for c, u in zip(coeffs, fields))
        if len(atoms) != len(pos0) or np.abs(atoms.get_positions() - expected).max() > 1e-6:
            raise ValueError("surface: labelled structures do not follow the plan (order or geometry)")
    masses = ref_base.get_masses()
    for (q, f, band), u in zip(resolved, fields):
        out["mode_q"].append([float(x) for x in q])
        out["mode_band"].append(band)
        out["mode_frequency"].append(f)
        scale = float(np.sqrt(np.sum(masses[:, None] * u**2)))
        out["Q_per_amplitude"].append(scale)
        out["Q_axes"].append([float(a * scale) for a in amps])
    n = len(ref_base)
    e0 = get_labels(base)[0]
    energies = np.array([(get_labels(a)[0] - e0) / n * 1000.0 for a in labelled])
    grid_e = energies if len(fields) == 1 else energies.reshape(len(amps), len(amps))
    k = np.unravel_index(int(np.argmin(grid_e)), grid_e.shape)
    best = [float(amps[i]) for i in k]
    out.update({"energies_meV_per_atom": grid_e.tolist(), "surface_min_meV_per_atom": float(grid_e.min()),
                "surface_min_amplitudes": best, "n_atoms_supercell": n,
                "surface_min_Q": [a * s for a, s in zip(best, out["Q_per_amplitude"])]})
    return out


def energy_surface(phonon, calc, modes: Sequence[Mapping], *,
                   amplitudes: Sequence[float] = DEFAULT_AMPLITUDES, n_modes: int = 2, supercell_matrix=None) -> dict:
    """Energy [meV/atom] on a grid of amplitudes [Å] of the (up to) two first ``modes``, with ``calc``.

    ``modes``: as returned by :func:`find_imaginary_modes` (most imaginary first) -- pass the
    *reference's* modes when evaluating a model, so that both use the same q, branch and grid (the
    model's own eigenvectors are used, see the module docstring).  The cell is fixed at ``phonon``'s
    supercell (or the probe ``supercell_matrix``); energies are relative to the undistorted supercell.
    In-process composition :func:`surface_structures` -> :func:`phononft.tasks.run_tasks` ->
    :func:`surface_from_labels`.

    Returns ``amplitudes`` [Å], ``energies_meV_per_atom`` (1-D list for one mode, 2-D list
    ``[i][j]`` = (A1 = amplitudes[i], A2 = amplitudes[j]) for two), ``n_modes``, ``mode_q``,
    ``mode_band``, ``mode_frequency`` [THz] (of ``phonon``), ``surface_min_meV_per_atom``,
    ``surface_min_amplitudes`` [Å], ``n_atoms_supercell``, and the normal-mode axes: ``Q_per_amplitude``
    [amu^1/2 Å per Å] and ``Q_axes`` [amu^1/2 Å] (per mode, one Q per amplitude), ``surface_min_Q``,
    ``Q_unit``.  With no modes: ``n_modes`` 0 and NaN/empty.
    """
    kw = {"amplitudes": amplitudes, "n_modes": n_modes, "supercell_matrix": supercell_matrix}
    base, grid = surface_structures(phonon, modes, **kw)
    if base is None:
        return surface_from_labels(phonon, modes, None, [], **kw)
    base_l, *grid_l = run_tasks([base, *grid], calc)
    return surface_from_labels(phonon, modes, base_l, grid_l, **kw)
