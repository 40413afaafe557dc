"""Every property of one crystal under one calculator, as one computation that asks for energies in steps.

The reference (the labeller: DFT with VASP, or the mock calculator) and every model go through this same
code, so that differences come from the potential energy surface alone.  :func:`property_steps` is a
generator: it *yields* lists of tasks (:mod:`phononft.tasks`: structures to compute, and how) and receives
them back answered, in three steps (:data:`STEPS`):

1. ``relax``: the structure relaxed, cell and positions, symmetry kept (a precomputed reference keeps its
   cell: nothing to do);
2. ``properties``: phonopy's displaced supercells (in the reference's setting for a model: same supercell and
   primitive matrix, so that every fractional q-point is the same physical point), the EOS scan and the
   strained cells of the elastic tensor;
3. ``modes``: along the imaginary modes (the reference's own; for a model the reference's, on the same probe
   supercell): the energy surface on a grid of mode amplitudes, and relaxations from displaced starting
   points, whose end phases are compared.

and finally *returns* a :class:`Properties`.  Drivers: :func:`run_in_process` answers every step with an ASE
calculator (a MACE model, the mock labeller); the VASP reference replays the generator in Snakemake jobs,
answering step k from the VASP jobs of step k (``phononft.reference``).  The plans are deterministic, so a
replay yields the same tasks.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import seekpath
import spglib
from ase import Atoms
from phonopy import Phonopy

from . import elastic, qpoints, thermal
from .phonon_io import DEFAULT_SYMPREC
from .imaginary import imaginary_plan, imaginary_result
from .io import write_extxyz, write_json
from .phonons import displacement_result, displacement_tasks, save_phonopy, to_ase_atoms
from .structures import supercell_matrix
from .tasks import run_tasks, task

STEPS = ("relax", "properties", "modes")


@dataclass
class Reference:
    """What a model's evaluation takes from the reference: its phonons (their setting: supercell and primitive
    matrices; its band path) and its imaginary modes (probed on the model, on the same supercell)."""

    phonon: Phonopy
    modes: list[dict] = field(default_factory=list)


@dataclass
class Properties:
    """The result of :func:`property_steps`."""

    relaxed: Atoms
    phonon: Phonopy
    relax: dict                    # converged, steps of the relaxation (empty for a precomputed reference)
    elastic: dict                  # phononft.elastic.properties_result's keys (empty when switched off)
    imaginary: dict                # modes, surface and phases (phononft.modes)
    calculations: dict             # tasks computed per step


def property_steps(structure: Atoms, cfg: dict, *, reference: Reference | None = None,
                   precomputed: Phonopy | None = None, perfect: bool = False,
                   log: Callable[[str], None] = print) -> Generator[list[Atoms], list[Atoms], Properties]:
    """The computation (see the module docstring).  ``cfg``: the validated config's ``phonons`` and
    ``evaluate`` sections.  ``reference``: given for a model.  ``precomputed``: a reference's phonons read
    from a file (its unit cell is the structure: no relaxation, no displacements).  ``perfect``: also compute
    the undisplaced supercell and subtract its residual forces."""
    pcfg, ecfg = cfg["phonons"], cfg["evaluate"]
    calculations = {}

    # 1. relax
    if precomputed is None:
        relax_tasks = [task(structure, "relax_cell", fmax=pcfg["relax_fmax"], max_steps=pcfg["relax_steps"])]
    else:
        relax_tasks = []
    answers = yield relax_tasks
    calculations["relax"] = len(relax_tasks)
    if precomputed is None:
        relaxed = _plain(answers[0])
        relax_info = {"converged": bool(answers[0].info.get("relax_converged")),
                      "steps": int(answers[0].info.get("relax_steps", 0)),
                      "volume_per_atom": relaxed.get_volume() / len(relaxed)}
        log(f"relaxed: V/atom = {relax_info['volume_per_atom']:.4f} Å^3, converged {relax_info['converged']}")
    else:
        relaxed, relax_info = to_ase_atoms(precomputed.unitcell), {}

    # 2. phonons and elastic properties
    if precomputed is None:
        if reference is not None:  # the reference's setting: same supercell and primitive matrix
            sc, prim = reference.phonon.supercell_matrix, reference.phonon.primitive_matrix
        else:
            sc, prim = supercell_matrix(structure, pcfg["supercell_min_length"]), "auto"
        phonon, phonon_tasks = displacement_tasks(relaxed, sc, distance=pcfg["displacement"], primitive_matrix=prim,
                                                  perfect=perfect)
    else:
        phonon, phonon_tasks = precomputed, []
    elastic_tasks = elastic.properties_tasks(relaxed, fmax=pcfg["relax_fmax"]) if ecfg["elastic"] else []
    answers = yield phonon_tasks + elastic_tasks
    calculations["properties"] = len(phonon_tasks) + len(elastic_tasks)
    if phonon_tasks:
        displacement_result(phonon, answers[: len(phonon_tasks)])
        log(f"phonopy: {len(phonon_tasks)} supercell(s) of {len(phonon_tasks[0])} atoms")
    elastic_props = {}
    if elastic_tasks:
        elastic_props = elastic.properties_result(relaxed, answers[len(phonon_tasks):],
                                                  temperature=pcfg["temperature"])
        log(f"elastic: B_EOS {elastic_props['bulk_modulus_eos']:.1f} GPa, G_VRH "
            f"{elastic_props['shear_modulus_vrh']:.1f} GPa, kappa_Slack {elastic_props['kappa_slack']:.2f} W/m/K "
            f"({len(elastic_tasks)} cells: EOS scan and strained cells)")

    # 3. imaginary modes
    plan = imaginary_plan(phonon, ecfg["imaginary"], threshold=pcfg["imaginary_threshold"],
                          given=reference.modes if reference is not None else None)
    answers = yield plan.tasks
    calculations["modes"] = len(plan.tasks)
    imaginary = imaginary_result(plan, answers, log=log)
    return Properties(relaxed=relaxed, phonon=phonon, relax=relax_info, elastic=elastic_props,
                      imaginary=imaginary, calculations=calculations)


def _plain(atoms: Atoms) -> Atoms:
    """An answered task as a bare structure (no labels, no task keys)."""
    return Atoms(atoms.get_chemical_symbols(), cell=atoms.cell[:], positions=atoms.get_positions(), pbc=True)


def run_in_process(steps: Generator, calc, *, log: Callable[[str], None] = print) -> Properties:
    """Drive :func:`property_steps` with an ASE calculator in this process."""
    try:
        tasks = next(steps)
        for name in STEPS:
            log(f"{name}: {len(tasks)} calculation(s)")
            tasks = steps.send(run_tasks(tasks, calc, log=log, what=name))
    except StopIteration as done:
        return done.value
    raise RuntimeError("property_steps asked for more steps than phononft.properties.STEPS")


def replay(steps: Generator, answers: Sequence[Sequence[Atoms]]) -> tuple[list[Atoms] | None, Properties | None]:
    """Feed the answers of the first ``len(answers)`` steps to the generator: returns the tasks of the next step
    (``None`` when the computation is complete) and, when complete, the :class:`Properties`."""
    try:
        tasks = next(steps)
        for given in answers:
            if len(given) != len(tasks):
                raise ValueError(f"{len(tasks)} tasks but {len(given)} answers: the plan changed since the jobs ran")
            tasks = steps.send(list(given))
    except StopIteration as done:
        return None, done.value
    return tasks, None


def band_data(phonon, reference_phonon, *, npoints: int = 101, symprec: float = DEFAULT_SYMPREC) -> dict:
    """Frequencies (THz) of ``phonon`` on the reference's seekpath path, segment by segment."""
    prim = reference_phonon.primitive
    cell = (np.array(prim.cell), np.array(prim.scaled_positions), np.array(prim.numbers))
    std = spglib.standardize_cell(cell, to_primitive=False, no_idealize=True, symprec=symprec)
    path = seekpath.get_path(std, True, "hpkot", 1e-5, symprec, 5)
    segments = qpoints.band_qpoints(reference_phonon, npoints=npoints, symprec=symprec)
    rec = np.linalg.inv(np.array(prim.cell)).T  # reciprocal lattice (rows), 1/Å without 2π
    distances, freqs, start = [], [], 0.0
    for seg in segments:
        cart = seg @ rec
        d = start + np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(cart, axis=0), axis=1))])
        distances.append(d.tolist())
        freqs.append(qpoints.frequencies_at(phonon, seg).tolist())
        start = float(d[-1])
    labels = [list(p) for p in path["path"]]
    return {"distances": distances, "frequencies": freqs, "labels": labels,
            "unit": "THz", "distance_unit": "1/Å", "npoints": npoints}


