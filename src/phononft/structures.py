"""Structures stage: load a material and standardise it with spglib.

A material is given in the config by exactly one of

* ``bulk``: keyword arguments of :func:`ase.build.bulk` (``name``, ``crystalstructure``, ``a``, ...);
* ``atoms``: an explicit cell (``cell``, 3x3 in Å), ``symbols`` and ``scaled_positions``;
* ``file``: a structure file ASE or phonopy reads (CIF, POSCAR, extxyz, ``phonopy.yaml``);
* ``mp_id``: a Materials Project id, from the cache ``resources/mp/<id>.json`` or downloaded with mp-api
  (:mod:`phononft.materials_project`);
* ``reference_phonopy`` alone (a precomputed reference): the unit cell of that phonopy file;
* ``data`` alone (the material's own labelled structures): their first structure (:mod:`phononft.dataset`).

The stage writes the *conventional standardised* cell (spglib) -- phonopy then finds the primitive cell
itself (``primitive_matrix="auto"``) -- plus a JSON summary (space group, crystal system, atoms per
primitive cell) that the dataset figures read.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import spglib
from ase import Atoms

from .dataset import DataError, first_structure
from .materials_project import DEFAULT_CACHE, load_mp_structure

CRYSTAL_SYSTEMS = [
    (2, "triclinic"), (15, "monoclinic"), (74, "orthorhombic"), (142, "tetragonal"),
    (167, "trigonal"), (194, "hexagonal"), (230, "cubic"),
]


class StructureError(ValueError):
    """A material's structure cannot be read or makes no sense."""


def crystal_system(number: int) -> str:
    for upper, name in CRYSTAL_SYSTEMS:
        if number <= upper:
            return name
    raise ValueError(f"invalid space group number {number}")


def read_structure_file(path: str | Path) -> Atoms:
    """Read one structure from CIF/POSCAR/extxyz/... (ASE) or a ``phonopy.yaml`` (its unit cell)."""
    path = Path(path)
    if not path.is_file():
        raise StructureError(f"structure file {path} does not exist")
    try:
        if path.name.endswith(("phonopy.yaml", "phonopy.yml", "phonopy_disp.yaml")):
            import phonopy  # heavy (~0.2 s): this module is imported at DAG build time (checks)

            ph = phonopy.load(path, produce_fc=False, log_level=0)
            cell = ph.unitcell
            return Atoms(cell.symbols, cell=cell.cell, scaled_positions=cell.scaled_positions, pbc=True)
        import ase.io  # heavy (scipy, ~0.4 s): as above

        atoms = ase.io.read(path, index=0)
    except Exception as exc:
        reason = str(exc).strip() or "the file's content is not a structure ASE can read"
        raise StructureError(f"cannot read structure file {path}: {type(exc).__name__}: {reason}") from exc
    if len(atoms) == 0 or atoms.cell.rank != 3:
        raise StructureError(f"structure file {path} holds no periodic 3-D crystal")
    atoms.pbc = True
    return atoms


STRUCTURE_KINDS = ("bulk", "atoms", "file", "mp_id")


def build_structure(spec: dict, base_dir: str | Path = ".", *, mp_cache: str | Path | None = None,
                    name: str | None = None, log=print) -> Atoms:
    """Build the raw structure of one material from its config entry.

    ``mp_cache``: folder of cached Materials Project structures (default ``<base_dir>/resources/mp``).
    """
    kinds = [k for k in STRUCTURE_KINDS if k in spec]
    if not kinds and "reference_phonopy" in spec:
        kinds = ["reference_phonopy"]
    if not kinds and "data" in spec:
        try:
            return first_structure(spec["data"])
        except DataError as exc:
            raise StructureError(f"first structure of data: {exc}") from exc
    if len(kinds) != 1:
        raise StructureError(f"give exactly one of bulk/atoms/file/mp_id (or reference_phonopy alone), "
                             f"got {kinds or 'none'}")
    kind = kinds[0]
    if kind == "mp_id":
        cache = Path(mp_cache) if mp_cache is not None else Path(base_dir) / DEFAULT_CACHE
        return load_mp_structure(spec["mp_id"], cache_dir=cache, material=name, log=log)
    if kind == "bulk":
        from ase.build import bulk  # heavy (scipy): this module is imported at DAG build time (checks)

        try:
            return bulk(**spec["bulk"])
        except Exception as exc:
            raise StructureError(f"ase.build.bulk({spec['bulk']}) failed: {exc}") from exc
    if kind == "atoms":
        a = spec["atoms"]
        try:
            return Atoms(a["symbols"], cell=np.asarray(a["cell"], float),
                         scaled_positions=np.asarray(a["scaled_positions"], float), pbc=True)
        except Exception as exc:
            raise StructureError(f"invalid explicit structure: {exc}") from exc
    path = Path(spec[kind])  # file or reference_phonopy
    if not path.is_absolute():
        path = Path(base_dir) / path
    return read_structure_file(path)


