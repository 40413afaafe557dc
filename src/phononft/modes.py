"""Imaginary phonon modes, the energy surface along them, and the phase they lead to.

Pure functions of ``(phonon, calc)`` (a :class:`phonopy.Phonopy` with force constants and an ASE
calculator) returning JSON-able dicts; numbers are plain floats, arrays nested lists.

Conventions
-----------
* **q-points**: only the q-points commensurate with the phonopy supercell are searched
  (``phonopy.harmonic.dynmat_to_fc.get_commensurate_points``), so that every modulation is periodic in
  that supercell and its energy can be computed exactly in it.  q in fractional coordinates of the
  phonopy *primitive* reciprocal cell; band indices from 0 in ascending frequency order.
* **Amplitude**: the displacement field of a mode is phonopy's modulation,
  ``u_l = Re[c e_k exp(2 pi i q.r_l) / sqrt(m_k)]`` (as ``phonopy.phonon.modulation.Modulation``, with
  its phase choice: the largest component made real), then scaled so that the **largest atomic
  displacement is 1 Å**.  An amplitude ``A`` therefore means "max |u_l| = |A| Å" for one mode
  (independent of masses and supercell size, unlike phonopy's sqrt(amu) Å amplitude); for two modes
  the displacement is ``A1 u1 + A2 u2`` (the max displacement of the sum is not A1 + A2 in general).
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

from collections.abc import Callable, Mapping, Sequence

import numpy as np
import spglib
from ase import Atoms

__all__ = [
    "DEFAULT_AMPLITUDES",
    "commensurate_qpoints",
    "find_imaginary_modes",
    "mode_displacements",
    "energy_surface",
    "relax_along_modes",
    "space_group_of",
    "new_phase_scores",
    "analyse_imaginary",
]

#: Default amplitude grid [Å of the largest atomic displacement] of :func:`energy_surface`.
DEFAULT_AMPLITUDES = np.linspace(-0.3, 0.3, 13)


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
    from phonopy.harmonic.dynmat_to_fc import get_commensurate_points

    q = np.asarray(get_commensurate_points(_dim_wrt_primitive(phonon)), dtype=float)
    q = q - np.floor(q + 0.5 + 1e-9)  # fold to [-0.5, 0.5)
    q[np.abs(q) < 1e-12] = 0.0
    return q


def _eigensystem(phonon, q) -> tuple[np.ndarray, np.ndarray]:
    """(frequencies [THz], eigenvectors as columns) at one q-point."""
    from phonopy.physical_units import get_physical_units

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
    component made real, then the real part is taken).
    """
    from phonopy.structure.cells import get_supercell

    from .phonons import to_ase_atoms

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
    big = flat[np.argmax(np.abs(flat))]
    u = (u * (abs(big) / big)).real
    umax = np.linalg.norm(u, axis=1).max()
    if umax < 1e-12:
        raise ValueError("mode has a vanishing real displacement field in this supercell")
    return to_ase_atoms(sc), u / umax


# --------------------------------------------------------------------------------------------
# Detection
# --------------------------------------------------------------------------------------------
def _mode_fields(phonon, modes: Sequence[Mapping]) -> tuple[Atoms, list[np.ndarray], list[tuple]]:
    """Undisplaced supercell, one displacement field per mode, and each mode's resolved (q, frequency, band)."""
    base, fields, resolved = None, [], []
    for m in modes:
        q, vec, f, band = _resolve_mode(phonon, m)
        base, u = mode_displacements(phonon, q, vec)
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
# Energy surface
# --------------------------------------------------------------------------------------------
def _single_threaded_blas():
    """Context limiting BLAS to one thread (if threadpoolctl is installed).

    The cell filter's 3x3 matrix functions (expm/logm Frechet derivatives) run ~5x slower with
    multi-threaded OpenBLAS on a busy machine; BLAS threads never help there.  The calculator's own
    threading (torch intra-op threads for MACE) is not a BLAS pool and is left alone.
    """
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover
        from contextlib import nullcontext

        return nullcontext()
    return threadpool_limits(limits=1, user_api="blas")


def _energy(atoms: Atoms, calc) -> float:
    a = atoms.copy()
    a.calc = calc
    return float(a.get_potential_energy())


