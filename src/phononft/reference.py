"""Reference phonons without a calculator: precomputed (a DFT ``phonopy.yaml``) or labelled by VASP jobs.

The evaluate stage computes the reference with the labeller itself when that is an ASE calculator
(:func:`phononft.evaluate.evaluate_reference`).  Two other sources write the *same* outputs
(``metrics.json``, ``phonopy.yaml`` with forces inside, ``bands.json``, ``thermal.json``,
``surface.json``, ``modes.json``, ``relaxed.extxyz``):

* **precomputed** (``reference_phonopy:`` of a material): an existing phonopy.yaml with forces inside or
  a FORCE_SETS beside it (:func:`phononft.compare.load_phonopy`), e.g. the benchmark's VASP-PBE phonons;
* **VASP** (``labeller: {type: vasp}`` without ``reference_phonopy``): the material's structure is taken
  as relaxed (it is *not* re-relaxed with VASP), phonopy's displaced supercells are written by
  :func:`write_displacements` and labelled as one VASP job each (plus, optionally, the undisplaced
  supercell, whose residual forces are subtracted from every displaced one, which removes the first-order
  effect of a structure relaxed with other settings), then :func:`phonon_from_vasp_forces` builds the
  force constants.

What needs a calculator is not computed here and says so: the elastic/EOS/Slack properties are NaN, and
for a reference *with* imaginary modes the energy surface along them and the relaxation (final space
group, new phase) are NaN/None.  The imaginary modes themselves come from the force constants, so
``modes.json`` is complete and models are still probed along the reference's modes.  A reference without
imaginary modes has nothing to probe: its surface is empty and ``new_phase`` is False, exactly as the
calculator path reports it.
"""

from __future__ import annotations

import re
import shutil
import time
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
from ase import Atoms

from . import compare
from .io import atomic_path, read_extxyz, write_extxyz, write_json

#: Metrics that need a calculator (evaluate.properties_beyond_phonons); NaN for a calculator-free reference.
ELASTIC_KEYS = (
    "bulk_modulus_eos", "v0_per_atom", "bprime", "bulk_modulus_vrh", "shear_modulus_vrh", "youngs_modulus",
    "poisson_ratio", "debye_temperature", "debye_temperature_acoustic", "kappa_slack", "gruneisen_slack",
    "mechanically_stable", "cij_min_eigenvalue",
)
SURFACE_KEYS = ("surface_min_meV_per_atom", "energy_gain_meV_per_atom", "final_volume_change")
RELAXATION_LABELS = ("start_spacegroup", "final_spacegroup_1e-3", "final_spacegroup_1e-1", "relax_converged")


def _quiet(_msg: str) -> None:
    pass


def has_forces_inside(path: str | Path) -> bool:
    """Whether a phonopy yaml holds the forces (or force constants) itself (as compare.load_phonopy decides)."""
    return re.search(r"^(\s+forces|force_constants):", Path(path).read_text(), re.M) is not None


def copy_reference_yaml(source: str | Path, phonon, dest: str | Path) -> None:
    """``dest``: the source yaml verbatim when its forces are inside, else phonopy.yaml with the forces added."""
    source = Path(source)
    if has_forces_inside(source):
        with atomic_path(dest, suffix=".yaml") as tmp:
            shutil.copyfile(source, tmp)
    else:
        from .phonons import save_phonopy

        save_phonopy(phonon, dest)


