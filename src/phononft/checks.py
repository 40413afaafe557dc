"""Checks of a run's inputs before any job starts: what the config and the files it names already tell.

:func:`check_inputs` is called by the workflow when it starts (``rules/common.smk``) and raises one
:class:`phononft.config.ConfigError` listing every culprit by name:

* a material's structure ``file`` that does not exist or does not parse;
* a material's ``reference_phonopy`` that does not exist, whose header (cells, supercell matrix) does not
  parse, or that holds neither forces nor force constants and has no FORCE_SETS beside it;
* a material's own ``data`` (:mod:`phononft.dataset`): a pattern matching no file, a file that does not parse
  or lacks the energy / forces (/ stress) keys, an element that is not the material's, or a split too small
  for the largest budget (named with the numbers).  Parsed files are cached like the foundation's elements;
* an element of a material that a foundation model *file* (``foundation.model``, when it exists) does not
  know.  The elements a MACE file knows are read once with torch and cached by path, size and modification
  time under ``.snakemake/phononft/`` (loading torch and a large model takes seconds).

Everything here is cheap enough to run on every start: the precomputed phonopy files (up to ~50 MB with
forces inside) are read only up to their ``supercell:`` block.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml
from ase.data import atomic_numbers, chemical_symbols

from .config import ConfigError
from .dataset import DataError, data_summary, material_plan
from .io import write_text
from .materials_project import DEFAULT_CACHE, cache_file, read_cached
from .structures import StructureError, read_structure_file

CACHE_DIR = Path(".snakemake") / "phononft"
#: top-level keys of a phonopy.yaml after the cells: the header ends at the first of them
_BODY_KEYS = re.compile(r"^(supercell|displacements|force_constants|phonon_displacements):", re.M)


def phonopy_header(path: str | Path) -> dict:
    """The header of a ``phonopy.yaml`` (everything before its ``supercell:`` block) parsed as YAML, plus
    ``forces_inside`` (the file holds forces or force constants).  Raises ValueError naming the problem."""
    text = Path(path).read_text()
    m = _BODY_KEYS.search(text)
    header = text[: m.start()] if m else text
    try:
        data = yaml.load(header, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except yaml.YAMLError as exc:
        raise ValueError(f"not valid YAML: {exc}") from None
    if not isinstance(data, dict) or not isinstance(data.get("unit_cell"), dict):
        raise ValueError("no unit_cell block (is it a phonopy.yaml?)")
    points = data["unit_cell"].get("points") or []
    symbols = [p.get("symbol") for p in points if isinstance(p, dict)]
    if not symbols or any(s not in atomic_numbers for s in symbols):
        raise ValueError("the unit_cell block lists no (valid) atoms")
    data["symbols"] = symbols
    data["forces_inside"] = re.search(r"^(\s+forces|force_constants):", text, re.M) is not None
    return data


def force_sets_beside(path: str | Path) -> Path | None:
    """The FORCE_SETS file of a phonopy.yaml: ``<name>.FORCE_SETS`` or ``FORCE_SETS`` beside it."""
    path = Path(path)
    for candidate in (path.with_name(path.name.removesuffix(".phonopy.yaml") + ".FORCE_SETS"),
                      path.with_name("FORCE_SETS")):
        if candidate != path and candidate.is_file():
            return candidate
    return None


def _material_elements(name: str, spec: dict, errors: list[str]) -> set[str] | None:
    """Elements of one material from its spec and files; appends a message to ``errors`` for a bad file."""
    if "bulk" in spec:
        from ase.build import bulk  # heavy (scipy, ~0.5 s): this module is imported at DAG build time

        try:
            return set(bulk(**spec["bulk"]).get_chemical_symbols())
        except Exception as exc:  # noqa: BLE001 - reported with the material's name
            errors.append(f"material {name!r}: ase.build.bulk({spec['bulk']}) failed: {type(exc).__name__}: {exc}")
            return None
    if "atoms" in spec:
        return set(spec["atoms"]["symbols"])
    elements = None
    if "file" in spec:
        try:
            elements = set(read_structure_file(spec["file"]).get_chemical_symbols())
        except StructureError as exc:
            errors.append(f"material {name!r}: {exc}")
    if "reference_phonopy" in spec:
        path = Path(spec["reference_phonopy"])
        if not path.is_file():
            errors.append(f"material {name!r}: reference_phonopy {path} does not exist")
            return elements
        try:
            header = phonopy_header(path)
        except (OSError, ValueError) as exc:
            errors.append(f"material {name!r}: reference_phonopy {path} does not parse: {exc}")
            return elements
        if not header["forces_inside"] and force_sets_beside(path) is None:
            errors.append(f"material {name!r}: reference_phonopy {path} holds no forces and no FORCE_SETS "
                          f"lies beside it ({path.name.removesuffix('.phonopy.yaml')}.FORCE_SETS or FORCE_SETS)")
        elements = elements or set(header["symbols"])
    if "mp_id" in spec:
        cached = cache_file(spec["mp_id"], DEFAULT_CACHE)
        if cached.is_file():  # elements known only once the structure is cached
            try:
                elements = set(read_cached(cached).get_chemical_symbols())
            except Exception as exc:  # noqa: BLE001 - a broken cache file is named
                errors.append(f"material {name!r}: cached Materials Project structure {cached} does not parse: "
                              f"{type(exc).__name__}: {exc}")
    return elements


def foundation_elements(model: str | Path, cache_dir: str | Path = CACHE_DIR) -> set[str]:
    """Elements a MACE model file knows (its ``atomic_numbers``), cached by path, size and mtime."""
    model = Path(model).resolve()
    st = model.stat()
    key = f"{model}|{st.st_size}|{st.st_mtime_ns}"
    cache = Path(cache_dir) / "foundation_elements.json"
    known = json.loads(cache.read_text()) if cache.is_file() else {}
    if key not in known:
        from .torch_runtime import load_model  # heavy (torch, mace): this module is imported at DAG build time

        known[key] = sorted(chemical_symbols[int(z)] for z in load_model(model).atomic_numbers)
        write_text(cache, json.dumps(known))
    return set(known[key])


def _data_errors(name: str, spec: dict, config: dict, elements: set[str] | None, cache_dir: str | Path) -> list[str]:
    """Why a material's own data (``data``) cannot be used: patterns, files, keys, elements, split sizes."""
    data = spec["data"]
    errors = []
    if data["valid_test"] == "labeller":
        errors += [f"material {name!r}: data.{k} applies to valid_test: data only (the labeller's valid and test "
                   f"splits have rattle.{k} structures)" for k in ("n_valid", "n_test") if k in data]
    summary = data_summary(data, cache_dir)
    errors += [f"material {name!r}: {e}" for e in summary["errors"]]
    for (path, _), present in zip(summary["files"], summary["file_elements"]):
        foreign = sorted(set(present) - elements) if elements else []
        if foreign:
            errors.append(f"material {name!r}: data file {path} holds element(s) {', '.join(foreign)}, not the "
                          f"material's ({', '.join(sorted(elements))})")
    if not summary["errors"]:
        try:
            material_plan(data, n_train=max(config["budgets"]), rattle=config["rattle"], cache_dir=cache_dir)
        except DataError as exc:
            errors.append(f"material {name!r}: {exc}")
    return errors


