"""The workflow's VASP jobs: one structure per job directory, gathered afterwards.

* :func:`label_one` labels one structure in its job directory with :func:`phononft.vasp.run_vasp`
  (a finished run there is reused; a failure raises :class:`phononft.vasp.VaspError` naming the directory)
  and writes it as a one-structure extxyz;
* :func:`label_batch` labels the structures of one Snakemake job (``structures_per_job`` of a split), each
  in its own job directory, trying every one before reporting the failed directories;
* :func:`gather_labelled` puts the per-structure results of one split back together, in series order,
  checking that each belongs to the structure it claims to label.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Sequence

from ase import Atoms

from ..io import write_extxyz
from .run import VaspError, _structure_mismatch, run_vasp


def label_one(atoms: Atoms, output: str | Path, *, command: str, settings: dict,
              gamma_only: bool = False, log: Callable[[str], object] = print) -> Atoms:
    """Label ``atoms`` with VASP in ``output``'s folder (the job directory); write ``output`` atomically."""
    jobdir = Path(output).parent
    try:
        labelled = run_vasp(atoms, jobdir, command=command, gamma_only=gamma_only, log=log, **settings)
    except VaspError as err:
        log(str(err))
        raise
    write_extxyz(output, [labelled])
    return labelled


def batch_indices(batch: int, size: int, n: int) -> range:
    """Series indices labelled by job ``batch`` of a split of ``n`` structures, ``size`` per job."""
    indices = range(batch * size, min((batch + 1) * size, n))
    if not indices:
        raise IndexError(f"job {batch} of {size} structures is past the split's {n} structures")
    return indices


def label_batch(images: Sequence[Atoms], indices: Sequence[int], split_dir: str | Path, output: str | Path, *,
                command: str, settings: dict, log: Callable[[str], object] = print) -> list[Atoms]:
    """Label ``images[i]`` for every ``i`` in ``indices``, each in its job directory ``split_dir/<i>/`` (its
    result kept there as ``labelled.extxyz``, so that a rerun of a partly failed job repeats only the failed
    runs); write them all to ``output``, in series order.  Every structure is tried; a failure of any raises
    one :class:`VaspError` naming each failed directory, and ``output`` is not written."""
    labelled, failed = [], []
    for i in indices:
        if i >= len(images):
            raise IndexError(f"the split holds {len(images)} structures, no index {i}")
        done = Path(split_dir) / str(i) / "labelled.extxyz"
        try:
            labelled.append(label_one(images[i], done, command=command, settings=settings, log=log))
        except VaspError as err:
            failed.append(str(err))
    if failed:
        raise VaspError(None, f"{len(failed)} of {len(indices)} VASP runs of this job failed: " + " | ".join(failed))
    write_extxyz(output, labelled)
    return labelled


def gather_labelled(images: Sequence[Atoms], labelled: Sequence[Atoms], *, what: str = "split") -> list[Atoms]:
    """The labelled structures in the order of ``images`` (the rattled split), each checked against it."""
    if len(images) != len(labelled):
        raise ValueError(f"{what}: {len(images)} rattled structures but {len(labelled)} VASP results")
    for i, (a, b) in enumerate(zip(images, labelled)):
        if _structure_mismatch(a, b) is not None:
            raise ValueError(f"{what}: VASP result {i} belongs to another structure than rattled structure {i} "
                             "(stale job output? delete it and rerun)")
        if "REF_energy" not in b.info or "REF_forces" not in b.arrays:
            raise ValueError(f"{what}: VASP result {i} carries no labels")
    return list(labelled)