def calculator_free_properties(phonon, cfg: dict, out_dir: Path, *, reason: str,
                               log: Callable[[str], None] = print) -> dict:
    """Imaginary-mode detection (no calculator needed); NaN for what needs one; writes surface/modes.json."""
    from .modes import energy_surface, find_imaginary_modes

    threshold = cfg["phonons"]["imaginary_threshold"]
    icfg = cfg["evaluate"]["imaginary"]
    amax, n = icfg["amplitude_max"], icfg["grid_points"]
    modes = find_imaginary_modes(phonon, threshold=threshold)
    nan = float("nan")
    out: dict = {k: nan for k in ELASTIC_KEYS}
    out["cij"] = None
    out.update({
        "imaginary_commensurate": bool(modes),
        "n_imaginary_modes": len(modes),
        "min_imaginary_frequency": modes[0]["frequency"] if modes else nan,
        "imaginary_q": modes[0]["q"] if modes else None,
        "imaginary_threshold": float(threshold),
        "surface_modes_source": "own" if modes else "none",
        "surface_min_amplitudes": [],
    })
    out.update({k: nan for k in SURFACE_KEYS})
    out.update({k: None for k in RELAXATION_LABELS})
    if modes:
        # the surface and the relaxation along the modes need energies of distorted cells: unknown
        out["new_phase"] = out["new_phase_strict"] = None
        surface = {"amplitudes": [], "n_modes": 0, "energies_meV_per_atom": [], "not_computed": reason}
    else:  # nothing to probe: same answer as the calculator path
        out["new_phase"] = out["new_phase_strict"] = False
        surface = energy_surface(phonon, None, [], amplitudes=np.linspace(-amax, amax, n))
    write_json(out_dir / "surface.json", {"surface": surface, "relaxation": None,
                                          "modes_source": out["surface_modes_source"]})
    write_json(out_dir / "modes.json", modes)
    log(f"{len(modes)} imaginary mode(s) at commensurate q" + (f", most imaginary {modes[0]['frequency']:.3f} THz"
                                                              if modes else ""))
    log(f"not computed ({reason}): elastic/EOS/Slack properties (NaN)"
        + ("; energy surface and relaxation along the imaginary modes (NaN/None)" if modes else ""))
    return out


def write_reference_outputs(phonon, cfg: dict, out_dir: str | Path, *, reason: str, extra: dict | None = None,
                            log: Callable[[str], None] = print) -> dict:
    """bands.json, thermal.json, surface.json, modes.json, relaxed.extxyz and metrics.json of a reference phonon.

    ``phonopy.yaml`` is written by the caller.  Returns the metrics.
    """
    from .evaluate import band_data, thermal_data
    from .phonons import to_ase_atoms

    out_dir = Path(out_dir)
    pcfg = cfg["phonons"]
    write_extxyz(out_dir / "relaxed.extxyz", [to_ase_atoms(phonon.unitcell)])
    write_json(out_dir / "bands.json", band_data(phonon, phonon, npoints=pcfg["band_points"]))
    write_json(out_dir / "thermal.json", thermal_data(phonon, cfg))
    self_metrics = compare.phonon_metrics(phonon, phonon, mesh=pcfg["mesh"], temperature=pcfg["temperature"],
                                          imaginary_threshold=pcfg["imaginary_threshold"])
    metrics = {k.removeprefix("benchmark_"): v for k, v in self_metrics.items() if k.startswith("benchmark_")}
    metrics.update(calculator_free_properties(phonon, cfg, out_dir, reason=reason, log=log))
    metrics.update(extra or {})
    write_json(out_dir / "metrics.json", metrics)
    return metrics


def precomputed_reference(path: str | Path, cfg: dict, out_dir: str | Path, *,
                          log: Callable[[str], None] = print) -> dict:
    """The reference outputs from an existing phonopy.yaml (+ FORCE_SETS); no phonons are recomputed."""
    t0 = time.perf_counter()
    path = Path(path)
    out_dir = Path(out_dir)
    phonon = compare.load_phonopy(path)
    force_sets = None if has_forces_inside(path) else compare.find_force_sets(path)
    n_disp = len(phonon.dataset.get("first_atoms", [])) if phonon.dataset else 0
    log(f"precomputed reference {path}" + (f" with {force_sets}" if force_sets else "")
        + f": supercell of {len(phonon.supercell)} atoms, {n_disp} displacements; not recomputed")
    out_dir.mkdir(parents=True, exist_ok=True)
    copy_reference_yaml(path, phonon, out_dir / "phonopy.yaml")
    extra = {"reference_source": f"precomputed: {path}", "reference_calculations": n_disp,
             "relax_converged": None, "eval_seconds": time.perf_counter() - t0}
    return write_reference_outputs(phonon, cfg, out_dir, reason="precomputed reference, no calculator",
                                   extra=extra, log=log)


# --------------------------------------------------------------------------------------------------
# VASP-labelled reference
# --------------------------------------------------------------------------------------------------


