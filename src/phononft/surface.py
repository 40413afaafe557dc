"""Energy surface along imaginary modes (plan / result), and the in-process bundle :func:`analyse_imaginary`.

Conventions (amplitudes in Å of the largest atomic displacement, normal-mode coordinates Q in
amu^1/2 Å, energies in meV/atom relative to the undistorted supercell): see :mod:`phononft.modes`.
The surface is a PLAN (:func:`surface_structures`, kind ``static``) and a RESULT
(:func:`surface_from_labels`); :func:`energy_surface` is both with an ASE calculator in between.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np
from ase import Atoms

from .io import get_labels
from .modes import _is_commensurate, _map_q, _mode_fields, _quiet, find_imaginary_modes, label_with, probe_supercell

__all__ = ["DEFAULT_AMPLITUDES", "surface_structures", "surface_from_labels", "energy_surface", "analyse_imaginary"]

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
                       n_modes: int = 2) -> tuple[Atoms | None, list[Atoms]]:
    """PLAN (kind ``static``) of the energy surface along the (up to ``n_modes``) first ``modes``.

    Returns ``(base, grid)``: the undistorted supercell and one displaced copy per grid point, 1-D
    (``amplitudes``) for one mode, row-major ``(A1 = amplitudes[i], A2 = amplitudes[j])`` for two.
    Each copy's ``info``: ``relax_kind`` "static", ``surface_index`` and ``surface_amplitudes`` [Å].
    ``(None, [])`` without modes.  The modes must be commensurate with ``phonon``'s supercell
    (:func:`probe_supercell`); see :func:`energy_surface` for the meaning of the grid.
    """
    use = list(modes)[: max(0, int(n_modes))]
    if not use:
        return None, []
    base, fields, _ = _mode_fields(phonon, use)
    base.info.update(relax_kind="static", surface_role="undistorted")
    pos0 = base.get_positions()
    grid = []
    for index, coeffs in _grid(amplitudes, len(fields)):
        a = base.copy()
        a.set_positions(pos0 + sum(c * u for c, u in zip(coeffs, fields)))
        a.info.update(relax_kind="static", surface_role="grid", surface_index=list(index),
                      surface_amplitudes=list(coeffs))
        grid.append(a)
    return base, grid


def surface_from_labels(phonon, modes: Sequence[Mapping], base: Atoms | None, labelled: Sequence[Atoms], *,
                        amplitudes: Sequence[float] = DEFAULT_AMPLITUDES, n_modes: int = 2) -> dict:
    """RESULT of :func:`surface_structures`: the surface dict of :func:`energy_surface` from labels.

    ``base`` and ``labelled``: the plan's structures with ``REF_energy`` (eV), in the plan's order (the
    same ``phonon``, ``modes``, ``amplitudes`` and ``n_modes`` as the plan; positions are checked).
    """
    amps = np.asarray(amplitudes, dtype=float)
    use = list(modes)[: max(0, int(n_modes))]
    out = {"amplitudes": [float(a) for a in amps], "n_modes": len(use), "mode_q": [], "mode_band": [],
           "mode_frequency": [], "energies_meV_per_atom": [], "surface_min_meV_per_atom": float("nan"),
           "surface_min_amplitudes": [], "n_atoms_supercell": 0, "Q_unit": "amu^1/2 Å",
           "Q_per_amplitude": [], "Q_axes": [], "surface_min_Q": []}
    if not use:
        return out
    ref_base, fields, resolved = _mode_fields(phonon, use)
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
                   amplitudes: Sequence[float] = DEFAULT_AMPLITUDES, n_modes: int = 2) -> dict:
    """Energy [meV/atom] on a grid of amplitudes [Å] of the (up to) two first ``modes``, with ``calc``.

    ``modes``: as returned by :func:`find_imaginary_modes` (most imaginary first) -- pass the
    *reference's* modes when evaluating a model, so that both use the same q, branch and grid (the
    model's own eigenvectors are used, see the module docstring).  The cell is fixed at ``phonon``'s
    supercell; energies are relative to the undistorted supercell.  In-process composition
    :func:`surface_structures` -> :func:`label_with` -> :func:`surface_from_labels`.

    Returns ``amplitudes`` [Å], ``energies_meV_per_atom`` (1-D list for one mode, 2-D list
    ``[i][j]`` = (A1 = amplitudes[i], A2 = amplitudes[j]) for two), ``n_modes``, ``mode_q``,
    ``mode_band``, ``mode_frequency`` [THz] (of ``phonon``), ``surface_min_meV_per_atom``,
    ``surface_min_amplitudes`` [Å], ``n_atoms_supercell``, and the normal-mode axes: ``Q_per_amplitude``
    [amu^1/2 Å per Å] and ``Q_axes`` [amu^1/2 Å] (per mode, one Q per amplitude), ``surface_min_Q``,
    ``Q_unit``.  With no modes: ``n_modes`` 0 and NaN/empty.
    """
    base, grid = surface_structures(phonon, modes, amplitudes, n_modes=n_modes)
    if base is None:
        return surface_from_labels(phonon, modes, None, [], amplitudes=amplitudes, n_modes=n_modes)
    base_l, *grid_l = label_with(calc, [base, *grid], "static")
    return surface_from_labels(phonon, modes, base_l, grid_l, amplitudes=amplitudes, n_modes=n_modes)


# --------------------------------------------------------------------------------------------
# Bundle
# --------------------------------------------------------------------------------------------
def _on_probe_supercell(phonon, calc, modes: Sequence[Mapping], log: Callable[[str], None]):
    """``phonon`` itself when the (first two) modes are commensurate with it, else a phonon of ``calc``
    rebuilt on the smallest multiple of :func:`probe_supercell`'s cell for the modes that is not smaller
    than ``phonon``'s (diagonal) supercell (same unit cell, primitive matrix, symprec and displacement)."""
    if all(_is_commensurate(phonon, _map_q(m, phonon)) for m in modes[:2]):
        return phonon
    from .phonons import finite_displacement_phonons, to_ase_atoms

    current = np.abs(np.diag(np.asarray(phonon.supercell_matrix))).astype(int)
    need = np.diag(probe_supercell(phonon, 0.0, modes, keep_min_length=False))
    sc = np.diag(need * np.ceil(current / need).astype(int))  # commensurate, never smaller than now
    first = (phonon.dataset or {}).get("first_atoms") or [{"displacement": [0.01, 0, 0]}]
    log(f"modes not commensurate with supercell {current.tolist()}: probing on {np.diag(sc).tolist()}")
    rebuilt, _ = finite_displacement_phonons(to_ase_atoms(phonon.unitcell), calc, sc,
                                             distance=float(np.linalg.norm(first[0]["displacement"])),
                                             symprec=phonon.symmetry.tolerance,
                                             primitive_matrix=phonon.primitive_matrix, log=log)
    return rebuilt


