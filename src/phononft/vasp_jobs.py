"""The workflow's VASP jobs: one structure per job directory, gathered afterwards.

* :func:`label_one` labels one structure in its job directory with :func:`phononft.vasp.run_vasp`
  (a finished run there is reused; a failure raises :class:`phononft.vasp.VaspError` naming the directory)
  and writes it as a one-structure extxyz;
* :func:`gather_labelled` puts the per-structure results of one split back together, in series order,
  checking that each belongs to the structure it claims to label.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Sequence

import numpy as np
from ase import Atoms

from .io import write_extxyz
from .vasp import MATCH_TOL, VaspError, run_vasp


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


def _same_structure(a: Atoms, b: Atoms, tol: float = MATCH_TOL) -> bool:
    if a.get_chemical_symbols() != b.get_chemical_symbols():
        return False
    if np.abs(np.asarray(a.cell) - np.asarray(b.cell)).max() > tol:
        return False
    d = b.get_scaled_positions(wrap=False) - a.get_scaled_positions(wrap=False)
    d -= np.round(d)
    return float(np.linalg.norm(d @ np.asarray(a.cell), axis=1).max()) <= tol


def gather_labelled(images: Sequence[Atoms], labelled: Sequence[Atoms], *, what: str = "split") -> list[Atoms]:
    """The labelled structures in the order of ``images`` (the rattled split), each checked against it."""
    if len(images) != len(labelled):
        raise ValueError(f"{what}: {len(images)} rattled structures but {len(labelled)} VASP results")
    for i, (a, b) in enumerate(zip(images, labelled)):
        if not _same_structure(a, b):
            raise ValueError(f"{what}: VASP result {i} belongs to another structure than rattled structure {i} "
                             "(stale job output? delete it and rerun)")
        if "REF_energy" not in b.info or "REF_forces" not in b.arrays:
            raise ValueError(f"{what}: VASP result {i} carries no labels")
    return list(labelled)