def energy_surface(phonon, calc, modes: Sequence[Mapping], *,
                   amplitudes: Sequence[float] = DEFAULT_AMPLITUDES, n_modes: int = 2) -> dict:
    """Energy [meV/atom] on a grid of amplitudes [Å] of the (up to) two first ``modes``.

    ``modes``: as returned by :func:`find_imaginary_modes` (most imaginary first) -- pass the
    *reference's* modes when evaluating a model, so that both use the same q, branch and grid (the
    model's own eigenvectors are used, see the module docstring).  The cell is fixed at ``phonon``'s
    supercell; energies are relative to the undistorted supercell.

    Returns ``amplitudes`` [Å], ``energies_meV_per_atom`` (1-D list for one mode, 2-D list
    ``[i][j]`` = (A1 = amplitudes[i], A2 = amplitudes[j]) for two), ``n_modes``, ``mode_q``,
    ``mode_band``, ``mode_frequency`` [THz] (of ``phonon``), ``surface_min_meV_per_atom``,
    ``surface_min_amplitudes`` [Å], ``n_atoms_supercell``.  With no modes: ``n_modes`` 0 and NaN/empty.
    """
    amps = np.asarray(amplitudes, dtype=float)
    use = list(modes)[: max(0, int(n_modes))]
    out = {"amplitudes": [float(a) for a in amps], "n_modes": len(use), "mode_q": [], "mode_band": [],
           "mode_frequency": [], "energies_meV_per_atom": [], "surface_min_meV_per_atom": float("nan"),
           "surface_min_amplitudes": [], "n_atoms_supercell": 0}
    if not use:
        return out
    base, fields, resolved = _mode_fields(phonon, use)
    for q, f, band in resolved:
        out["mode_q"].append([float(x) for x in q])
        out["mode_band"].append(band)
        out["mode_frequency"].append(f)
    n = len(base)
    e0 = _energy(base, calc)
    pos0 = base.get_positions()

    def e_at(coeffs) -> float:
        a = base.copy()
        a.set_positions(pos0 + sum(c * u for c, u in zip(coeffs, fields)))
        return (_energy(a, calc) - e0) / n * 1000.0

    if len(fields) == 1:
        grid = np.array([e_at([a]) for a in amps])
        k = int(np.argmin(grid))
        best = [float(amps[k])]
    else:
        grid = np.array([[e_at([a1, a2]) for a2 in amps] for a1 in amps])
        i, j = np.unravel_index(int(np.argmin(grid)), grid.shape)
        best = [float(amps[i]), float(amps[j])]
    out.update({"energies_meV_per_atom": grid.tolist(), "surface_min_meV_per_atom": float(grid.min()),
                "surface_min_amplitudes": best, "n_atoms_supercell": n})
    return out


# --------------------------------------------------------------------------------------------
# Relaxation along the modes
# --------------------------------------------------------------------------------------------
def space_group_of(atoms: Atoms, symprec: float) -> str:
    """spglib international symbol and number, e.g. ``"Fm-3m (225)"``; ``"?"`` if spglib finds none."""
    sg = spglib.get_spacegroup((atoms.cell[:], atoms.get_scaled_positions(), atoms.numbers), symprec=symprec)
    return sg if sg else "?"


def _tag(symprec: float) -> str:
    """1e-3 -> "1e-3" (for key names)."""
    mant, exp = f"{symprec:.0e}".split("e")
    return f"{mant}e{int(exp)}"


def _sg_number(label: str) -> int | None:
    try:
        return int(label.rsplit("(", 1)[1].rstrip(")"))
    except (IndexError, ValueError):
        return None


