"""Relaxations along imaginary modes: the phases they reach, and how a model's phases score against the reference's.

The study relaxes (cell and positions, no symmetry constraint) from several starting points along the
(up to two) most imaginary modes -- each mode alone and their sum, both signs, several amplitudes --
and compares the *set* of final phases of a model with the reference's.

* PLAN :func:`relaxation_starts` (``relax_free`` tasks) -> relaxed structures (in-process:
  :func:`phononft.tasks.run_tasks`; real path: VASP relaxation jobs) -> RESULT :func:`phases_reached`.
* Scores over materials: :func:`phase_set_scores` (precision / recall of the phase sets),
  :func:`new_phase_scores` ("a new phase or not" per material), and per material
  :func:`imaginary_scenario`, which names the four situations of the study's SI.

A *phase* is the spglib space group ``"symbol (number)"`` of an end point at a given tolerance
(1e-3 and 1e-1 by default), optionally with a coarse fingerprint (atoms in the primitive cell).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import spglib
from ase import Atoms

from .io import ENERGY_KEY, get_labels
from .modes import _mode_fields
from .tasks import run_tasks, task

__all__ = [
    "COMBINATIONS",
    "space_group_of",
    "relaxation_starts",
    "phases_reached",
    "relax_along_modes",
    "new_phase_scores",
    "phase_set_scores",
    "surface_well",
    "imaginary_scenario",
]

#: Starting displacements: ``A u1``, ``A u2`` and ``A (u1 + u2)`` (times the sign).
COMBINATIONS = ("mode1", "mode2", "mode1+mode2")
_COEFFS = {"mode1": (1.0, 0.0), "mode2": (0.0, 1.0), "mode1+mode2": (1.0, 1.0)}


def space_group_of(atoms: Atoms, symprec: float) -> str:
    """spglib international symbol and number, e.g. ``"Fm-3m (225)"``; ``"?"`` if spglib finds none."""
    sg = spglib.get_spacegroup((atoms.cell[:], atoms.get_scaled_positions(), atoms.numbers), symprec=symprec)
    return sg if sg else "?"


def _n_primitive(atoms: Atoms, symprec: float) -> int | None:
    """Atoms in spglib's primitive cell at ``symprec`` (a coarse structure fingerprint)."""
    cell = spglib.standardize_cell((atoms.cell[:], atoms.get_scaled_positions(), atoms.numbers),
                                   to_primitive=True, symprec=symprec)
    return None if cell is None else len(cell[2])


def tag(symprec: float) -> str:
    """1e-3 -> "1e-3" (for key names)."""
    mant, exp = f"{symprec:.0e}".split("e")
    return f"{mant}e{int(exp)}"


def _sg_number(label: str) -> int | None:
    try:
        return int(label.split("(", 1)[1].split(")", 1)[0])
    except (IndexError, ValueError):
        return None


def _phase_key(label: str) -> tuple:
    return (_sg_number(label) or 0, label)


# --------------------------------------------------------------------------------------------
# PLAN: starting structures
# --------------------------------------------------------------------------------------------
def _symmetry_maps(base: Atoms, symprec: float = 1e-5) -> list[tuple[np.ndarray, np.ndarray]]:
    """(Cartesian rotation, inverse atom permutation) of every space-group operation of ``base``."""
    frac = base.get_scaled_positions()
    lat = base.cell[:]
    sym = spglib.get_symmetry((lat, frac, base.numbers), symprec=symprec) or {"rotations": [], "translations": []}
    maps = []
    for rot, trans in zip(sym["rotations"], sym["translations"]):
        image = frac @ rot.T + trans
        diff = image[:, None, :] - frac[None, :, :]
        diff -= np.rint(diff)
        perm = np.argmin(np.linalg.norm(diff @ lat, axis=2), axis=1)  # atom i -> site perm[i]
        if len(set(perm)) != len(perm) or np.any(base.numbers[perm] != base.numbers):
            continue
        inv = np.empty_like(perm)
        inv[perm] = np.arange(len(perm))
        maps.append((lat.T @ rot @ np.linalg.inv(lat.T), inv))
    return maps


