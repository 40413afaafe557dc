"""The imaginary-mode analysis as one step: the modes probed, the energy surface along them and the phases that
relaxations from displaced starts end in -- a PLAN (:func:`imaginary_plan`: tasks) and a RESULT
(:func:`imaginary_result`), and both with an ASE calculator in this process (:func:`analyse_imaginary`).

Which modes: the reference's own imaginary modes (most imaginary first; q-points commensurate with its phonopy
supercell), and for a model the reference's (``given``), so that both are probed along the same q and branch
on the same grid -- a model without an instability there shows a single well and relaxes back.  Where: the
probe supercell, the smallest diagonal multiple of the unit cell commensurate with the (up to two) probed
modes and at least ``evaluate.imaginary.supercell_min_length`` long (:func:`phononft.modes.probe_supercell`);
the modes' eigenvectors come from the phonon's own force constants, so no second phonon calculation is needed.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from ase import Atoms

from .modes import find_imaginary_modes, probe_supercell
from .phases import phases_reached, relaxation_starts, surface_well, tag
from .surface import surface_from_labels, surface_structures
from .tasks import run_tasks

SYMPRECS = (1e-3, 1e-1)


@dataclass
class ImaginaryPlan:
    """What :func:`imaginary_plan` decided, and its tasks: ``[base, *grid, *starts]``."""

    phonon: object
    own: list[dict]
    use: list[dict]
    source: str                      # "given" (a reference's), "own", "none"
    probe: np.ndarray | None         # supercell matrix (multiples of the unit cell) of the probe
    amplitudes: list[float]
    n_grid: int
    starts: list[Atoms] = field(default_factory=list)
    tasks: list[Atoms] = field(default_factory=list)


def imaginary_plan(phonon, icfg: Mapping, *, threshold: float = -0.1,
                   given: Sequence[Mapping] | None = None) -> ImaginaryPlan:
    """PLAN: the surface grid (static tasks) and the relaxation starts (``relax_free`` tasks) along the modes.

    ``icfg``: the config's ``evaluate.imaginary`` (``supercell_min_length`` Å, ``amplitude_max`` Å,
    ``grid_points``, ``relax_amplitudes`` Å, ``fmax`` eV/Å, ``relax_steps``, ``relax``).  ``given``: a reference's modes."""
    own = find_imaginary_modes(phonon, threshold=threshold)
    use = list(given or own)
    source = "given" if given else ("own" if own else "none")
    amplitudes = np.linspace(-icfg["amplitude_max"], icfg["amplitude_max"], icfg["grid_points"]).tolist()
    plan = ImaginaryPlan(phonon=phonon, own=own, use=use, source=source, probe=None, amplitudes=amplitudes, n_grid=0)
    if not use:
        return plan
    plan.probe = probe_supercell(phonon, icfg["supercell_min_length"], modes=use)
    base, grid = surface_structures(phonon, use, amplitudes, supercell_matrix=plan.probe)
    if icfg["relax"]:
        plan.starts = relaxation_starts(phonon, use, icfg["relax_amplitudes"], fmax=icfg["fmax"],
                                        max_steps=icfg["relax_steps"], supercell_matrix=plan.probe)
    plan.n_grid = len(grid)
    plan.tasks = [base, *grid, *plan.starts]
    return plan


def imaginary_result(plan: ImaginaryPlan, answers: Sequence[Atoms], *, log: Callable[[str], None] = print) -> dict:
    """RESULT: ``{"metrics": flat numbers for metrics.json, "surface_file": surface.json's content,
    "modes": the own modes (modes.json)}``.

    Metrics: ``has_imaginary`` -> ``imaginary_commensurate`` (own modes at commensurate q), ``n_imaginary_modes``,
    ``min_imaginary_frequency`` [THz], ``imaginary_q``, ``imaginary_threshold`` [THz], ``surface_modes_source``,
    ``probe_supercell_matrix``, ``surface_min_meV_per_atom``, ``surface_min_amplitudes`` [Å],
    ``surface_min_Q`` [amu^1/2 Å], ``surface_well``; of the relaxations (:func:`phononft.phases.phases_reached`):
    ``phases_<t>`` / ``new_phases_<t>`` (sets of end phases at tolerance t = 1e-3, 1e-1), ``start_spacegroup``,
    ``final_spacegroup_<t>``, ``energy_gain_meV_per_atom``, ``new_phase``, ``new_phase_strict``,
    ``final_volume_change``, ``mode_relax_converged``, ``n_relax_starts``.
    """
    if len(answers) != len(plan.tasks):
        raise ValueError(f"imaginary modes: {len(answers)} answers for {len(plan.tasks)} tasks")
    nan = float("nan")
    own = plan.own
    metrics = {
        "imaginary_commensurate": bool(own),
        "n_imaginary_modes": len(own),
        "min_imaginary_frequency": own[0]["frequency"] if own else nan,
        "imaginary_q": own[0]["q"] if own else None,
        "surface_modes_source": plan.source,
        "probe_supercell_matrix": None if plan.probe is None else np.asarray(plan.probe).tolist(),
    }
    base = answers[0] if plan.tasks else None
    grid = answers[1: 1 + plan.n_grid]
    surface = surface_from_labels(plan.phonon, plan.use, base, grid, amplitudes=plan.amplitudes,
                                  supercell_matrix=plan.probe)
    metrics.update({k: surface[k] for k in ("surface_min_meV_per_atom", "surface_min_amplitudes", "surface_min_Q")})
    metrics["surface_well"] = surface_well(surface)
    relaxation = None
    if plan.starts:
        relaxation = phases_reached(plan.starts, answers[1 + plan.n_grid:], base=base, symprecs=SYMPRECS)
        log(f"imaginary modes ({plan.source}): surface minimum {surface['surface_min_meV_per_atom']:.3f} meV/atom; "
            f"{relaxation['n_relax_starts']} relaxations end in {relaxation[f'phases_{tag(SYMPRECS[-1])}']}")
    tags = [tag(p) for p in SYMPRECS]
    defaults = {"energy_gain_meV_per_atom": nan, "start_spacegroup": None,
                **{f"final_spacegroup_{t}": None for t in tags}, "new_phase": False, "new_phase_strict": False,
                "final_volume_change": nan, "relax_converged": None, **{f"phases_{t}": [] for t in tags},
                **{f"new_phases_{t}": [] for t in tags}, "n_relax_starts": 0}
    for key, default in defaults.items():
        name = "mode_relax_converged" if key == "relax_converged" else key
        metrics[name] = relaxation[key] if relaxation else default
    return {"metrics": metrics, "modes": own,
            "surface_file": {"surface": surface, "relaxation": relaxation, "modes_source": plan.source}}


def analyse_imaginary(phonon, calc, icfg: Mapping, *, threshold: float = -0.1,
                      given: Sequence[Mapping] | None = None, log: Callable[[str], None] = print) -> dict:
    """:func:`imaginary_result` of :func:`imaginary_plan` answered by ``calc`` in this process."""
    plan = imaginary_plan(phonon, icfg, threshold=threshold, given=given)
    return imaginary_result(plan, run_tasks(plan.tasks, calc), log=log)
