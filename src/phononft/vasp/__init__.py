"""VASP labeller: input sets, running VASP in a job directory, vasprun.xml parsing, the workflow's jobs.

* :mod:`.inputs`: INCAR (``DEFAULT_INCAR``), KPOINTS, POSCAR, POTCAR resolution and writing;
* :mod:`.parse`: ``vasprun.xml`` -> labelled ASE atoms (label conventions documented there);
* :mod:`.run`: :func:`run_vasp` of a ``kind`` (``KINDS``: static, relax_ions, relax_cell, relax_free;
  retries, timeout, reuse of a finished job directory, :class:`VaspError`) and :func:`relax_twice`;
* :mod:`.jobs`: one structure per job directory (:func:`label_one`, :func:`label_batch`), gathered
  afterwards (:func:`gather_labelled`).

All public names are re-exported here: ``from phononft.vasp import run_vasp, VaspError, ...``.
"""

from .inputs import (
    DEFAULT_INCAR,
    INPUT_FILES,
    KIND_INCAR,
    KINDS,
    format_incar,
    grouped_order,
    kind_incar,
    kpoint_divisions,
    resolve_potcars,
    write_inputs,
)
from .jobs import batch_indices, gather_labelled, label_batch, label_one
from .parse import VaspError, initial_structure, parse_vasprun
from .run import MATCH_TOL, relax_twice, run_vasp

__all__ = [
    "DEFAULT_INCAR",
    "INPUT_FILES",
    "KINDS",
    "KIND_INCAR",
    "MATCH_TOL",
    "VaspError",
    "batch_indices",
    "format_incar",
    "gather_labelled",
    "grouped_order",
    "initial_structure",
    "kind_incar",
    "kpoint_divisions",
    "label_batch",
    "label_one",
    "parse_vasprun",
    "relax_twice",
    "resolve_potcars",
    "run_vasp",
    "write_inputs",
]