def _equivalent(d_a: np.ndarray, d_b: np.ndarray, maps, tol: float = 1e-6) -> bool:
    """Whether a symmetry operation of the undistorted cell maps displacement field ``d_a`` onto ``d_b``."""
    return any(np.abs((d_a @ rc.T)[inv] - d_b).max() < tol for rc, inv in maps)


def relaxation_starts(phonon, modes: Sequence[Mapping], amplitudes: Sequence[float] = (0.05, 0.1, 0.2), *,
                      combinations: Sequence[str] = COMBINATIONS, signs: Sequence[int] = (1, -1),
                      unique: bool = True, fmax: float = 1e-3, max_steps: int = 1000,
                      supercell_matrix=None) -> list[Atoms]:
    """PLAN (``relax_free`` tasks to ``fmax`` eV/Å): supercells (``phonon``'s, or the probe
    ``supercell_matrix``) displaced along the (up to two) first ``modes``.

    For each amplitude ``A`` [Å, > 0, max atomic displacement of one mode; see :mod:`phononft.modes`],
    each combination (``"mode1"``: A u1, ``"mode2"``: A u2, ``"mode1+mode2"``: A (u1 + u2); those
    naming mode 2 are skipped with one mode) and each sign.  ``unique``: a start that a space-group
    operation of the undistorted supercell maps onto an earlier one is dropped (its relaxation is
    the symmetry image of the earlier one, same phase and energy); its name is appended to the
    earlier start's ``equivalent_starts``.  Order: amplitude, combination, sign.

    Each start's ``info``: ``start`` (combination), ``start_sign`` (+1/-1),
    ``start_amplitude`` [Å], ``start_name`` (e.g. ``"-mode1@0.1"``, ``"+(mode1+mode2)@0.2"``),
    ``equivalent_starts`` (names, ``;``-separated, itself first); ``arrays["start_displacement"]``
    [Å] (start minus undistorted supercell, from which :func:`phases_reached` recovers the
    undistorted cell).  ``[]`` without modes.
    """
    use = list(modes)[:2]
    if not use:
        return []
    if any(a <= 0 for a in amplitudes):
        raise ValueError(f"amplitudes must be positive (signs are separate): {list(amplitudes)}")
    unknown = set(combinations) - set(_COEFFS)
    if unknown:
        raise ValueError(f"unknown combinations {sorted(unknown)} (known: {COMBINATIONS})")
    base, fields, _ = _mode_fields(phonon, use, supercell_matrix)
    maps = _symmetry_maps(base) if unique else []
    starts, kept = [], []
    for amp in amplitudes:
        for combo in combinations:
            if len(fields) < 2 and combo != "mode1":
                continue
            for sign in signs:
                d = sign * float(amp) * sum(c * u for c, u in zip(_COEFFS[combo], fields))
                name = f"{'+' if sign > 0 else '-'}{combo if '+' not in combo else f'({combo})'}@{float(amp):g}"
                twin = next((k for k, d0 in enumerate(kept) if _equivalent(d, d0, maps)), None) if unique else None
                if twin is not None:
                    starts[twin].info["equivalent_starts"] += f";{name}"
                    continue
                a = base.copy()
                a.set_positions(base.get_positions() + d)
                a = task(a, "relax_free", fmax=fmax, max_steps=max_steps, start=combo, start_sign=int(np.sign(sign)),
                         start_amplitude=float(amp), start_name=name, equivalent_starts=name)
                a.arrays["start_displacement"] = d
                starts.append(a)
                kept.append(d)
    return starts


# --------------------------------------------------------------------------------------------
# RESULT: phases reached
# --------------------------------------------------------------------------------------------
def _plain(value, kind):
    """A JSON-able Python scalar (info values read back from extxyz are numpy scalars); None stays None."""
    return None if value is None else kind(value)


def _undistorted(start: Atoms) -> Atoms:
    base = start.copy()
    base.set_positions(start.get_positions() - start.arrays["start_displacement"])
    return base


