"""Finite-displacement phonons (phonopy): the displaced supercells to compute, and the force constants from them.

The same code serves the reference (the labeller itself) and every model, so that differences come from
the potential energy surface alone.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Callable

import numpy as np
from ase import Atoms
from phonopy import Phonopy
from phonopy.structure.atoms import PhonopyAtoms
from phonopy.structure.cells import PrimitiveMatrixAutoDefaultWarning

from .io import atomic_path, get_labels
from .tasks import run_tasks, task


def to_phonopy_atoms(atoms: Atoms):
    return PhonopyAtoms(symbols=atoms.get_chemical_symbols(), cell=atoms.cell[:],
                        scaled_positions=atoms.get_scaled_positions())


def to_ase_atoms(cell) -> Atoms:
    return Atoms(cell.symbols, cell=cell.cell, scaled_positions=cell.scaled_positions, pbc=True)


def displacement_tasks(unitcell: Atoms, supercell_matrix, *, distance: float = 0.01, primitive_matrix="auto",
                       symprec: float = 1e-5, perfect: bool = False):
    """PLAN of finite-displacement phonons: ``(phonon, tasks)``, the Phonopy object with phonopy's displacements
    (``distance`` Å) and one static task per displaced supercell (``info["displacement"]`` = 1..n), plus the
    undisplaced supercell (index 0) first when ``perfect`` (its residual forces are then subtracted).
    ``primitive_matrix="auto"`` lets phonopy find the primitive cell of the (conventional) unit cell; give
    the reference's (phonopy's convention: primitive lattice vectors as columns = unit-cell lattice vectors as
    columns @ matrix) to build a model's phonons in the reference's setting (:func:`phononft.compare.phonon_like`),
    so that fractional q-points mean the same physical points."""
    pmat = primitive_matrix if isinstance(primitive_matrix, str) else np.asarray(primitive_matrix, dtype=float)
    with warnings.catch_warnings():  # "auto" is our explicit choice, not phonopy's default
        warnings.simplefilter("ignore", PrimitiveMatrixAutoDefaultWarning)
        phonon = Phonopy(to_phonopy_atoms(unitcell), supercell_matrix=np.asarray(supercell_matrix),
                         primitive_matrix=pmat, symprec=symprec)
    phonon.generate_displacements(distance=distance)
    cells = ([(0, phonon.supercell)] if perfect else []) + list(enumerate(phonon.supercells_with_displacements, 1))
    return phonon, [task(to_ase_atoms(sc), "static", displacement=k) for k, sc in cells]


def displacement_result(phonon, labelled) -> object:
    """RESULT of :func:`displacement_tasks`: forces of the displaced supercells (minus the undisplaced one's,
    when it was computed, and minus their drift, the net force, as phonopy users do) -> force constants."""
    by_index = {int(a.info["displacement"]): get_labels(a)[1] for a in labelled}
    n = len(phonon.supercells_with_displacements)
    missing = sorted(set(range(1, n + 1)) - set(by_index))
    if missing:
        raise ValueError(f"forces of displaced supercell(s) {missing} of {n} are missing")
    forces = np.array([by_index[k] for k in range(1, n + 1)])
    if 0 in by_index:
        forces = forces - by_index[0][None]
    phonon.forces = forces - forces.mean(axis=1, keepdims=True)
    phonon.produce_force_constants()
    return phonon


def finite_displacement_phonons(unitcell: Atoms, calc, supercell_matrix, *, distance: float = 0.01,
                                primitive_matrix="auto", symprec: float = 1e-5,
                                log: Callable[[str], None] = print):
    """phonopy finite displacements with forces from ``calc`` in this process; force constants produced.
    Returns ``(phonon, n_calculations)``."""
    phonon, tasks = displacement_tasks(unitcell, supercell_matrix, distance=distance,
                                       primitive_matrix=primitive_matrix, symprec=symprec)
    displacement_result(phonon, run_tasks(tasks, calc))
    log(f"phonopy: {len(tasks)} displaced supercell(s) of {len(tasks[0])} atoms")
    return phonon, len(tasks)


def save_phonopy(phonon, path: str | Path) -> None:
    """Write a ``phonopy.yaml`` with the displacements *and forces* inside (atomically)."""
    with atomic_path(path, suffix=".yaml") as tmp:
        phonon.save(filename=str(tmp), settings={"force_sets": True, "displacements": True,
                                                  "force_constants": False})
