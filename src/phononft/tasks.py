"""Calculations the property code asks for ("tasks"), and how a calculator in this process answers them.

The reference and every model go through the same property code; only *how* energies and forces are
obtained differs.  So each property is split into a PLAN (which structures to compute, and how) and a
RESULT (the numbers, from the labelled structures handed back in the same order).  A task is an ASE
``Atoms`` with ``info["task"]`` set to one of:

==============  ===================================================================================
``static``      energy, forces and stress of the structure as it is
``relax_ions``  positions relaxed at fixed cell, no symmetry constraint (strained cells of the elastic
                tensor: the *relaxed-ion* constants)
``relax_cell``  cell and positions relaxed with the symmetry kept (the reference's relaxation)
``relax_free``  cell and positions relaxed without any constraint (relaxation along imaginary modes into
                a new phase)
==============  ===================================================================================

and, for relaxations, ``info["task_fmax"]`` (eV/Å).  The answer to a task is the *final* structure
(relaxed cell and positions) labelled with ``REF_energy`` / ``REF_forces`` / ``REF_stress``
(:func:`phononft.io.set_labels`) and, for relaxations, ``info["relax_converged"]`` and
``info["relax_steps"]``.

An ASE calculator (a MACE model, the mock labeller) answers here, in the job, with :func:`run_tasks`;
VASP answers in cluster jobs (``phononft.vasp``): the workflow writes the tasks, the jobs label them, and the
RESULT step reads them back.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import time

import numpy as np
from ase import Atoms
from ase.constraints import FixSymmetry
from ase.filters import FrechetCellFilter
from ase.optimize import BFGS
from threadpoolctl import threadpool_limits

from .io import set_labels

KINDS = ("static", "relax_ions", "relax_cell", "relax_free")
RELAXATIONS = {  # kind: (relax the cell, keep the symmetry)
    "relax_ions": (False, False),
    "relax_cell": (True, True),
    "relax_free": (True, False),
}


def relax(atoms: Atoms, calc, *, fmax: float = 1e-4, max_steps: int = 1000, keep_symmetry: bool = True,
          relax_cell: bool = True, symprec: float = 1e-3, log: Callable[[str], None] = print) -> tuple[Atoms, dict]:
    """Relax positions and cell (symmetry kept with ASE's FixSymmetry); return (relaxed, info).

    ``fmax`` is the force criterion in eV/Å (the cell filter turns stresses into generalised forces).
    """
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


def task(atoms: Atoms, kind: str, *, fmax: float | None = None, **info) -> Atoms:
    """A copy of ``atoms`` (no calculator, no constraint) marked as a task of ``kind``; extra ``info`` keys
    (e.g. which strain or mode it belongs to) travel with it and come back with the answer."""
    if kind not in KINDS:
        raise ValueError(f"task kind must be one of {KINDS}, not {kind!r}")
    if kind != "static" and not fmax:
        raise ValueError(f"a {kind} task needs its force criterion fmax (eV/Å)")
    out = Atoms(atoms.get_chemical_symbols(), cell=atoms.cell[:], positions=atoms.get_positions(), pbc=True)
    out.info.update({k: v for k, v in atoms.info.items() if not k.startswith("REF_")})
    out.info.update(info)
    out.info["task"] = kind
    if kind != "static":
        out.info["task_fmax"] = float(fmax)
    return out


def run_task(atoms: Atoms, calc, *, max_steps: int = 2000, symprec: float = 1e-3) -> Atoms:
    """Answer one task with an ASE calculator in this process (relaxations: BFGS, :func:`relax`)."""
    kind = atoms.info.get("task", "static")
    info = dict(atoms.info)
    if kind == "static":
        final = atoms.copy()
        final.calc = calc
        extra: dict = {}
    else:
        relax_cell, keep_symmetry = RELAXATIONS[kind]
        with threadpool_limits(limits=1, user_api="blas"):  # the cell filter's 3x3 expm/logm: threads only cost
            final, rinfo = relax(atoms, calc, fmax=info["task_fmax"], max_steps=info.get("max_steps", max_steps),
                                 keep_symmetry=keep_symmetry, relax_cell=relax_cell, symprec=symprec,
                                 log=lambda _msg: None)
        final.calc = calc
        extra = {"relax_converged": rinfo["converged"], "relax_steps": rinfo["steps"]}
    energy = final.get_potential_energy()
    forces = final.get_forces()
    # stress when the calculator has it (a harmonic model of force constants may not; relaxing a cell needs it)
    stress = final.get_stress(voigt=True) if "stress" in getattr(calc, "implemented_properties", ("stress",)) else None
    out = Atoms(final.get_chemical_symbols(), cell=final.cell[:], positions=final.get_positions(), pbc=True)
    out.info.update(info)
    out.info.update(extra)
    set_labels(out, energy, forces, stress)
    return out


def run_tasks(tasks: Sequence[Atoms], calc, *, log: Callable[[str], None] | None = None,
              what: str = "tasks") -> list[Atoms]:
    """Answer every task with ``calc``, in order."""
    out = []
    for k, atoms in enumerate(tasks, 1):
        out.append(run_task(atoms, calc))
        if log is not None and (k == len(tasks) or k % 50 == 0):
            log(f"{what}: {k}/{len(tasks)} calculations done")
    return out


def labelled_energy(atoms: Atoms) -> float:
    """The energy (eV) of an answered task."""
    return float(atoms.info["REF_energy"])


def labelled_stress(atoms: Atoms) -> np.ndarray:
    """The stress (6-Voigt, eV/Å^3, ASE sign) of an answered task."""
    return np.asarray(atoms.info["REF_stress"], dtype=float).reshape(6)
