"""Evaluate stage: the reference and every model through the same property code.

For one calculator (the reference labeller, or a MACE model through ``MACECalculator``):

1. relax cell and positions with the symmetry kept;
2. phonopy finite displacements -> ``phonopy.yaml`` (forces inside), band structure on the *reference's*
   seekpath path (``bands.json``), thermal properties 0-1000 K (``thermal.json``);
3. for a model: the benchmark metrics against the reference (:func:`phononft.compare.phonon_metrics`)
   and energy/force/stress errors on the held-out test split.

Everything lands in one folder per model; ``metrics.json`` is the flat dict the aggregate stage reads.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Callable

import numpy as np
from ase import Atoms

from . import compare
from .io import get_labels, read_extxyz, write_extxyz, write_json
from .phonons import finite_displacement_phonons, save_phonopy
from .tasks import relax
from .logs import cpu_seconds
from .structures import supercell_matrix


def mace_calculator(model: str | Path, *, device: str = "cpu", dtype: str = "float64"):
    from mace.calculators import MACECalculator

    from .mace_train import resolve_device

    return MACECalculator(model_paths=str(model), device=resolve_device(device), default_dtype=dtype)


def band_data(phonon, reference_phonon, *, npoints: int = 101, symprec: float = compare.DEFAULT_SYMPREC) -> dict:
    """Frequencies (THz) of ``phonon`` on the reference's seekpath path, segment by segment."""
    import seekpath
    import spglib

    prim = reference_phonon.primitive
    cell = (np.array(prim.cell), np.array(prim.scaled_positions), np.array(prim.numbers))
    std = spglib.standardize_cell(cell, to_primitive=False, no_idealize=True, symprec=symprec)
    path = seekpath.get_path(std, True, "hpkot", 1e-5, symprec, 5)
    segments = compare.band_qpoints(reference_phonon, npoints=npoints, symprec=symprec)
    rec = np.linalg.inv(np.array(prim.cell)).T  # reciprocal lattice (rows), 1/Å without 2π
    distances, freqs, start = [], [], 0.0
    for seg in segments:
        cart = seg @ rec
        d = start + np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(cart, axis=0), axis=1))])
        distances.append(d.tolist())
        freqs.append(compare.frequencies_at(phonon, seg).tolist())
        start = float(d[-1])
    labels = [list(p) for p in path["path"]]
    return {"distances": distances, "frequencies": freqs, "labels": labels,
            "unit": "THz", "distance_unit": "1/Å", "npoints": npoints}


def run_phonons(structure: Atoms, calc, cfg: dict, out_dir: Path, *, log: Callable[[str], None] = print):
    """Relax + finite-displacement phonons; write ``relaxed.extxyz``, ``phonopy.yaml``; return (phonon, info)."""
    pcfg = cfg["phonons"]
    t0 = time.perf_counter()
    relaxed, rinfo = relax(structure, calc, fmax=pcfg["relax_fmax"], max_steps=pcfg["relax_steps"], log=log)
    # the supercell follows the *input* cell, so the reference and every model use the same one
    sc = supercell_matrix(structure, pcfg["supercell_min_length"])
    phonon, ncalc = finite_displacement_phonons(relaxed, calc, sc, distance=pcfg["displacement"], log=log)
    write_extxyz(out_dir / "relaxed.extxyz", [relaxed])
    save_phonopy(phonon, out_dir / "phonopy.yaml")
    info = {"relax": rinfo, "supercell_matrix": sc.tolist(), "displacement_calculations": ncalc,
            "phonon_seconds": time.perf_counter() - t0}
    return relaxed, phonon, info


def thermal_data(phonon, cfg: dict) -> dict:
    curves = compare.thermal_curves(phonon, t_min=0, t_max=1000, t_step=10, mesh=cfg["phonons"]["mesh"])
    return {k: np.asarray(v).tolist() for k, v in curves.items()}