def phases_reached(starts: Sequence[Atoms], relaxed: Sequence[Atoms], *, base: Atoms | None = None,
                   symprecs: tuple[float, float] = (1e-3, 1e-1), fingerprint: bool = False) -> dict:
    """RESULT of :func:`relaxation_starts`: the phases the relaxations end in.

    ``relaxed``: the starts relaxed (final cell/positions, ``REF_energy`` [eV], optionally
    ``info["relax_converged"]``/``["relax_steps"]``), in the same order.  ``base``: the undistorted
    supercell *labelled* (e.g. the surface plan's base) for energies relative to it; without it the
    relative energies are NaN (the lowest end point is still found).  A phase is the space group
    ``"symbol (number)"`` at each of ``symprecs`` (the loose one, last, is robust to residual noise),
    with ``fingerprint`` also `` Z=<atoms in the primitive cell>``.

    Keys (``<t>`` = ``1e-3``, ``1e-1``): ``phases_<t>`` (sorted list of every end phase: the *set*
    the study compares, the starting phase included when a relaxation returns to it),
    ``new_phases_<t>`` (without the starting phase), ``start_spacegroup`` (tight tolerance) and
    ``start_spacegroup_<t>``; of the lowest-energy end point: ``final_spacegroup_<t>``,
    ``energy_gain_meV_per_atom`` (E_undistorted - E_final per atom, > 0 when lower),
    ``final_energy_meV_per_atom`` (= -gain), ``new_phase`` / ``new_phase_strict`` (its space-group
    number differs from the start's at the loose / tight tolerance, as before), ``final_volume_change``,
    ``relax_converged``, ``relax_steps``, ``best_start`` (combination), ``best_start_name``,
    ``final_cell`` [Å], ``final_scaled_positions``, ``final_numbers``; ``any_new_phase`` (loose),
    ``all_converged``, ``n_relax_starts``, ``relax_amplitudes`` [Å] and ``starts`` (per start: ``start``,
    ``name``, ``sign``, ``amplitude``, ``equivalent_starts``, ``final_energy_meV_per_atom``,
    ``final_spacegroup_<t>``, ``n_primitive_<t>``, ``converged``, ``steps``, ``volume_change``).
    """
    if len(starts) != len(relaxed):
        raise ValueError(f"{len(starts)} starts but {len(relaxed)} relaxed structures")
    tags = [tag(p) for p in symprecs]
    if not starts:
        return {**{f"phases_{t}": [] for t in tags}, **{f"new_phases_{t}": [] for t in tags},
                "n_relax_starts": 0, "starts": []}
    undistorted = base if base is not None else _undistorted(starts[0])
    n = len(undistorted)
    e0 = get_labels(base)[0] if base is not None and ENERGY_KEY in base.info else float("nan")
    start_sg = {t: space_group_of(undistorted, p) for t, p in zip(tags, symprecs)}
    details, labels = [], {t: set() for t in tags}
    for s, r in zip(starts, relaxed):
        if len(r) != len(s) or list(r.numbers) != list(s.numbers):
            raise ValueError(f"relaxed structure of {s.info.get('start_name')} has other atoms than its start")
        e = get_labels(r)[0]
        det = {"start": s.info.get("start"), "name": s.info.get("start_name"),
               "sign": _plain(s.info.get("start_sign"), int), "amplitude": _plain(s.info.get("start_amplitude"), float),
               "equivalent_starts": str(s.info.get("equivalent_starts", "")).split(";"),
               "final_energy_meV_per_atom": (e - e0) / n * 1000.0, "energy_eV": float(e)}
        for t, p in zip(tags, symprecs):
            det[f"final_spacegroup_{t}"] = sg = space_group_of(r, p)
            det[f"n_primitive_{t}"] = z = _n_primitive(r, p)
            labels[t].add(f"{sg} Z={z}" if fingerprint else sg)
        det.update(converged=_plain(r.info.get("relax_converged"), bool), steps=_plain(r.info.get("relax_steps"), int),
                   volume_change=float(r.get_volume() / s.get_volume() - 1.0))
        details.append(det)
    k = int(np.argmin([d["energy_eV"] for d in details]))
    best, best_atoms = details[k], relaxed[k]
    lo, hi = tags[0], tags[-1]
    out = {f"phases_{t}": sorted(labels[t], key=_phase_key) for t in tags}
    for t in tags:
        start_label = start_sg[t]
        if fingerprint:
            start_label = f"{start_label} Z={_n_primitive(undistorted, symprecs[tags.index(t)])}"
        out[f"new_phases_{t}"] = [x for x in out[f"phases_{t}"] if x != start_label]
        out[f"start_spacegroup_{t}"] = start_sg[t]
        out[f"final_spacegroup_{t}"] = best[f"final_spacegroup_{t}"]
    out.update({
        "start_spacegroup": start_sg[lo],
        "energy_gain_meV_per_atom": -best["final_energy_meV_per_atom"],
        "final_energy_meV_per_atom": best["final_energy_meV_per_atom"],
        "new_phase": _sg_number(best[f"final_spacegroup_{hi}"]) != _sg_number(start_sg[hi]),
        "new_phase_strict": _sg_number(best[f"final_spacegroup_{lo}"]) != _sg_number(start_sg[lo]),
        "any_new_phase": bool(out[f"new_phases_{hi}"]),
        "final_volume_change": best["volume_change"],
        "relax_converged": best["converged"],
        "relax_steps": best["steps"],
        "all_converged": all(bool(d["converged"]) for d in details),
        "best_start": best["start"],
        "best_start_name": best["name"],
        "n_relax_starts": len(details),
        "relax_amplitudes": sorted({float(d["amplitude"]) for d in details if d["amplitude"] is not None}),
        "starts": details,
        "final_cell": best_atoms.cell[:].tolist(),
        "final_scaled_positions": best_atoms.get_scaled_positions().tolist(),
        "final_numbers": [int(z) for z in best_atoms.numbers],
    })
    return out


