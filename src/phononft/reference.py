"""Reference stage: the reference's properties, through the same property code as every model.

The reference is the labeller: the mock calculator, or DFT with VASP; optionally with precomputed phonons (a
material's ``reference_phonopy``: phonons read, its unit cell kept, every other property computed with the
labeller).  Its computation is :func:`phononft.properties.property_steps` -- relaxation, phonons + EOS +
elastic tensor, imaginary modes -- answered

* in this process by an ASE calculator (:func:`reference_in_process`), or
* by VASP jobs: the workflow replays the computation step by step (:func:`step_tasks` writes the tasks of step
  k from the answers of the steps before it; ``rules/reference.smk`` labels them in jobs of
  ``structures_per_job``, each structure in its own job directory, :func:`answer_tasks`), and
  :func:`reference_from_answers` finishes it.

Either way the same outputs: ``metrics.json``, ``phonopy.yaml`` (forces inside), ``bands.json``, ``thermal.json``,
``surface.json``, ``modes.json``, ``relaxed.extxyz``.  No property is NaN by design; NaN only where a
calculation failed, and the log says which.
"""

from __future__ import annotations

import re
import shutil
import time
from pathlib import Path
from typing import Callable, Sequence

from ase import Atoms

from . import compare, phonon_io
from .io import atomic_path, read_extxyz, write_extxyz, write_json
from .phonons import to_ase_atoms
from .properties import STEPS, Properties, flat_metrics, property_steps, replay, run_in_process, write_properties
from .tasks import run_tasks
from .vasp import VaspError, relax_twice, run_vasp

def has_forces_inside(path: str | Path) -> bool:
    """Whether a phonopy yaml holds the forces (or force constants) itself (as phonon_io.load_phonopy decides)."""
    return re.search(r"^(\s+forces|force_constants):", Path(path).read_text(), re.M) is not None


def load_precomputed(path: str | Path | None, *, log: Callable[[str], None] = print):
    """The precomputed reference phonons of ``path`` (phonopy.yaml with forces inside or a FORCE_SETS beside)."""
    if path is None:
        return None
    phonon = phonon_io.load_phonopy(path)
    n_disp = len(phonon.dataset.get("first_atoms", [])) if phonon.dataset else 0
    log(f"precomputed reference {path}: supercell of {len(phonon.supercell)} atoms, {n_disp} displacements; "
        "its phonons are read, every other property is computed with the labeller")
    return phonon


def reference_steps(structure: Atoms, cfg: dict, *, precomputed=None, log: Callable[[str], None] = print):
    """The reference's computation (:func:`phononft.properties.property_steps`); ``cfg``:
    :func:`phononft.config.reference_settings`."""
    return property_steps(structure, cfg, precomputed=precomputed, perfect=cfg["subtract_residual_forces"], log=log)


def write_reference(props: Properties, cfg: dict, out_dir: str | Path, *, precomputed_path: str | Path | None = None,
                    extra: dict | None = None, log: Callable[[str], None] = print) -> dict:
    """The reference's outputs and metrics.json: its own phonon numbers (the benchmark columns of the reference
    side), elastic/EOS/Slack properties, imaginary modes, surface and phases."""
    out_dir = Path(out_dir)
    pcfg = cfg["phonons"]
    write_properties(props, props.phonon, cfg, out_dir)
    if precomputed_path is not None and has_forces_inside(precomputed_path):
        with atomic_path(out_dir / "phonopy.yaml", suffix=".yaml") as tmp:  # the file as published
            shutil.copyfile(precomputed_path, tmp)
    own = compare.phonon_metrics(props.phonon, props.phonon, mesh=pcfg["mesh"], temperature=pcfg["temperature"],
                                 npoints=pcfg["band_points"], imaginary_threshold=pcfg["imaginary_threshold"])
    metrics = {k.removeprefix("benchmark_"): v for k, v in own.items() if k.startswith("benchmark_")}
    metrics["imaginary_threshold"] = pcfg["imaginary_threshold"]
    metrics.update(flat_metrics(props))
    n_disp = len(props.phonon.dataset.get("first_atoms", [])) if props.phonon.dataset else 0
    metrics["reference_calculations"] = n_disp
    metrics.update(extra or {})
    write_json(out_dir / "metrics.json", metrics)
    log(f"reference: min {metrics['min_frequency']:.3f} THz, max {metrics['max_frequency']:.3f} THz, "
        f"{metrics['property_calculations']} calculations")
    return metrics


def reference_in_process(structure: Atoms, calc, cfg: dict, out_dir: str | Path, *,
                         precomputed_path: str | Path | None = None, log: Callable[[str], None] = print) -> dict:
    """The reference computed with an ASE calculator (the mock labeller) in this process."""
    t0 = time.perf_counter()
    precomputed = load_precomputed(precomputed_path, log=log)
    props = run_in_process(reference_steps(structure, cfg, precomputed=precomputed, log=log), calc, log=log)
    source = f"precomputed: {precomputed_path}" if precomputed_path else "calculator"
    return write_reference(props, cfg, out_dir, precomputed_path=precomputed_path, log=log,
                           extra={"reference_source": source, "eval_seconds": time.perf_counter() - t0})


# --------------------------------------------------------------------------------------------------
# The computation answered by VASP jobs, step by step
# --------------------------------------------------------------------------------------------------
def _answers(files_per_step: Sequence[Sequence[str | Path]]) -> list[list[Atoms]]:
    return [[a for f in files for a in read_extxyz(f)] for files in files_per_step]