def standardize(atoms: Atoms, symprec: float = 1e-3, to_primitive: bool = False) -> Atoms:
    """spglib-standardised conventional (default) or primitive cell."""
    cell = (atoms.cell[:], atoms.get_scaled_positions(), atoms.numbers)
    std = spglib.standardize_cell(cell, to_primitive=to_primitive, symprec=symprec)
    if std is None:
        raise StructureError(f"spglib cannot find the symmetry of {atoms.get_chemical_formula()}")
    lattice, positions, numbers = std
    return Atoms(numbers=numbers, cell=lattice, scaled_positions=positions, pbc=True)


def check_distances(atoms: Atoms, min_distance: float, what: str) -> float:
    """Smallest interatomic distance (with periodic images); raise if below ``min_distance`` Å."""
    from ase.neighborlist import neighbor_list  # heavy (scipy): imported at DAG build time (checks)

    d = neighbor_list("d", atoms, cutoff=max(min_distance, 0.1) * 1.5 + 1.0)
    dmin = float(d.min()) if len(d) else np.inf
    if dmin < min_distance:
        raise StructureError(f"{what}: atoms {dmin:.3f} Å apart, closer than the allowed {min_distance} Å")
    return dmin


def symmetry_info(atoms: Atoms, symprec: float = 1e-3) -> dict:
    """Space group, crystal system and atoms per primitive cell (spglib)."""
    ds = spglib.get_symmetry_dataset((atoms.cell[:], atoms.get_scaled_positions(), atoms.numbers),
                                     symprec=symprec)
    prim = standardize(atoms, symprec, to_primitive=True)
    return {
        "formula": atoms.get_chemical_formula(mode="metal"),
        "reduced_formula": prim.get_chemical_formula(mode="metal", empirical=True),
        "elements": sorted(set(atoms.get_chemical_symbols())),
        "spacegroup_symbol": ds.international,
        "spacegroup_number": int(ds.number),
        "spacegroup": f"{ds.international} ({ds.number})",
        "crystal_system": crystal_system(int(ds.number)),
        "natoms_conventional": len(atoms),
        "natoms_primitive": len(prim),
        "volume_per_atom": float(atoms.get_volume() / len(atoms)),
    }


def prepare_structure(name: str, spec: dict, *, base_dir: str | Path = ".", symprec: float = 1e-3,
                      min_distance: float = 0.5, mp_cache: str | Path | None = None,
                      log=print) -> tuple[Atoms, dict]:
    """Load, check and standardise one material; return (conventional cell, summary)."""
    try:
        raw = build_structure(spec, base_dir, mp_cache=mp_cache, name=name, log=log)
        check_distances(raw, min_distance, "input structure")
        conv = standardize(raw, symprec)
    except StructureError as exc:
        raise StructureError(f"material {name!r}: {exc}") from exc
    info = symmetry_info(conv, symprec)
    info["material"] = name
    info["source"] = next((f"{k}: {spec[k]}" if k in ("file", "mp_id", "reference_phonopy") else k)
                          for k in (*STRUCTURE_KINDS, "reference_phonopy", "data") if k in spec)
    return conv, info


def supercell_matrix(atoms: Atoms, min_length: float) -> np.ndarray:
    """Diagonal supercell of the (conventional) cell whose lattice vectors are all >= ``min_length`` Å."""
    lengths = atoms.cell.lengths()
    return np.diag([max(1, int(np.ceil(min_length / L - 1e-8))) for L in lengths])