def relax_along_modes(phonon, calc, modes: Sequence[Mapping], *, amplitude: float = 0.1, fmax: float = 1e-3,
                      max_steps: int = 2000, symprecs: tuple[float, float] = (1e-3, 1e-1),
                      log: Callable[[str], None] = _quiet) -> dict:
    """Relax (positions + cell, no symmetry constraint) from the supercell displaced along the modes.

    Starting points: the most imaginary mode alone (max displacement ``amplitude`` Å) and, when two
    modes are given, the sum of the first two (each with ``amplitude`` Å).  Each start is relaxed
    with BFGS on ASE's ``FrechetCellFilter`` to ``fmax`` [eV/Å]; the lowest-energy end point is
    reported.  Space groups (spglib) of the start (undistorted supercell) and of the end point at both
    ``symprecs``; ``new_phase`` is True when the space-group *number* at the loose tolerance (1e-1,
    robust to residual numerical noise) differs from the starting one; ``new_phase_strict`` uses
    the tight one (1e-3).

    Keys: ``energy_gain_meV_per_atom`` (E_undistorted - E_final per atom, > 0 when the relaxed
    structure is lower), ``final_energy_meV_per_atom`` (relative to the undistorted supercell,
    = -gain), ``start_spacegroup``, ``final_spacegroup_1e-3``, ``final_spacegroup_1e-1``,
    ``new_phase``, ``new_phase_strict``, ``final_volume_change`` (relative), ``relax_converged``,
    ``relax_steps``, ``best_start`` ("mode1" or "mode1+mode2"), ``starts`` (per-start details),
    ``final_cell`` [Å], ``final_scaled_positions``, ``final_numbers`` (the end structure).
    """
    from .tasks import relax

    use = list(modes)[:2]
    lo, hi = symprecs
    if not use:
        raise ValueError("relax_along_modes needs at least one mode")
    base, fields, _ = _mode_fields(phonon, use)
    n = len(base)
    e0 = _energy(base, calc)
    start_sg = {p: space_group_of(base, p) for p in symprecs}
    starts = [("mode1", [1.0])] + ([("mode1+mode2", [1.0, 1.0])] if len(fields) > 1 else [])
    results = []
    best_atoms = None
    for name, coeffs in starts:
        a = base.copy()
        a.set_positions(base.get_positions() + amplitude * sum(c * u for c, u in zip(coeffs, fields)))
        with _single_threaded_blas():
            relaxed, info = relax(a, calc, fmax=fmax, max_steps=max_steps, keep_symmetry=False,
                                  relax_cell=True, log=log)
        e = info["energy_per_atom"] * n
        res = {"start": name, "final_energy_meV_per_atom": (e - e0) / n * 1000.0,
               f"final_spacegroup_{_tag(lo)}": space_group_of(relaxed, lo),
               f"final_spacegroup_{_tag(hi)}": space_group_of(relaxed, hi),
               "converged": bool(info["converged"]), "steps": int(info["steps"]),
               "volume_change": float(relaxed.get_volume() / base.get_volume() - 1.0)}
        log(f"relaxation from {name}: dE = {res['final_energy_meV_per_atom']:.3f} meV/atom, "
            f"{res[f'final_spacegroup_{_tag(hi)}']} (symprec {_tag(hi)})")
        results.append(res)
        if best_atoms is None or res["final_energy_meV_per_atom"] < best["final_energy_meV_per_atom"]:
            best, best_atoms = res, relaxed
    sg_lo, sg_hi = best[f"final_spacegroup_{_tag(lo)}"], best[f"final_spacegroup_{_tag(hi)}"]
    return {
        "energy_gain_meV_per_atom": -best["final_energy_meV_per_atom"],
        "final_energy_meV_per_atom": best["final_energy_meV_per_atom"],
        "start_spacegroup": start_sg[lo],
        f"start_spacegroup_{_tag(hi)}": start_sg[hi],
        f"final_spacegroup_{_tag(lo)}": sg_lo,
        f"final_spacegroup_{_tag(hi)}": sg_hi,
        "new_phase": _sg_number(sg_hi) != _sg_number(start_sg[hi]),
        "new_phase_strict": _sg_number(sg_lo) != _sg_number(start_sg[lo]),
        "final_volume_change": best["volume_change"],
        "relax_converged": best["converged"],
        "relax_steps": best["steps"],
        "best_start": best["start"],
        "relax_amplitude": float(amplitude),
        "starts": results,
        "final_cell": best_atoms.cell[:].tolist(),
        "final_scaled_positions": best_atoms.get_scaled_positions().tolist(),
        "final_numbers": [int(z) for z in best_atoms.numbers],
    }


