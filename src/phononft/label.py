"""Labelling: energies, forces and stresses of structures from a reference calculator.

Two labellers share one output format (extxyz with ``REF_energy``/``REF_forces``/``REF_stress``):

* ``mock``: any ASE calculator named as ``"module:Class"`` in the config (EMT by default), optionally
  *softened*: ``E_soft(R) = E(R / s)`` -- every distance stretched by ``s`` -- which mimics a systematically
  softer functional (PBE versus PBEsol): lattice constants grow by ``s`` and frequencies drop.
* ``vasp``: one VASP run per structure, see :mod:`phononft.vasp`.
"""

from __future__ import annotations

import importlib
from typing import Any, Callable, Sequence

import numpy as np
from ase import Atoms
from ase.calculators.calculator import Calculator, all_changes

from .io import set_labels
from .vasp.jobs import gather_labelled


class SoftenedCalculator(Calculator):
    """``E(R) = E_base(R / s)``: the base calculator evaluated on a copy shrunk by ``1/s``.

    Forces follow from the chain rule, ``F(R) = F_base(R/s) / s``; the stress, a derivative per volume,
    becomes ``sigma_base(R/s) / s**3``.  ``s > 1`` gives a softer, expanded crystal.
    """

    implemented_properties = ["energy", "free_energy", "forces", "stress"]

    def __init__(self, base: Calculator, scale: float, **kwargs):
        super().__init__(**kwargs)
        if scale <= 0:
            raise ValueError(f"softening scale must be positive, got {scale}")
        self.base = base
        self.scale = float(scale)

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        shrunk = self.atoms.copy()
        shrunk.set_cell(self.atoms.cell / self.scale, scale_atoms=True)
        shrunk.calc = self.base
        energy = shrunk.get_potential_energy()
        self.results = {
            "energy": energy,
            "free_energy": energy,
            "forces": shrunk.get_forces() / self.scale,
        }
        if self.atoms.cell.rank == 3:
            self.results["stress"] = shrunk.get_stress() / self.scale**3


def import_object(spec: str) -> Any:
    """Import ``"package.module:Name"`` (or ``package.module.Name``)."""
    module_name, sep, name = spec.partition(":")
    if not sep:
        module_name, _, name = spec.rpartition(".")
    try:
        module = importlib.import_module(module_name)
        return getattr(module, name)
    except (ImportError, AttributeError, ValueError) as exc:
        raise ValueError(f"cannot import calculator {spec!r}: {exc}") from exc


def make_calculator(spec: str = "ase.calculators.emt:EMT", kwargs: dict | None = None,
                    softening: float = 1.0) -> Calculator:
    """Build an ASE calculator from its import spec; wrap it in :class:`SoftenedCalculator` if ``s != 1``."""
    cls = import_object(spec)
    calc = cls(**(kwargs or {}))
    if softening != 1.0:
        calc = SoftenedCalculator(calc, softening)
    return calc


def calculator_from_config(cfg: dict) -> Calculator:
    """Calculator of a ``mock`` labeller config block (keys ``calculator``, ``kwargs``, ``softening``)."""
    return make_calculator(cfg["calculator"], cfg["kwargs"], cfg["softening"])


def check_elements(calc: Calculator, symbols: Sequence[str], what: str) -> None:
    """Fail early, naming ``what``, if the calculator cannot handle one of the elements.

    Tries each element in a small dimer box; EMT for instance raises for elements it has no parameters for.
    """
    for sym in sorted(set(symbols)):
        probe = Atoms([sym, sym], positions=[[0, 0, 0], [2.5, 0, 0]], cell=[8, 8, 8], pbc=True)
        probe.calc = calc
        try:
            e = probe.get_potential_energy()
        except Exception as exc:
            raise ValueError(f"{what}: the labeller {type(calc).__name__} cannot handle element {sym}: {exc}") from exc
        if not np.isfinite(e):
            raise ValueError(f"{what}: the labeller {type(calc).__name__} gives a non-finite energy for {sym}")


def label_structures(images: Sequence, calc: Calculator, *, source: str = "mock",
                     log: Callable[[str], None] = print) -> list:
    """Return copies of ``images`` carrying energy, forces and stress from ``calc``."""
    labelled = []
    for i, atoms in enumerate(images):
        atoms = atoms.copy()
        atoms.calc = calc
        energy = atoms.get_potential_energy()
        forces = atoms.get_forces()
        stress = atoms.get_stress(voigt=True) if atoms.cell.rank == 3 else None
        if not (np.isfinite(energy) and np.all(np.isfinite(forces))):
            raise ValueError(f"structure {i} ({atoms.get_chemical_formula()}): non-finite label from {source}")
        atoms.calc = None
        set_labels(atoms, energy, forces, stress)
        atoms.info["label_source"] = source
        labelled.append(atoms)
        log(f"labelled {i + 1}/{len(images)} {atoms.get_chemical_formula()}: E={energy:.6f} eV "
            f"max|F|={np.abs(forces).max():.4f} eV/A")
    return labelled


def label_rattled(images: Sequence, cfg: dict, *, vasp_results: Sequence = (), what: str = "split",
                  log: Callable[[str], None] = print) -> list:
    """Labelled rattled structures of a split with the labeller ``cfg`` (``type`` mock or vasp): mock labels
    them with its calculator; vasp gathers ``vasp_results`` (the label_vasp jobs' outputs in job order; a job
    labels ``structures_per_job`` structures, so they may run past ``images``: the rest is not used)."""
    if cfg["type"] == "vasp":
        labelled = gather_labelled(images, list(vasp_results)[: len(images)], what=what)
        log(f"gathered {len(labelled)} VASP-labelled structures")
        return labelled
    calc = calculator_from_config(cfg["mock"])
    check_elements(calc, images[0].get_chemical_symbols(), what)
    return label_structures(images, calc, source=cfg["mock"]["calculator"], log=log)