def analyse_imaginary(phonon, calc, *, modes: Sequence[Mapping] | None = None, threshold: float = -0.1,
                      amplitudes: Sequence[float] = DEFAULT_AMPLITUDES, relax_amplitude: float = 0.1,
                      relax_amplitudes: Sequence[float] | None = None, fmax: float = 1e-3,
                      max_steps: int = 2000, relax: bool = True, symprecs: tuple[float, float] = (1e-3, 1e-1),
                      log: Callable[[str], None] = _quiet) -> dict:
    """Detection, energy surface and relaxations along imaginary modes, bundled (in-process).

    ``modes``: the reference's modes (from its own call, ``result["modes"]``) when evaluating a model;
    ``None`` or empty -> the phonon's own imaginary modes.  With a non-empty ``modes`` the surface and
    the relaxations use them (same protocol as the reference, even if the model has no imaginary mode
    there: its surface is then a single well and the relaxations return to the start, ``new_phase``
    False); with none, a model's own spurious instabilities are probed, which is what a false positive
    of :func:`~phononft.phases.new_phase_scores` needs.  When the given modes are not commensurate with
    ``phonon``'s supercell, the phonon is rebuilt with ``calc`` on :func:`probe_supercell` (reported
    in ``probe_supercell_matrix``; the own modes are then those of the rebuilt phonon).

    Relaxations: :func:`~phononft.phases.relaxation_starts` (modes 1, 2 and their sum, both signs, at
    each of ``relax_amplitudes`` Å, default ``[relax_amplitude]``; symmetry-equivalent starts once)
    -> :func:`label_with` (``relax_free``) -> :func:`~phononft.phases.phases_reached`.

    Flat summary: ``has_imaginary``, ``n_imaginary_modes``, ``min_imaginary_frequency`` [THz] (own
    detection; NaN when none), ``imaginary_q``, ``surface_modes_source`` ("given"/"own"/"none"),
    ``probe_supercell_matrix``, ``surface_min_meV_per_atom``, ``surface_min_amplitudes`` [Å],
    ``surface_min_Q`` [amu^1/2 Å], ``energy_gain_meV_per_atom``, ``start_spacegroup``,
    ``final_spacegroup_1e-3``, ``final_spacegroup_1e-1``, ``new_phase``, ``new_phase_strict`` (lowest
    end point), ``phases_1e-3``/``phases_1e-1`` (all end phases), ``new_phases_1e-3``/``new_phases_1e-1``,
    ``n_relax_starts``; for the figures: ``surface`` (:func:`energy_surface`'s dict), ``modes`` (own
    modes, JSON-able), ``relaxation`` (:func:`~phononft.phases.phases_reached`'s dict or None).  With
    nothing to analyse, the numbers are NaN, ``new_phase`` False, phase lists empty and
    ``surface``/``relaxation`` carry no data.
    """
    from .phases import phases_reached, relaxation_starts, tag

    given = list(modes or [])
    if given:
        phonon = _on_probe_supercell(phonon, calc, given, log)
    own = find_imaginary_modes(phonon, threshold=threshold)
    nan = float("nan")
    use = given or own
    out = {
        "has_imaginary": bool(own),
        "n_imaginary_modes": len(own),
        "min_imaginary_frequency": own[0]["frequency"] if own else nan,
        "imaginary_q": own[0]["q"] if own else None,
        "imaginary_threshold": float(threshold),
        "surface_modes_source": "given" if given else ("own" if own else "none"),
        "probe_supercell_matrix": np.asarray(phonon.supercell_matrix, dtype=int).tolist(),
    }
    base, grid = surface_structures(phonon, use, amplitudes)
    labelled = label_with(calc, [base, *grid], "static") if base is not None else [None]
    surface = surface_from_labels(phonon, use, labelled[0], labelled[1:], amplitudes=amplitudes)
    out.update({k: surface[k] for k in ("surface_min_meV_per_atom", "surface_min_amplitudes", "surface_min_Q")})
    relaxation = None
    if use and relax:
        starts = relaxation_starts(phonon, use, relax_amplitudes or [relax_amplitude])
        relaxed = label_with(calc, starts, "relax_free", fmax=fmax, max_steps=max_steps, log=log)
        relaxation = phases_reached(starts, relaxed, base=labelled[0], symprecs=symprecs)
    tags = [tag(p) for p in symprecs]
    defaults = {"energy_gain_meV_per_atom": nan, "start_spacegroup": None,
                **{f"final_spacegroup_{t}": None for t in tags}, "new_phase": False, "new_phase_strict": False,
                "final_volume_change": nan, "relax_converged": None, **{f"phases_{t}": [] for t in tags},
                **{f"new_phases_{t}": [] for t in tags}, "n_relax_starts": 0}
    out.update({k: relaxation[k] if relaxation else v for k, v in defaults.items()})
    out["surface"] = surface
    out["modes"] = own
    out["relaxation"] = relaxation
    return out