# --------------------------------------------------------------------------------------------
# Scores
# --------------------------------------------------------------------------------------------
def new_phase_scores(reference: Mapping[str, bool], model: Mapping[str, bool]) -> dict:
    """Precision, recall and F1 of the model's "relaxation leads to a new phase" against the reference.

    Over the materials present in both dicts (``n_materials``; others are ignored and counted in
    ``n_missing``).  Zero divisions are resolved as *vacuous truths*: precision = 1 when the model
    predicts no positives (it claims nothing false), recall = 1 when the reference has no positives
    (nothing to miss).  Hence F1 = 2PR/(P+R) is 1 exactly when model and reference agree on every
    material (including "no new phase anywhere"), 0 when one side has positives and the other none,
    and NaN only if there are no common materials.  Also ``accuracy``, ``tp``/``fp``/``fn``/``tn``.
    """
    common = sorted(set(reference) & set(model))
    n_missing = len(set(reference) ^ set(model))
    tp = sum(bool(reference[k]) and bool(model[k]) for k in common)
    fp = sum((not reference[k]) and bool(model[k]) for k in common)
    fn = sum(bool(reference[k]) and not model[k] for k in common)
    tn = len(common) - tp - fp - fn
    nan = float("nan")
    if not common:
        return {"precision": nan, "recall": nan, "f1": nan, "accuracy": nan, "tp": 0, "fp": 0, "fn": 0, "tn": 0,
                "n_materials": 0, "n_missing": n_missing}
    precision = tp / (tp + fp) if tp + fp else 1.0
    recall = tp / (tp + fn) if tp + fn else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": float(precision), "recall": float(recall), "f1": float(f1),
            "accuracy": float((tp + tn) / len(common)), "tp": tp, "fp": fp, "fn": fn, "tn": tn,
            "n_materials": len(common), "n_missing": n_missing}


# --------------------------------------------------------------------------------------------
# Bundle
# --------------------------------------------------------------------------------------------
def analyse_imaginary(phonon, calc, *, modes: Sequence[Mapping] | None = None, threshold: float = -0.1,
                      amplitudes: Sequence[float] = DEFAULT_AMPLITUDES, relax_amplitude: float = 0.1,
                      fmax: float = 1e-3, max_steps: int = 2000, relax: bool = True,
                      log: Callable[[str], None] = _quiet) -> dict:
    """Detection, energy surface and relaxation along imaginary modes, bundled.

    ``modes``: the reference's modes (from its own call, ``result["modes"]``) when evaluating a model;
    ``None`` or empty -> the phonon's own imaginary modes.  With a non-empty ``modes`` the surface and
    the relaxation use them (same protocol as the reference, even if the model has no imaginary mode
    there: its surface is then a single well and the relaxation returns to the start, ``new_phase``
    False); with none, a model's own spurious instabilities are probed, which is what a false positive
    of :func:`new_phase_scores` needs.

    Flat numeric summary: ``has_imaginary``, ``n_imaginary_modes``, ``min_imaginary_frequency``
    [THz] (own detection; NaN when none), ``imaginary_q``, ``surface_modes_source`` ("given"/"own"/
    "none"), ``surface_min_meV_per_atom``, ``surface_min_amplitudes`` [Å], ``energy_gain_meV_per_atom``,
    ``start_spacegroup``, ``final_spacegroup_1e-3``, ``final_spacegroup_1e-1``, ``new_phase``,
    ``new_phase_strict``; arrays for the figure: ``surface`` (:func:`energy_surface`'s dict),
    ``modes`` (own modes, JSON-able), ``relaxation`` (:func:`relax_along_modes`'s dict or None).
    With nothing to analyse, the numbers are NaN, ``new_phase`` False and ``surface``/``relaxation``
    carry no data.
    """
    own = find_imaginary_modes(phonon, threshold=threshold)
    nan = float("nan")
    use = list(modes) if modes else own
    source = "given" if modes else ("own" if own else "none")
    out = {
        "has_imaginary": bool(own),
        "n_imaginary_modes": len(own),
        "min_imaginary_frequency": own[0]["frequency"] if own else nan,
        "imaginary_q": own[0]["q"] if own else None,
        "imaginary_threshold": float(threshold),
        "surface_modes_source": source,
    }
    surface = energy_surface(phonon, calc, use, amplitudes=amplitudes)
    out["surface_min_meV_per_atom"] = surface["surface_min_meV_per_atom"]
    out["surface_min_amplitudes"] = surface["surface_min_amplitudes"]
    relaxation = None
    if use and relax:
        relaxation = relax_along_modes(phonon, calc, use, amplitude=relax_amplitude, fmax=fmax,
                                       max_steps=max_steps, log=log)
    keys = ("energy_gain_meV_per_atom", "start_spacegroup", "final_spacegroup_1e-3", "final_spacegroup_1e-1",
            "new_phase", "new_phase_strict", "final_volume_change", "relax_converged")
    for k in keys:
        default = False if k.startswith("new_phase") else (None if "spacegroup" in k or k == "relax_converged" else nan)
        out[k] = relaxation[k] if relaxation else default
    out["surface"] = surface
    out["modes"] = own
    out["relaxation"] = relaxation
    return out
