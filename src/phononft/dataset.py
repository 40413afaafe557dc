"""Own data: labelled structures a user already has (e.g. DFT), per material (config ``materials.<m>.data``).

They feed the same splits as the labeller's rattled structures, ``results/<m>/label/{train,valid,test}.extxyz``
(``REF_energy`` eV, ``REF_forces`` eV/Å, ``REF_stress`` 6-Voigt eV/Å^3 with ASE's sign, see
:func:`phononft.io.set_labels`), which the rest of the workflow reads unchanged.

Reading (:func:`read_labelled`):

* ``extxyz``: energy, forces and stress under configurable keys (``info``/``arrays``); ASE's own calculator
  results (``energy=``, ``forces``, ``stress=`` written by ASE, read back as a SinglePointCalculator) are
  found under the names ``energy``, ``forces``, ``stress``.  Stress: 6-Voigt (xx, yy, zz, yz, xz, xy) or 3x3,
  in ``stress_unit`` (eV/Å^3, GPa or kBar) with sign ``stress_sign``: ``ase`` (positive = tensile, ASE's and
  the workflow's convention) or ``vasp`` (positive = compressive, a pressure); converted to eV/Å^3, ASE sign.
* ``vasprun`` / ``outcar``: VASP's files through ASE (``vasp-xml`` / ``vasp-out``): energy(sigma->0) (the
  convention of MPtrj and MACE-MP), forces, stress (ASE converts kBar and the sign), the last ionic step of a
  file or every one (``ionic_steps``).  ASE does not check electronic convergence.

The split (:func:`split_plan`): the *pool* is every structure of ``data.files`` in order (patterns in order,
each pattern's matches sorted by name, structures in file order; one per VASP file with ``ionic_steps: last``).
It is shuffled with ``numpy.random.default_rng(seed)``: with ``valid_test: data`` the first ``n_test``
shuffled structures are the test split, the next ``n_valid`` the valid split and the rest, in shuffled order,
the training series; with ``valid_test: labeller`` valid and test are rattled structures labelled by the
labeller (as without own data) and the whole shuffled pool is the training series.  The training series
keeps its first ``max(budgets)`` structures (budget N trains on its first N: nested); with ``mix: true`` rattled
structures labelled by the labeller follow the user's to fill it up, otherwise a pool too small is an error
before any job.  The split depends only on the number of structures and the seed: the same files give the
same split, and larger budgets never change valid or test.

Parsing is cached (:func:`file_summary`) by path, size, modification time and reading settings, so that
``snakemake -n`` stays fast.
"""

from __future__ import annotations

import glob
import json
from pathlib import Path
from typing import Callable

import numpy as np
from ase import Atoms
from ase.units import GPa

from .io import atomic_path, set_labels

SPLITS = ("train", "valid", "test")
FORMATS = ("extxyz", "vasprun", "outcar")
_ASE_FORMAT = {"extxyz": "extxyz", "vasprun": "vasp-xml", "outcar": "vasp-out"}
#: eV/Å^3 per unit of the stress in a file
STRESS_UNITS = {"eV/Å^3": 1.0, "eV/A^3": 1.0, "GPa": GPa, "kBar": 0.1 * GPa}
#: what reading a file depends on (the cache key besides path, size and mtime)
_READ_KEYS = ("ionic_steps", "energy_key", "forces_key", "stress_key")


class DataError(ValueError):
    """A material's own data cannot be used; the message names the file (and structure) and why."""


# ---- files -------------------------------------------------------------------------------------------------
def expand_files(patterns: list[str]) -> list[Path]:
    """Files of ``data.files``: each pattern's matches sorted by name, patterns in order, duplicates once.
    Raises :class:`DataError` naming a pattern that matches no file."""
    files: dict[Path, None] = {}
    for pattern in patterns:
        matches = sorted(p for p in glob.glob(str(pattern), recursive=True) if Path(p).is_file())
        if not matches:
            raise DataError(f"data.files entry {pattern!r} matches no file")
        files.update(dict.fromkeys(Path(p) for p in matches))
    return list(files)


def file_format(path: str | Path, fmt: str = "auto") -> str:
    """``extxyz``, ``vasprun`` or ``outcar``: ``fmt`` itself, or (``auto``) from the file name."""
    if fmt != "auto":
        return fmt
    name = Path(path).name.lower()
    if name.endswith(".xml") and "vasprun" in name:
        return "vasprun"
    if "outcar" in name:
        return "outcar"
    if name.endswith((".extxyz", ".xyz")):
        return "extxyz"
    raise DataError(f"data file {path}: cannot tell its format from the name (vasprun*.xml, *OUTCAR*, "
                    "*.extxyz, *.xyz); set data.format")