def relax_along_modes(phonon, calc, modes: Sequence[Mapping], *, amplitude: float = 0.1, fmax: float = 1e-3,
                      symprecs: tuple[float, float] = (1e-3, 1e-1)) -> dict:
    """The former protocol, in-process: starts ``+mode1`` and ``+(mode1+mode2)`` at one ``amplitude`` [Å].

    :func:`relaxation_starts` (these two, no de-duplication) -> :func:`phononft.tasks.run_tasks`
    (``relax_free``, BFGS + FrechetCellFilter to ``fmax`` eV/Å) -> :func:`phases_reached` (its keys,
    plus ``relax_amplitude``).
    """
    if not list(modes):
        raise ValueError("relax_along_modes needs at least one mode")
    starts = relaxation_starts(phonon, modes, [amplitude], combinations=("mode1", "mode1+mode2"), signs=(1,),
                               unique=False, fmax=fmax)
    (base,) = run_tasks([task(_undistorted(starts[0]), "static")], calc)
    relaxed = run_tasks(starts, calc)
    out = phases_reached(starts, relaxed, base=base, symprecs=symprecs)
    out["relax_amplitude"] = float(amplitude)
    return out


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


def _ratio(a: int, b: int) -> float:
    return a / b if b else float("nan")


def phase_set_scores(reference_sets: Mapping[str, set], model_sets: Mapping[str, set]) -> dict:
    """The study's phase metric: precision and recall of the model's sets of final phases, pooled.

    Per material m, S_model(m) and S_ref(m) are the sets of phases reached (``phases_<t>`` of
    :func:`phases_reached`, one tolerance for both).  Pooled over the materials present in both
    (sums of numerators and of denominators, not a mean of ratios)::

        precision = sum_m |S_model ∩ S_ref| / sum_m |S_model|
        recall    = sum_m |S_model ∩ S_ref| / sum_m |S_ref|

    F1 = 2PR/(P+R).  A ratio with a zero denominator is NaN (nothing to score).  Materials in only one
    dict are left out and counted in ``n_missing``.  Also ``n_common``/``n_model``/``n_reference`` (the
    sums), ``n_materials`` and ``per_material`` (the same three numbers and P, R per material).
    """
    common = sorted(set(reference_sets) & set(model_sets))
    per, hits, n_mod, n_ref = {}, 0, 0, 0
    for m in common:
        s_ref, s_mod = set(reference_sets[m]), set(model_sets[m])
        h = len(s_ref & s_mod)
        per[m] = {"n_common": h, "n_model": len(s_mod), "n_reference": len(s_ref),
                  "precision": _ratio(h, len(s_mod)), "recall": _ratio(h, len(s_ref))}
        hits, n_mod, n_ref = hits + h, n_mod + len(s_mod), n_ref + len(s_ref)
    p, r = _ratio(hits, n_mod), _ratio(hits, n_ref)
    f1 = 2 * p * r / (p + r) if p + r > 0 else (0.0 if p + r == 0 else float("nan"))
    return {"precision": p, "recall": r, "f1": f1, "n_common": hits, "n_model": n_mod, "n_reference": n_ref,
            "n_materials": len(common), "n_missing": len(set(reference_sets) ^ set(model_sets)),
            "per_material": per}