def thermal_data(phonon, cfg: dict) -> dict:
    curves = thermal.thermal_curves(phonon, t_min=0, t_max=1000, t_step=10, mesh=cfg["phonons"]["mesh"])
    return {k: np.asarray(v).tolist() for k, v in curves.items()}


def write_properties(props: Properties, band_reference: Phonopy, cfg: dict, out_dir: str | Path) -> None:
    """``relaxed.extxyz``, ``phonopy.yaml`` (forces inside), ``bands.json``, ``thermal.json``, ``surface.json``
    and ``modes.json`` of one computation into ``out_dir``."""
    out_dir = Path(out_dir)
    write_extxyz(out_dir / "relaxed.extxyz", [props.relaxed])
    save_phonopy(props.phonon, out_dir / "phonopy.yaml")
    write_json(out_dir / "bands.json", band_data(props.phonon, band_reference, npoints=cfg["phonons"]["band_points"]))
    write_json(out_dir / "thermal.json", thermal_data(props.phonon, cfg))
    write_json(out_dir / "surface.json", props.imaginary["surface_file"])
    write_json(out_dir / "modes.json", props.imaginary["modes"])


def flat_metrics(props: Properties) -> dict:
    """The numbers of a computation that go into metrics.json (elastic, imaginary modes, relaxation)."""
    out = {k: v for k, v in props.elastic.items() if np.isscalar(v) or v is None}
    out["cij"] = props.elastic.get("C")
    out.update(props.imaginary["metrics"])
    out["relax_converged"] = props.relax.get("converged")
    out["property_calculations"] = sum(props.calculations.values())
    return out


__all__ = ["STEPS", "Reference", "Properties", "property_steps", "run_in_process", "replay", "band_data",
           "thermal_data", "write_properties", "flat_metrics"]