# ---- reading -----------------------------------------------------------------------------------------------
def _take(atoms: Atoms, key: str, where: str):
    """The value of ``key`` in ``atoms.info`` (or ``arrays``), removed there, else ASE's calculator result."""
    store = atoms.info if where == "info" else atoms.arrays
    if key in store:
        return store.pop(key)
    results = getattr(atoms.calc, "results", None) or {}
    return results.get(key)


def _keys_present(atoms: Atoms) -> str:
    calc = sorted(getattr(atoms.calc, "results", None) or {})
    return (f"info keys {sorted(atoms.info) or 'none'}, arrays {sorted(set(atoms.arrays) - {'numbers', 'positions'})}"
            + (f", calculator results {calc}" if calc else ""))


def _labels_from_keys(atoms: Atoms, settings: dict, where: str) -> tuple:
    """(energy eV, forces eV/Å, stress as in the file or None) of an extxyz structure."""
    energy = _take(atoms, settings["energy_key"], "info")
    forces = _take(atoms, settings["forces_key"], "arrays")
    stress = _take(atoms, settings["stress_key"], "info") if settings["stress_key"] else None
    for name, value, key in (("energy", energy, "energy_key"), ("forces", forces, "forces_key"),
                             ("stress", stress, "stress_key")):
        if value is None and (name != "stress" or settings["stress_key"]):
            hint = " (set data.stress_key: null for data without stress)" if name == "stress" else ""
            raise DataError(f"{where}: no {name} under data.{key} {settings[key]!r}{hint}; "
                            f"it has {_keys_present(atoms)}")
    return energy, forces, stress


def _stress_voigt(stress, settings: dict, where: str) -> np.ndarray:
    """6-Voigt (xx, yy, zz, yz, xz, xy) eV/Å^3, ASE sign, of a stress in the file's unit and sign."""
    s = np.asarray(stress, dtype=float)
    if s.size == 9:
        s = s.reshape(3, 3)
        s = s[[0, 1, 2, 1, 0, 0], [0, 1, 2, 2, 2, 1]]
    if s.shape != (6,):
        raise DataError(f"{where}: stress has {s.size} components (6-Voigt or 3x3 expected)")
    sign = -1.0 if settings["stress_sign"] == "vasp" else 1.0
    return sign * STRESS_UNITS[settings["stress_unit"]] * s


def read_labelled(path: str | Path, fmt: str, settings: dict) -> list[Atoms]:
    """The labelled structures of one file: ``REF_energy``, ``REF_forces``, ``REF_stress`` (eV, eV/Å, 6-Voigt
    eV/Å^3, ASE sign; no stress with ``stress_key: null``) and ``info["data_file"]``, ``info["data_index"]``
    (position in the file), ``info["label_source"] = "data"``.  Raises :class:`DataError` naming the file and
    the structure."""
    import ase.io  # heavy (scipy, ~0.4 s): this module is imported at DAG build time

    path = Path(path)
    if not path.is_file():
        raise DataError(f"data file {path} does not exist")
    index = -1 if fmt != "extxyz" and settings["ionic_steps"] == "last" else ":"
    try:
        images = ase.io.read(path, index=index, format=_ASE_FORMAT[fmt])
    except Exception as exc:  # ASE raises many types for bad files
        reason = str(exc).strip() or type(exc).__name__
        raise DataError(f"data file {path} does not parse as {fmt}: {reason}") from None
    images = images if isinstance(images, list) else [images]
    if not images:
        raise DataError(f"data file {path} holds no structure")
    out = []
    for i, atoms in enumerate(images):
        where = f"data file {path}, structure {i}"
        if len(atoms) == 0 or atoms.cell.rank != 3:
            raise DataError(f"{where}: not a periodic 3-D crystal")
        if fmt == "extxyz":
            energy, forces, stress = _labels_from_keys(atoms, settings, where)
            stress = None if stress is None else _stress_voigt(stress, settings, where)
        else:  # ASE has converted VASP's units and sign
            results = getattr(atoms.calc, "results", None) or {}
            energy, forces, stress = results.get("energy"), results.get("forces"), results.get("stress")
            if energy is None or forces is None:
                raise DataError(f"{where}: no energy or forces in this VASP file")
            if settings["stress_key"] and stress is None:
                raise DataError(f"{where}: no stress in this VASP file (ISIF 0?); set data.stress_key: null for "
                                "data without stress")
            if not settings["stress_key"]:
                stress = None
        forces = np.asarray(forces, dtype=float)
        if forces.shape != (len(atoms), 3):
            raise DataError(f"{where}: forces of shape {forces.shape} for {len(atoms)} atoms")
        energy = float(np.asarray(energy, dtype=float).reshape(-1)[0])
        if not (np.isfinite(energy) and np.isfinite(forces).all() and (stress is None or np.isfinite(stress).all())):
            raise DataError(f"{where}: non-finite energy, forces or stress")
        labelled = Atoms(atoms.numbers, positions=atoms.positions, cell=atoms.cell, pbc=True)
        labelled.info.update({k: v for k, v in atoms.info.items() if k not in ("energy", "forces", "stress")})
        set_labels(labelled, energy, forces, stress)
        labelled.info.update(label_source="data", data_file=str(path), data_index=i)
        out.append(labelled)
    return out


