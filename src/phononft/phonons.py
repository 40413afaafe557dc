"""Relaxation and finite-displacement phonons (phonopy) with any ASE calculator.

The same code serves the reference (the labeller itself) and every model, so that differences come from
the potential energy surface alone.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Callable

import numpy as np
from ase import Atoms

from .io import atomic_path


def relax(atoms: Atoms, calc, *, fmax: float = 1e-4, max_steps: int = 1000, keep_symmetry: bool = True,
          relax_cell: bool = True, symprec: float = 1e-3, log: Callable[[str], None] = print) -> tuple[Atoms, dict]:
    """Relax positions and cell (symmetry kept with ASE's FixSymmetry); return (relaxed, info).

    ``fmax`` is the force criterion in eV/Å (the cell filter turns stresses into generalised forces).
    """
    from ase.constraints import FixSymmetry
    from ase.filters import FrechetCellFilter
    from ase.optimize import BFGS

    atoms = atoms.copy()
    atoms.calc = calc
    if keep_symmetry:
        atoms.set_constraint(FixSymmetry(atoms, symprec=symprec))
    target = FrechetCellFilter(atoms) if relax_cell else atoms
    opt = BFGS(target, logfile=None)
    t0 = time.perf_counter()
    converged = bool(opt.run(fmax=fmax, steps=max_steps))
    relaxed = atoms.copy()
    relaxed.set_constraint()
    relaxed.calc = None
    info = {"converged": converged, "steps": int(opt.nsteps), "seconds": time.perf_counter() - t0,
            "energy_per_atom": float(atoms.get_potential_energy() / len(atoms)),
            "max_force": float(np.abs(atoms.get_forces()).max()),
            "volume_per_atom": float(relaxed.get_volume() / len(relaxed))}
    log(f"relaxed in {info['steps']} steps (converged={converged}): V/atom={info['volume_per_atom']:.4f} Å^3")
    return relaxed, info


def to_phonopy_atoms(atoms: Atoms):
    from phonopy.structure.atoms import PhonopyAtoms

    return PhonopyAtoms(symbols=atoms.get_chemical_symbols(), cell=atoms.cell[:],
                        scaled_positions=atoms.get_scaled_positions())


def to_ase_atoms(cell) -> Atoms:
    return Atoms(cell.symbols, cell=cell.cell, scaled_positions=cell.scaled_positions, pbc=True)


def finite_displacement_phonons(unitcell: Atoms, calc, supercell_matrix, *, distance: float = 0.01,
                                symprec: float = 1e-5, primitive_matrix="auto",
                                log: Callable[[str], None] = print):
    """phonopy finite displacements (``distance`` Å); forces from ``calc``; force constants produced.

    Returns ``(phonon, n_calculations)``.  ``primitive_matrix="auto"`` (default) lets phonopy find the
    primitive cell of the (conventional) unit cell; a 3x3 matrix (phonopy's convention: primitive
    lattice vectors as columns = unit-cell lattice vectors as columns @ matrix) imposes another one,
    e.g. a reference's, so that fractional q-points mean the same physical points
    (:func:`phononft.compare.phonon_like`).
    """
    import warnings

    from phonopy import Phonopy
    from phonopy.structure.cells import PrimitiveMatrixAutoDefaultWarning

    pmat = primitive_matrix if isinstance(primitive_matrix, str) else np.asarray(primitive_matrix, dtype=float)
    with warnings.catch_warnings():  # "auto" is our explicit choice, not phonopy's default
        warnings.simplefilter("ignore", PrimitiveMatrixAutoDefaultWarning)
        phonon = Phonopy(to_phonopy_atoms(unitcell), supercell_matrix=np.asarray(supercell_matrix),
                         primitive_matrix=pmat, symprec=symprec)
    phonon.generate_displacements(distance=distance)
    supercells = phonon.supercells_with_displacements
    forces = []
    for i, sc in enumerate(supercells):
        atoms = to_ase_atoms(sc)
        atoms.calc = calc
        f = atoms.get_forces()
        forces.append(f - f.mean(axis=0))  # remove the drift (net force) as phonopy users do
    phonon.forces = np.array(forces)
    phonon.produce_force_constants()
    log(f"phonopy: {len(supercells)} displaced supercell(s) of {len(supercells[0])} atoms")
    return phonon, len(supercells)


def save_phonopy(phonon, path: str | Path) -> None:
    """Write a ``phonopy.yaml`` with the displacements *and forces* inside (atomically)."""
    with atomic_path(path, suffix=".yaml") as tmp:
        phonon.save(filename=str(tmp), settings={"force_sets": True, "displacements": True,
                                                  "force_constants": False})