def check_inputs(config: dict, *, cache_dir: str | Path = CACHE_DIR) -> None:
    """Raise :class:`ConfigError` naming every material whose input files are missing or broken, and every
    element a foundation model file does not know."""
    errors: list[str] = []
    elements = {name: _material_elements(name, spec, errors) for name, spec in config["materials"].items()}
    for name, spec in config["materials"].items():
        if "data" in spec:
            if not any(k in spec for k in ("bulk", "atoms", "file", "mp_id", "reference_phonopy")):
                # the structure is the first structure of the data (a broken file is named by _data_errors)
                elements[name] = set(data_summary(spec["data"], cache_dir)["first_elements"]) or None
            errors += _data_errors(name, spec, config, elements[name], cache_dir)
    model = config["foundation"]["model"]
    if model and Path(model).is_file():
        try:
            known = foundation_elements(model, cache_dir)
        except Exception as exc:  # noqa: BLE001 - a model file that does not load is an input error too
            errors.append(f"foundation.model {model} does not load as a MACE model: {type(exc).__name__}: {exc}")
        else:
            for name, present in elements.items():
                missing = sorted((present or set()) - known)
                if missing:
                    errors.append(f"material {name!r}: element(s) {', '.join(missing)} unknown to the foundation "
                                  f"model {model} (it knows {len(known)} elements)")
    if errors:
        raise ConfigError("inputs that no job could use:\n  " + "\n  ".join(errors))