def split_errors(calc, test_file: Path) -> dict:
    """MAE of energy (meV/atom), forces (meV/Å) and stress (GPa) on labelled structures."""
    from ase.units import GPa

    de, df, ds = [], [], []
    for atoms in read_extxyz(test_file):
        e_ref, f_ref, s_ref = get_labels(atoms)
        a = atoms.copy()
        a.calc = calc
        de.append(abs(a.get_potential_energy() - e_ref) / len(a))
        df.append(np.abs(a.get_forces() - f_ref).ravel())
        if s_ref is not None:
            ds.append(np.abs(a.get_stress(voigt=True) - s_ref))
    out = {"energy_mae": 1000 * float(np.mean(de)), "force_mae": 1000 * float(np.mean(np.concatenate(df))),
           "n_test": len(de)}
    out["stress_mae"] = float(np.mean(np.concatenate(ds))) / GPa if ds else float("nan")
    return out


def properties_beyond_phonons(structure: Atoms, relaxed: Atoms, calc, cfg: dict, out_dir: Path, *,
                              reference_modes: list | None = None,
                              log: Callable[[str], None] = print) -> dict:
    """Elastic/EOS/Slack properties and the imaginary-mode analysis; writes surface.json and modes.json.

    ``reference_modes``: the reference's imaginary modes; a model is probed along them (same grid, same
    protocol), or along its own when the reference has none (a spurious instability is then visible).
    The modes are those at q-points commensurate with a small supercell (``evaluate.imaginary.
    supercell_min_length``, default 5 Å: 2x2x2 for bcc metals, which holds the N point): phonopy's
    frequencies are exact at commensurate q, and the energy surface and the relaxations along the modes
    then run on a small cell.
    """
    from .elastic import elastic_properties
    from .modes import analyse_imaginary

    ecfg = cfg["evaluate"]
    out: dict = {}
    if ecfg["elastic"]:
        t0 = time.perf_counter()
        props = elastic_properties(relaxed, calc, temperature=cfg["phonons"]["temperature"])
        out.update({k: v for k, v in props.items() if np.isscalar(v) or v is None})
        out["cij"] = props.get("C")
        log(f"elastic: B_EOS {props['bulk_modulus_eos']:.1f} GPa, G_VRH {props['shear_modulus_vrh']:.1f} GPa, "
            f"kappa_Slack {props['kappa_slack']:.2f} W/m/K ({time.perf_counter() - t0:.1f} s)")
    icfg = ecfg["imaginary"]
    amax, n = icfg["amplitude_max"], icfg["grid_points"]
    t0 = time.perf_counter()
    small = supercell_matrix(structure, icfg["supercell_min_length"])
    phonon, _ = finite_displacement_phonons(relaxed, calc, small, distance=cfg["phonons"]["displacement"],
                                            log=lambda s: None)
    analysis = analyse_imaginary(phonon, calc, modes=reference_modes or None,
                                 threshold=cfg["phonons"]["imaginary_threshold"],
                                 amplitudes=np.linspace(-amax, amax, n),
                                 relax_amplitude=icfg["relax_amplitude"], fmax=icfg["fmax"],
                                 relax=icfg["relax"])
    write_json(out_dir / "surface.json", {"surface": analysis["surface"], "relaxation": analysis["relaxation"],
                                          "modes_source": analysis["surface_modes_source"]})
    write_json(out_dir / "modes.json", analysis["modes"])
    for key, value in analysis.items():
        if key in ("surface", "modes", "relaxation"):
            continue
        out["imaginary_commensurate" if key == "has_imaginary" else key] = value
    if analysis["modes"] or reference_modes:
        log(f"imaginary modes: {analysis['n_imaginary_modes']} own, probed {analysis['surface_modes_source']}; "
            f"relaxation ends in {analysis['final_spacegroup_1e-1']} (new phase: {analysis['new_phase']}) "
            f"({time.perf_counter() - t0:.1f} s)")
    return out