def surface_well(surface: Mapping | None, tol_meV_per_atom: float = 0.01) -> bool | None:
    """Whether an energy surface (:func:`phononft.surface.energy_surface`'s dict) goes below the
    undistorted energy by more than ``tol_meV_per_atom`` (an anharmonic well along the modes);
    False for a purely harmonic (rising) surface; None when there is no surface."""
    if not surface or not surface.get("n_modes"):
        return None
    e_min = surface.get("surface_min_meV_per_atom")
    return None if e_min is None or e_min != e_min else bool(e_min < -tol_meV_per_atom)


#: Per-material outcome of :func:`imaginary_scenario` -> the study's SI scenario number (None: outside them).
SCENARIOS = {"same_transition": 1, "no_transition": 2, "spurious_well": 3, "different_transition": 4,
             "missed_transition": None, "spurious_transition": None}


def imaginary_scenario(reference_phases, model_phases, start_phase: str, *,
                       reference_well: bool | None = None, model_well: bool | None = None) -> dict:
    """Which of the study's imaginary-mode scenarios a material is in, for one model.

    ``*_phases``: sets of end phases (``phases_<t>`` of :func:`phases_reached`, one tolerance);
    ``start_phase``: the undistorted phase at that tolerance; ``*_well``: :func:`surface_well` of each
    side's energy surface.  With N_ref, N_model the *new* phases (end phases other than the start):

    1. ``same_transition``: both find new phases and the same ones (same pathway);
    2. ``no_transition``: neither finds a new phase, and the model has no well the reference lacks
       (e.g. a DFT imaginary mode from interpolation error with a harmonic surface, model agreeing);
    3. ``spurious_well``: neither finds a new phase (both relax back to the start space group), but
       the model's surface has a well where the reference's is harmonic -- invisible to the phase
       sets, visible only on the surface;
    4. ``different_transition``: both find new phases, but not the same ones (another pathway);

    and, outside the four: ``missed_transition`` (only the reference) and ``spurious_transition``
    (only the model).  Returns ``scenario``, ``study_scenario`` (1-4 or None), ``new_reference``,
    ``new_model`` (sorted), ``shared_new`` and the material's ``precision``/``recall`` of the full sets
    (:func:`phase_set_scores`).
    """
    ref, mod = set(reference_phases), set(model_phases)
    new_ref, new_mod = ref - {start_phase}, mod - {start_phase}
    if new_ref and new_mod:
        name = "same_transition" if new_ref == new_mod else "different_transition"
    elif new_ref:
        name = "missed_transition"
    elif new_mod:
        name = "spurious_transition"
    else:
        name = "spurious_well" if model_well and not reference_well else "no_transition"
    scores = phase_set_scores({"m": ref}, {"m": mod})
    return {"scenario": name, "study_scenario": SCENARIOS[name], "new_reference": sorted(new_ref, key=_phase_key),
            "new_model": sorted(new_mod, key=_phase_key), "shared_new": sorted(new_ref & new_mod, key=_phase_key),
            "precision": scores["precision"], "recall": scores["recall"]}
