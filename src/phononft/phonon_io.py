"""Phonons from files: a phonopy.yaml with forces (or force constants) inside or a FORCE_SETS beside it, and a
model's phonons built in a reference's setting (:func:`phonon_like`).

Force constants: ``phonopy.load(yaml, symprec=1e-4, is_nac=False)`` followed by a *fresh*
finite-displacement solution from the forces, not symmetrised -- exactly as the published MACE-MP-0b3
phonon benchmark did (:mod:`phononft.compare` says why).
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import phonopy
from phonopy import Phonopy

from .phonons import finite_displacement_phonons, to_ase_atoms

__all__ = ["DEFAULT_SYMPREC", "PhononLoadError", "ensure_force_constants", "find_force_sets", "load_phonopy",
           "phonon_like"]

#: spglib tolerance of the benchmark's band paths and symmetry analyses
DEFAULT_SYMPREC = 1e-4


class PhononLoadError(ValueError):
    """A phonopy file cannot be turned into force constants."""


def find_force_sets(path: str | Path) -> Path | None:
    """FORCE_SETS belonging to a phonopy yaml: ``<stem>.FORCE_SETS`` beside it, else ``FORCE_SETS``.

    ``mp-938.phonopy.yaml`` -> ``mp-938.FORCE_SETS`` (also ``x.yaml`` -> ``x.FORCE_SETS``), then
    ``FORCE_SETS`` in the same folder.  Returns None when neither exists.
    """
    path = Path(path)
    name = path.name
    stems = []
    for suffix in (".phonopy.yaml", ".phonopy.yml", ".yaml", ".yml"):
        if name.endswith(suffix):
            stems.append(name[: -len(suffix)])
    for stem in stems:
        candidate = path.with_name(f"{stem}.FORCE_SETS")
        if stem and candidate.is_file():
            return candidate
    candidate = path.with_name("FORCE_SETS")
    return candidate if candidate.is_file() else None


def _has_forces(phonon: Phonopy) -> bool:
    dataset = phonon.dataset
    if not dataset:
        return False
    if "first_atoms" in dataset:
        return bool(dataset["first_atoms"]) and all("forces" in d for d in dataset["first_atoms"])
    return dataset.get("forces") is not None


def ensure_force_constants(phonon: Phonopy, *, symmetrize_fc: bool = False, name: str = "phonon") -> Phonopy:
    """Make sure ``phonon`` has force constants; compute them from its displacement dataset if needed."""
    if phonon.force_constants is None:
        if not _has_forces(phonon):
            raise PhononLoadError(f"{name}: neither force constants nor forces of displaced supercells")
        phonon.produce_force_constants()
        if symmetrize_fc:
            phonon.symmetrize_force_constants()
    return phonon


def load_phonopy(
    path: str | Path,
    *,
    force_sets: str | Path | None = None,
    symprec: float = DEFAULT_SYMPREC,
    symmetrize_fc: bool = False,
) -> Phonopy:
    """Load a phonopy.yaml (atomate2 style) and produce its force constants.

    Forces come from the yaml itself, else from ``force_sets`` or the FORCE_SETS found by
    :func:`find_force_sets`; force constants stored in the yaml are used as they are.
    ``symprec=1e-4`` and ``symmetrize_fc=False`` reproduce the published benchmark (see module
    docstring).  Non-analytical term correction is off (``is_nac=False``), as in the benchmark.

    Raises :class:`PhononLoadError` (a ``ValueError``) naming the file when it is missing,
    malformed, or has neither forces nor force constants.
    """
    path = Path(path)
    if not path.is_file():
        raise PhononLoadError(f"{path}: no such file")
    if force_sets is None:
        try:
            text = path.read_text()
        except (OSError, UnicodeDecodeError) as exc:
            raise PhononLoadError(f"{path}: cannot read it ({exc})") from exc
        if not re.search(r"^(unit_cell|supercell|primitive_cell):", text, re.M):
            raise PhononLoadError(f"{path}: not a phonopy yaml (no unit_cell/supercell block)")
        if not re.search(r"^(\s+forces|force_constants):", text, re.M):
            force_sets = find_force_sets(path)
            if force_sets is None:
                raise PhononLoadError(
                    f"{path}: no forces or force constants in the yaml and no "
                    f"{path.name.split('.')[0]}.FORCE_SETS or FORCE_SETS beside it"
                )
    kwargs = {}
    if force_sets is not None:
        force_sets = Path(force_sets)
        if not force_sets.is_file():
            raise PhononLoadError(f"{force_sets}: FORCE_SETS file not found (for {path})")
        kwargs["force_sets_filename"] = str(force_sets)
    try:
        phonon = phonopy.load(
            str(path), is_nac=False, symprec=symprec, symmetrize_fc=symmetrize_fc,
            log_level=0, **kwargs,
        )
    except Exception as exc:  # noqa: BLE001 - phonopy raises many types on bad input
        src = f"{path}" + (f" with {force_sets}" if force_sets is not None else "")
        raise PhononLoadError(f"{src}: phonopy could not load it ({type(exc).__name__}: {exc})") from exc
    return ensure_force_constants(phonon, symmetrize_fc=symmetrize_fc, name=str(path))


def phonon_like(reference: Phonopy, unitcell, calc, *, distance: float | None = None,
                symprec: float | None = None, max_strain: float = 0.1, log=lambda _s: None) -> Phonopy:
    """A model's phonons in the reference's setting: its supercell matrix and primitive matrix.

    ``unitcell``: the model's (relaxed) unit cell (ASE Atoms) in the reference's orientation, atoms in
    the reference unit cell's order -- e.g. the reference's cell relaxed with the model, symmetry
    kept.  With the same primitive matrix every fractional q-point (band path, mesh, modes) is the
    same physical point for both, whatever "auto" would choose on the model's cell (mp-603640: a
    model cell that reaches b = c is I-4m2 at symprec 1e-4, and "auto" then picks another body-centred
    primitive cell).  ``distance`` [Å]: the reference's displacement when its dataset has one, else
    0.01; ``symprec``: the reference's.  Raises ``ValueError`` when the cell is not in the reference's
    setting: other species order, a lattice deformation ``|F - 1| > max_strain`` (rotated or
    permuted axes), or atoms more than 1 Å from their reference sites (mapped through the cells).
    """
    ref_cell = to_ase_atoms(reference.unitcell)
    if unitcell.get_chemical_symbols() != ref_cell.get_chemical_symbols():
        raise ValueError("model unit cell: other atoms (or order) than the reference unit cell")
    deform = np.linalg.solve(ref_cell.cell[:], unitcell.cell[:]).T  # cell rows = ref rows @ F^T
    if np.abs(deform - np.eye(3)).max() > max_strain:
        raise ValueError(f"model unit cell is not in the reference's setting (deformation {deform.round(3).tolist()})")
    shift = unitcell.get_scaled_positions() - ref_cell.get_scaled_positions()
    shift -= np.rint(shift)
    if np.linalg.norm(shift @ unitcell.cell[:], axis=1).max() > 1.0:
        raise ValueError("model unit cell: atoms are not at the reference unit cell's sites (other order?)")
    if distance is None:
        first = (reference.dataset or {}).get("first_atoms") or []
        distance = float(np.linalg.norm(first[0]["displacement"])) if first else 0.01
    phonon, _ = finite_displacement_phonons(
        unitcell, calc, np.asarray(reference.supercell_matrix), distance=distance,
        symprec=reference.symmetry.tolerance if symprec is None else symprec,
        primitive_matrix=np.asarray(reference.primitive_matrix), log=log)
    return phonon