def evaluate_reference(structure: Atoms, calc, cfg: dict, out_dir: Path, *,
                       log: Callable[[str], None] = print) -> dict:
    """Reference phonons with the labeller itself; writes phonopy.yaml, bands.json, thermal.json,
    surface.json, modes.json and metrics.json."""
    out_dir = Path(out_dir)
    t0 = time.perf_counter()
    relaxed, phonon, info = run_phonons(structure, calc, cfg, out_dir, log=log)
    write_json(out_dir / "bands.json", band_data(phonon, phonon, npoints=cfg["phonons"]["band_points"]))
    write_json(out_dir / "thermal.json", thermal_data(phonon, cfg))
    self_metrics = compare.phonon_metrics(phonon, phonon, mesh=cfg["phonons"]["mesh"],
                                          temperature=cfg["phonons"]["temperature"],
                                          imaginary_threshold=cfg["phonons"]["imaginary_threshold"])
    metrics = {k: v for k, v in self_metrics.items() if k.startswith("benchmark_")}
    metrics = {k.removeprefix("benchmark_"): v for k, v in metrics.items()}
    metrics.update(properties_beyond_phonons(structure, relaxed, calc, cfg, out_dir, log=log))
    metrics.update(reference_calculations=info["displacement_calculations"],
                   eval_seconds=time.perf_counter() - t0, relax_converged=info["relax"]["converged"])
    write_json(out_dir / "metrics.json", metrics)
    return metrics


def evaluate_model(model: Path, structure: Atoms, reference_yaml: Path, test_file: Path, cfg: dict,
                   out_dir: Path, *, train_log: dict | None = None, reference_modes: list | None = None,
                   log: Callable[[str], None] = print) -> dict:
    """A model against the reference: phonon metrics + test-split errors; writes metrics.json et al."""
    out_dir = Path(out_dir)
    t0, c0 = time.perf_counter(), cpu_seconds()
    ecfg = cfg["evaluate"]
    calc = mace_calculator(model, device=ecfg["device"], dtype=ecfg["dtype"])
    relaxed, phonon, info = run_phonons(structure, calc, cfg, out_dir, log=log)
    reference = compare.load_phonopy(reference_yaml)
    metrics = compare.phonon_metrics(reference, phonon, mesh=cfg["phonons"]["mesh"],
                                     temperature=cfg["phonons"]["temperature"],
                                     npoints=cfg["phonons"]["band_points"],
                                     convention=cfg["phonons"]["convention"],
                                     imaginary_threshold=cfg["phonons"]["imaginary_threshold"])
    write_json(out_dir / "bands.json", band_data(phonon, reference, npoints=cfg["phonons"]["band_points"]))
    write_json(out_dir / "thermal.json", thermal_data(phonon, cfg))
    metrics.update(split_errors(calc, test_file))
    metrics.update(properties_beyond_phonons(structure, relaxed, calc, cfg, out_dir,
                                             reference_modes=reference_modes, log=log))
    metrics["relax_converged"] = info["relax"]["converged"]
    metrics["eval_seconds"] = metrics["evaluate_wall_seconds"] = time.perf_counter() - t0
    metrics["evaluate_cpu_seconds"] = cpu_seconds() - c0
    if train_log is not None:
        metrics["train_seconds"] = train_log.get("total_wall_time_s", train_log.get("wall_time_s"))
        metrics["finetune_wall_seconds"] = metrics["train_seconds"]
        metrics["finetune_cpu_seconds"] = train_log.get("total_cpu_seconds")
        metrics["trainable_parameters"] = train_log.get("trainable_parameters")
        metrics["total_parameters"] = train_log.get("total_parameters")
        metrics["epochs"] = train_log.get("epochs_run")
        metrics["reference_calculations"] = train_log.get("budget", 0)
    log(f"band rmse {metrics['rmse']:.4f} THz, force MAE {metrics['force_mae']:.2f} meV/Å")
    write_json(out_dir / "metrics.json", metrics)
    return metrics