# ---- cached summaries (what the checks before any job and the DAG need) ----------------------------------
def file_summary(path: str | Path, fmt: str, settings: dict, cache_dir: str | Path) -> dict:
    """``{"n", "elements", "first_elements", "error"}`` of one file (``error``: None, or why it cannot be
    used), cached under ``cache_dir/data_files.json`` by path, size, mtime and the reading settings."""
    path = Path(path).resolve()
    st = path.stat()
    key = "|".join([str(path), str(st.st_size), str(st.st_mtime_ns), fmt,
                    *(str(settings.get(k)) for k in _READ_KEYS)])
    cache = Path(cache_dir) / "data_files.json"
    try:
        known = json.loads(cache.read_text()) if cache.is_file() else {}
    except ValueError:  # a broken cache is rebuilt
        known = {}
    if key not in known:
        try:
            images = read_labelled(path, fmt, settings)
            known[key] = {"n": len(images), "first_elements": sorted(set(images[0].get_chemical_symbols())),
                          "elements": sorted({s for a in images for s in a.get_chemical_symbols()}), "error": None}
        except DataError as exc:
            known[key] = {"n": 0, "elements": [], "first_elements": [], "error": str(exc)}
        with atomic_path(cache, suffix=".json") as tmp:
            tmp.write_text(json.dumps(known))
    return known[key]


def data_summary(data: dict, cache_dir: str | Path) -> dict:
    """``{"files": [[path, format], ...], "counts", "file_elements" (per file), "n", "elements",
    "first_elements", "errors"}`` of a material's ``data`` block (``errors``: one message per unusable pattern
    or file; such files are left out of the others)."""
    try:
        files = expand_files(data["files"])
    except DataError as exc:
        return {"files": [], "counts": [], "n": 0, "elements": [], "file_elements": [], "first_elements": [],
                "errors": [str(exc)]}
    out = {"files": [], "counts": [], "n": 0, "elements": set(), "file_elements": [], "first_elements": [],
           "errors": []}
    for path in files:
        try:
            fmt = file_format(path, data["format"])
            summary = file_summary(path, fmt, data, cache_dir)
        except DataError as exc:
            out["errors"].append(str(exc))
            continue
        if summary["error"]:
            out["errors"].append(summary["error"])
            continue
        out["files"].append([str(path), fmt])
        out["counts"].append(summary["n"])
        out["file_elements"].append(summary["elements"])
        out["elements"].update(summary["elements"])
        out["first_elements"] = out["first_elements"] or summary["first_elements"]
    out["n"] = sum(out["counts"])
    out["elements"] = sorted(out["elements"])
    return out


# ---- the split ---------------------------------------------------------------------------------------------
def split_sizes(data: dict, rattle: dict) -> tuple[int, int, int]:
    """(n_valid, n_test, seed) of a material's data: its own ``data.n_valid`` / ``n_test`` / ``seed``, else
    ``rattle.n_valid`` / ``n_test`` / ``seed``."""
    return (data.get("n_valid", rattle["n_valid"]), data.get("n_test", rattle["n_test"]),
            data.get("seed", rattle["seed"]))


