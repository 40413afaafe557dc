"""Small I/O helpers: atomic writes, JSON, labelled extxyz.

Every result file of the workflow goes through :func:`atomic_path` so that a killed job never leaves a
half-written file behind: the content is written to a temporary file in the target's folder and moved
into place with :func:`os.replace` (atomic on POSIX file systems).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np

#: Keys under which reference labels are stored in extxyz files (MACE's defaults).
ENERGY_KEY = "REF_energy"
FORCES_KEY = "REF_forces"
STRESS_KEY = "REF_stress"


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; move it onto ``path`` only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    suffix = path.suffix if suffix is None else suffix
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=f".tmp{suffix}", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def link_or_copy(src: str | os.PathLike, dst: str | os.PathLike) -> None:
    """Put ``src`` at ``dst`` atomically: a hard link (no extra disk) where the file system allows, else a copy."""
    with atomic_path(dst) as tmp:
        tmp.unlink()
        try:
            os.link(src, tmp)
        except OSError:  # another file system, or links not allowed
            shutil.copyfile(src, tmp)


def copy_atomic(src: str | os.PathLike, dst: str | os.PathLike) -> Path:
    """Copy the file ``src`` to ``dst`` atomically (a copy, never a link: :func:`link_or_copy` links); returns
    ``dst``."""
    with atomic_path(dst) as tmp:
        shutil.copyfile(src, tmp)
    return Path(dst)


def write_text(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def _to_jsonable(obj: Any) -> Any:
    """Plain JSON types (numpy scalars and arrays converted); NaN and infinities become null."""
    if isinstance(obj, dict):
        return {str(k): _to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_to_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return _to_jsonable(obj.tolist())
    if isinstance(obj, (np.floating,)):
        return _to_jsonable(float(obj))
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (np.bool_,)):
        return bool(obj)
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, float) and not np.isfinite(obj):
        return None  # strict JSON (jq, JavaScript): NaN and infinities become null
    return obj


def write_json(path: str | os.PathLike, data: Any) -> None:
    """Write ``data`` as indented JSON, atomically (numpy types converted)."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(_to_jsonable(data), indent=2, allow_nan=True) + "\n")


def read_json(path: str | os.PathLike) -> Any:
    return json.loads(Path(path).read_text())


def write_extxyz(path: str | os.PathLike, images: Sequence) -> None:
    """Write structures to extxyz atomically (labels stay in ``info``/``arrays``)."""
    import ase.io  # heavy (ase.io pulls in scipy, ~0.4 s): io is imported by the Snakefile at DAG build time

    with atomic_path(path, suffix=".extxyz") as tmp:
        ase.io.write(tmp, list(images), format="extxyz")


def read_extxyz(path: str | os.PathLike, index: str | int = ":") -> list:
    import ase.io  # heavy (scipy): io is imported by the Snakefile at DAG build time

    path = Path(path)
    try:
        images = ase.io.read(path, index=index, format="extxyz")
    except Exception as exc:  # ase raises many types for bad files
        raise ValueError(f"cannot read structures from {path}: {exc}") from exc
    return images if isinstance(images, list) else [images]


def set_labels(atoms, energy: float, forces: np.ndarray, stress: np.ndarray | None) -> None:
    """Store reference labels in ``atoms`` under the MACE keys (eV, eV/Å, eV/Å^3 Voigt, ASE sign)."""
    atoms.info[ENERGY_KEY] = float(energy)
    atoms.arrays[FORCES_KEY] = np.asarray(forces, dtype=float).reshape(len(atoms), 3)
    if stress is not None:
        stress = np.asarray(stress, dtype=float)
        if stress.shape == (3, 3):
            stress = stress[[0, 1, 2, 1, 0, 0], [0, 1, 2, 2, 2, 1]]
        atoms.info[STRESS_KEY] = stress.reshape(6)


def get_labels(atoms) -> tuple[float, np.ndarray, np.ndarray | None]:
    """Return (energy, forces, stress-or-None) stored by :func:`set_labels`."""
    try:
        energy = float(atoms.info[ENERGY_KEY])
        forces = np.asarray(atoms.arrays[FORCES_KEY], dtype=float)
    except KeyError as exc:
        raise KeyError(f"structure has no reference label {exc}; was it labelled?") from exc
    stress = atoms.info.get(STRESS_KEY)
    return energy, forces, None if stress is None else np.asarray(stress, dtype=float).reshape(6)