def write_displacements(structure: Atoms, cfg: dict, disp_yaml: str | Path, count_json: str | Path, *,
                        log: Callable[[str], None] = print):
    """phonopy displacements of ``structure`` (taken as relaxed) -> ``phonopy_disp.yaml`` + ``{"n": ...}``.

    Same supercell rule and displacement as the calculator path (``phonons.supercell_min_length``,
    ``phonons.displacement``, ``primitive_matrix="auto"``).
    """
    from phonopy import Phonopy

    from .phonons import to_phonopy_atoms
    from .structures import supercell_matrix

    pcfg = cfg["phonons"]
    sc = supercell_matrix(structure, pcfg["supercell_min_length"])
    phonon = Phonopy(to_phonopy_atoms(structure), supercell_matrix=sc, primitive_matrix="auto", symprec=1e-5)
    phonon.generate_displacements(distance=pcfg["displacement"])
    n = len(phonon.supercells_with_displacements)
    with atomic_path(disp_yaml, suffix=".yaml") as tmp:
        phonon.save(filename=str(tmp), settings={"displacements": True, "force_sets": False,
                                                  "force_constants": False})
    write_json(count_json, {"n_displacements": n, "supercell_matrix": sc.tolist(),
                            "n_atoms_supercell": len(phonon.supercell)})
    log(f"phonopy: {n} displaced supercell(s) of {len(phonon.supercell)} atoms (supercell {np.diag(sc).tolist()})")
    return phonon


def load_displacements(disp_yaml: str | Path):
    import phonopy

    return phonopy.load(str(disp_yaml), produce_fc=False, log_level=0)


def displaced_supercell(disp_yaml: str | Path, index: int) -> Atoms:
    """Supercell ``index`` of a phonopy_disp.yaml: 0 = undisplaced, k >= 1 = phonopy's k-th displacement."""
    from .phonons import to_ase_atoms

    phonon = load_displacements(disp_yaml)
    cells = phonon.supercells_with_displacements
    if index == 0:
        atoms = to_ase_atoms(phonon.supercell)
    elif 1 <= index <= len(cells):
        atoms = to_ase_atoms(cells[index - 1])
    else:
        raise IndexError(f"{disp_yaml}: no displacement {index} (1..{len(cells)})")
    atoms.info["displacement_index"] = int(index)
    return atoms


def phonon_from_vasp_forces(disp_yaml: str | Path, labelled: Sequence[str | Path], *,
                            perfect: str | Path | None = None, log: Callable[[str], None] = print):
    """Force constants from the labelled displaced supercells (in phonopy's order), optionally minus the
    forces of the undisplaced supercell ``perfect``."""
    from .io import get_labels

    phonon = load_displacements(disp_yaml)
    n = len(phonon.supercells_with_displacements)
    if len(labelled) != n:
        raise ValueError(f"{disp_yaml}: {n} displacements but {len(labelled)} labelled supercells")
    forces = np.array([get_labels(read_extxyz(f)[0])[1] for f in labelled])
    if perfect is not None:
        residual = get_labels(read_extxyz(perfect)[0])[1]
        log(f"subtracting the undisplaced supercell's residual forces (max {np.abs(residual).max():.2e} eV/Å)")
        forces = forces - residual[None]
    forces = forces - forces.mean(axis=1, keepdims=True)  # net force (drift), as the calculator path
    phonon.forces = forces
    phonon.produce_force_constants()
    return phonon


def vasp_reference(disp_yaml: str | Path, labelled: Sequence[str | Path], cfg: dict, out_dir: str | Path, *,
                   perfect: str | Path | None = None, log: Callable[[str], None] = print) -> dict:
    """The reference outputs from VASP-labelled displaced supercells."""
    t0 = time.perf_counter()
    out_dir = Path(out_dir)
    phonon = phonon_from_vasp_forces(disp_yaml, labelled, perfect=perfect, log=log)
    from .phonons import save_phonopy

    save_phonopy(phonon, out_dir / "phonopy.yaml")
    extra = {"reference_source": "vasp", "reference_calculations": len(labelled) + (perfect is not None),
             "relax_converged": None, "eval_seconds": time.perf_counter() - t0}
    log("the structure was taken as relaxed (no VASP relaxation); relax_converged is None")
    return write_reference_outputs(phonon, cfg, out_dir, reason="VASP labeller, no ASE calculator",
                                   extra=extra, log=log)
