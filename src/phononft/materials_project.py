"""Materials Project structures by id, with a local cache that makes them work offline.

``load_mp_structure("mp-149")`` returns the structure of a Materials Project entry as ASE atoms:

1. from the cache file ``<cache_dir>/<id>.json`` (pymatgen ``Structure.as_dict()``; default cache
   ``resources/mp`` under the working directory) when it exists -- nothing else is needed then;
2. else with `mp-api <https://github.com/materialsproject/api>`_ (``MPRester.get_structure_by_material_id``)
   and the API key from ``MP_API_KEY`` (or ``api_key=``), writing the cache file for next time.

Without a cache file, mp-api or a key, :class:`MPStructureError` says which of them is missing and how
to provide it (``phononft`` never needs the network once the cache is filled; the cache files can be
committed or copied between machines).
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
from pathlib import Path

from ase import Atoms

from .io import atomic_path

#: Default cache folder, relative to the working directory of the workflow.
DEFAULT_CACHE = Path("resources") / "mp"
MP_ID = re.compile(r"^(mp|mvc)-\d+$")


class MPStructureError(RuntimeError):
    """A Materials Project structure is neither cached nor downloadable."""


def cache_file(mp_id: str, cache_dir: str | Path = DEFAULT_CACHE) -> Path:
    return Path(cache_dir) / f"{mp_id}.json"


def _to_atoms(structure) -> Atoms:
    from pymatgen.io.ase import AseAtomsAdaptor  # heavy (pymatgen, ~1 s): imported at DAG build time (checks)

    atoms = AseAtomsAdaptor.get_atoms(structure)
    atoms.calc = None
    # site properties (magmom, ...) would travel as arrays; the workflow only needs the crystal
    return Atoms(atoms.get_chemical_symbols(), cell=atoms.cell[:], scaled_positions=atoms.get_scaled_positions(),
                 pbc=True)


def read_cached(path: str | Path) -> Atoms:
    """Atoms from a cache file (pymatgen ``Structure.as_dict()`` JSON)."""
    from pymatgen.core import Structure  # heavy (pymatgen): imported at DAG build time (checks)

    path = Path(path)
    try:
        data = json.loads(path.read_text())
        structure = Structure.from_dict(data)
    except Exception as exc:  # noqa: BLE001 - malformed JSON or dict
        raise MPStructureError(f"{path}: not a pymatgen Structure JSON ({type(exc).__name__}: {exc})") from exc
    return _to_atoms(structure)


def write_cache(structure, path: str | Path) -> None:
    """Write a pymatgen Structure as ``as_dict()`` JSON, atomically."""
    with atomic_path(path, suffix=".json") as tmp:
        tmp.write_text(json.dumps(structure.as_dict(), indent=1) + "\n")


def download_structure(mp_id: str, api_key: str):
    """The pymatgen Structure of ``mp_id`` from the Materials Project API (needs mp-api and internet)."""
    from mp_api.client import MPRester  # optional dependency (mp-api), only to download

    with MPRester(api_key) as mpr:
        return mpr.get_structure_by_material_id(mp_id)


def _mp_api_available() -> bool:
    try:
        return importlib.util.find_spec("mp_api") is not None
    except (ImportError, ValueError):
        return False


def load_mp_structure(mp_id: str, *, cache_dir: str | Path = DEFAULT_CACHE, api_key: str | None = None,
                      material: str | None = None, log=print) -> Atoms:
    """ASE atoms of a Materials Project entry, from the cache or downloaded (and cached); see the module doc."""
    what = f"material {material!r} (Materials Project {mp_id})" if material else f"Materials Project {mp_id}"
    if not MP_ID.match(mp_id):
        raise MPStructureError(f"{what}: {mp_id!r} is not a Materials Project id (mp-<number>)")
    path = cache_file(mp_id, cache_dir)
    if path.is_file():
        log(f"{mp_id}: structure from the cache {path}")
        return read_cached(path)
    api_key = api_key or os.environ.get("MP_API_KEY")
    missing = []
    if not _mp_api_available():
        missing.append("the mp-api package is not installed (pip install mp-api)")
    if not api_key:
        missing.append("no API key (set MP_API_KEY; https://next-gen.materialsproject.org/api)")
    if missing:
        raise MPStructureError(
            f"{what}: no cached structure {path} and cannot download it: {'; '.join(missing)}. "
            f"Either provide both, or put the structure (pymatgen Structure.as_dict() JSON) at {path}, "
            "or give the material as file: instead."
        )
    try:
        structure = download_structure(mp_id, api_key)
    except Exception as exc:  # noqa: BLE001 - network, authentication, unknown id
        raise MPStructureError(f"{what}: download with mp-api failed ({type(exc).__name__}: {exc})") from exc
    write_cache(structure, path)
    log(f"{mp_id}: downloaded {structure.composition.reduced_formula}, cached in {path}")
    return _to_atoms(structure)