def step_tasks(structure: Atoms, cfg: dict, step: int, answer_files: Sequence[Sequence[str | Path]], *,
               precomputed_path: str | Path | None = None) -> list[Atoms]:
    """The tasks of step ``step`` (0 = relax, 1 = properties, 2 = modes), replaying the computation with the
    answers of the steps before it (``answer_files[k]``: the answer files of step k, in task order)."""
    if len(answer_files) != step:
        raise ValueError(f"step {step} ({STEPS[step]}) needs the answers of {step} earlier step(s)")
    steps = reference_steps(structure, cfg, precomputed=load_precomputed(precomputed_path, log=_quiet), log=_quiet)
    tasks, _ = replay(steps, _answers(answer_files))
    return tasks or []


def write_step_tasks(tasks: Sequence[Atoms], tasks_file: str | Path, count_file: str | Path) -> None:
    write_extxyz(tasks_file, list(tasks))
    kinds = sorted({a.info["task"] for a in tasks})
    write_json(count_file, {"n_tasks": len(tasks), "kinds": kinds})


def answer_tasks(tasks: Sequence[Atoms], indices: Sequence[int], step_dir: str | Path, output: str | Path, *,
                 command: str, settings: dict, phonon_gamma_only: bool = True,
                 log: Callable[[str], None] = print) -> list[Atoms]:
    """Answer tasks ``indices`` with VASP, each in its own job directory ``step_dir/<index>/`` (reused when
    finished), and write them in order to ``output``: static single points, fixed-cell (``relax_ions``) and
    free (``relax_free``) relaxations, and the reference relaxation (``relax_cell``) done twice, as the
    benchmark did.  Phonon supercells get Gamma-only k-points when ``phonon_gamma_only``.  Every task is
    tried; the failed ones are named together at the end, and ``output`` is then not written."""
    answers, failed = [], []
    for i in indices:
        atoms = tasks[i]
        kind, fmax = atoms.info["task"], atoms.info.get("task_fmax")
        jobdir = Path(step_dir) / str(i)
        kw = dict(settings, command=command, log=log,
                  gamma_only=phonon_gamma_only and "displacement" in atoms.info)
        if kind != "static" and atoms.info.get("max_steps"):  # the same step limit as in process (NSW)
            kw["incar"] = {**settings["incar"], "NSW": int(atoms.info["max_steps"])}
        try:
            if kind == "relax_cell":
                done = relax_twice(atoms, jobdir, fmax=fmax, **kw)
            else:
                done = run_vasp(atoms, jobdir, kind=kind, fmax=fmax, **kw)
        except VaspError as err:
            log(str(err))
            failed.append(str(err))
            continue
        answer = done.copy()
        answer.info = {**{k: v for k, v in done.info.items() if k.startswith(("REF_", "vasp_"))},
                       **atoms.info}
        if kind != "static":
            answer.info["relax_converged"] = bool(done.info.get("vasp_relax_converged", True))
            answer.info["relax_steps"] = int(done.info.get("vasp_ionic_steps", 0))
        answers.append(answer)
    if failed:
        raise VaspError(None, f"{len(failed)} of {len(indices)} VASP runs of this job failed: " + " | ".join(failed))
    write_extxyz(output, answers)
    return answers


def reference_from_answers(structure: Atoms, cfg: dict, answer_files: Sequence[Sequence[str | Path]],
                           out_dir: str | Path, *, precomputed_path: str | Path | None = None,
                           log: Callable[[str], None] = print) -> dict:
    """The reference's outputs from the VASP answers of every step."""
    t0 = time.perf_counter()
    precomputed = load_precomputed(precomputed_path, log=log)
    steps = reference_steps(structure, cfg, precomputed=precomputed, log=log)
    tasks, props = replay(steps, _answers(answer_files))
    if props is None:
        raise ValueError(f"the reference's computation is not finished: step {len(answer_files)} still has "
                         f"{len(tasks)} tasks")
    source = f"precomputed: {precomputed_path}" if precomputed_path else "vasp"
    return write_reference(props, cfg, out_dir, precomputed_path=precomputed_path, log=log,
                           extra={"reference_source": source, "eval_seconds": time.perf_counter() - t0})


def relaxed_structure(structure: Atoms, cfg: dict, *, calc=None, answer_files: Sequence[str | Path] = (),
                      precomputed_path: str | Path | None = None) -> Atoms:
    """The reference's relaxed unit cell (step 0), from which rattled structures and models start: relaxed with
    ``calc`` in this process, read from VASP's answer, or the precomputed reference's unit cell."""
    precomputed = load_precomputed(precomputed_path, log=_quiet)
    steps = reference_steps(structure, cfg, precomputed=precomputed, log=_quiet)
    tasks = next(steps)
    if not tasks:
        answers = []
    elif calc is not None:
        answers = run_tasks(tasks, calc)
    else:
        answers = [a for f in answer_files for a in read_extxyz(f)]
    relaxed = answers[0] if answers else None  # step 0's answer (the steps after it are not planned here)
    if relaxed is None:
        return to_ase_atoms(precomputed.unitcell)
    return Atoms(relaxed.get_chemical_symbols(), cell=relaxed.cell[:], positions=relaxed.get_positions(), pbc=True)


def _quiet(_msg: str) -> None:
    pass