def split_plan(n_data: int, *, n_train: int, n_valid: int, n_test: int, seed: int, mix: bool = False,
               valid_test: str = "data") -> dict[str, dict]:
    """Per split, ``{"data": [pool indices, in series order], "rattled": number of rattled structures
    labelled by the labeller that follow}`` (see the module's docstring).  Raises :class:`DataError` with the
    numbers when the pool is too small."""
    order = [int(i) for i in np.random.default_rng(seed).permutation(n_data)]
    if valid_test == "data":
        if n_data < n_valid + n_test:
            raise DataError(f"{n_data} structures in data.files, but n_valid {n_valid} + n_test {n_test} are held "
                            "out; add structures, lower data.n_valid / data.n_test or set data.valid_test: labeller")
        plan = {"test": {"data": order[:n_test], "rattled": 0},
                "valid": {"data": order[n_test:n_test + n_valid], "rattled": 0}}
        pool = order[n_test + n_valid:]
    else:
        plan = {"valid": {"data": [], "rattled": n_valid}, "test": {"data": [], "rattled": n_test}}
        pool = order
    if len(pool) < n_train and not mix:
        held = f", {n_valid} valid + {n_test} test held out" if valid_test == "data" else ""
        raise DataError(f"{len(pool)} training structures in data.files ({n_data} structures{held}), budgets need "
                        f"{n_train}; add structures, lower the largest budget or set data.mix: true (rattled "
                        "structures labelled by the labeller then fill the training series)")
    plan["train"] = {"data": pool[:n_train], "rattled": max(0, n_train - len(pool))}
    return {split: plan[split] for split in SPLITS}


def material_plan(data: dict, *, n_train: int, rattle: dict, cache_dir: str | Path) -> dict:
    """What the label rule of a material with own data needs: ``{"files", "settings", "n_data", "splits"}``
    (``splits``: :func:`split_plan`).  Raises :class:`DataError` (every problem of the files, or the split's)."""
    summary = data_summary(data, cache_dir)
    if summary["errors"]:
        raise DataError("; ".join(summary["errors"]))
    n_valid, n_test, seed = split_sizes(data, rattle)
    splits = split_plan(summary["n"], n_train=n_train, n_valid=n_valid, n_test=n_test, seed=seed,
                        mix=data["mix"], valid_test=data["valid_test"])
    settings = {k: data.get(k) for k in (*_READ_KEYS, "stress_unit", "stress_sign")}
    return {"files": summary["files"], "settings": settings, "n_data": summary["n"], "splits": splits}


def split_params(plan: dict, split: str) -> dict:
    """The label rule's ``data`` parameter of one split (what its output depends on besides the files)."""
    return {"files": plan["files"], "settings": plan["settings"], "n_data": plan["n_data"], **plan["splits"][split]}


def read_pool(files: list, settings: dict) -> list[Atoms]:
    """Every labelled structure of ``files`` (``[[path, format], ...]``) in pool order."""
    return [a for path, fmt in files for a in read_labelled(path, fmt, settings)]


def assemble_split(params: dict, split: str, rattled: list[Atoms], log: Callable[[str], None] = print) -> list[Atoms]:
    """A split from :func:`split_params`: the user's structures in series order, then ``rattled`` (labelled
    by the labeller; its first ``params["rattled"]`` are used).  Each gets ``info["split"]`` and
    ``info["series_index"]``."""
    pool = read_pool(params["files"], params["settings"])
    if len(pool) != params["n_data"]:
        raise DataError(f"data.files hold {len(pool)} structures, {params['n_data']} when the workflow started "
                        "(files changed meanwhile?): run again")
    if len(rattled) < params["rattled"]:
        raise DataError(f"{split}: {params['rattled']} rattled structures needed, {len(rattled)} labelled")
    images = [pool[i] for i in params["data"]] + list(rattled[: params["rattled"]])
    for k, atoms in enumerate(images):
        atoms.info.update(split=split, series_index=k)
    log(f"{split}: {len(params['data'])} of the {len(pool)} own structures, then {params['rattled']} rattled "
        "structures labelled by the labeller")
    return images


def first_structure(data: dict) -> Atoms:
    """The material's structure when only ``data`` gives it: the first structure of the data (pool order,
    before the split; with ``ionic_steps: last`` the last ionic step of the first VASP file), unlabelled."""
    path = expand_files(data["files"])[0]
    atoms = read_labelled(path, file_format(path, data["format"]), {**data, "stress_key": None})[0]
    return Atoms(atoms.numbers, positions=atoms.positions, cell=atoms.cell, pbc=True)
