"""Evaluate stage: a model against the reference, through the same property code as the reference.

For one MACE model (``MACECalculator``): every property of :mod:`phononft.properties` (relaxation, phonons in
the reference's setting, thermal and elastic properties, the reference's imaginary modes probed on the model),
then the benchmark metrics against the reference's phonons (:func:`phononft.compare.phonon_metrics`) and the
energy/force/stress errors on the held-out test split.  Everything lands in one folder per model;
``metrics.json`` is the flat dict the summary stage reads.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Callable

import numpy as np
from ase import Atoms
from ase.units import GPa

from . import compare, phonon_io
from .io import get_labels, read_extxyz, write_json
from .logs import cpu_seconds
from .mace_train import resolve_device
from .properties import Reference, flat_metrics, property_steps, run_in_process, write_properties


def mace_calculator(model: str | Path, *, device: str = "cpu", dtype: str = "float64"):
    from mace.calculators import MACECalculator  # heavy (torch, e3nn): only where a model is evaluated

    return MACECalculator(model_paths=str(model), device=resolve_device(device), default_dtype=dtype)


def split_errors(calc, test_file: Path, *, known: set[int] | None = None) -> dict:
    """MAE of energy (meV/atom), forces (meV/Å) and stress (GPa) on labelled structures (only those made of
    the atomic numbers ``known`` to the model, when given)."""
    de, df, ds = [], [], []
    structures = read_extxyz(test_file)
    if known is not None:
        structures = [a for a in structures if set(int(z) for z in a.numbers) <= known]
    if not structures:
        nan = float("nan")
        return {"energy_mae": nan, "force_mae": nan, "stress_mae": nan, "n_test": 0}
    for atoms in structures:
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


def training_metrics(train_log: dict) -> dict:
    """What the table reports of a model's training (its train.json)."""
    wall = train_log.get("total_wall_time_s", train_log.get("wall_time_s"))
    return {"train_seconds": wall, "finetune_wall_seconds": wall,
            "finetune_cpu_seconds": train_log.get("total_cpu_seconds"),
            "trainable_parameters": train_log.get("trainable_parameters"),
            "total_parameters": train_log.get("total_parameters"),
            "epochs": train_log.get("epochs_run"),
            "optimizer_steps": train_log.get("optimizer_steps"),
            "learning_rate": train_log.get("learning_rate"),
            "reference_calculations": train_log.get("budget", 0)}


def evaluate_model(model: Path, structure: Atoms, reference_yaml: Path, test_file: Path, cfg: dict,
                   out_dir: Path, *, train_log: dict | None = None, reference_modes: list | None = None,
                   general_file: Path | None = None, log: Callable[[str], None] = print) -> dict:
    """A model against the reference: every property, benchmark metrics, test-split errors; writes
    metrics.json, phonopy.yaml, bands.json, thermal.json, surface.json, modes.json, relaxed.extxyz.

    ``structure``: the reference's relaxed cell (every model starts from it and relaxes with its own
    potential); ``reference_modes``: the reference's imaginary modes (modes.json), probed on the model;
    ``general_file``: the general set (the foundation's kind of data) on which forgetting is measured."""
    out_dir = Path(out_dir)
    t0, c0 = time.perf_counter(), cpu_seconds()
    pcfg, ecfg = cfg["phonons"], cfg["evaluate"]
    calc = mace_calculator(model, device=ecfg["device"], dtype=ecfg["dtype"])
    reference = phonon_io.load_phonopy(reference_yaml)
    props = run_in_process(property_steps(structure, cfg, reference=Reference(reference, list(reference_modes or [])),
                                          log=log), calc, log=log)
    write_properties(props, reference, cfg, out_dir)
    metrics = compare.phonon_metrics(reference, props.phonon, mesh=pcfg["mesh"], temperature=pcfg["temperature"],
                                     npoints=pcfg["band_points"], convention=pcfg["convention"],
                                     imaginary_threshold=pcfg["imaginary_threshold"])
    metrics.update(split_errors(calc, test_file))
    if general_file is not None:  # forgetting: errors on data unlike the material's (elements the model knows)
        z_table = getattr(calc, "z_table", None)  # a MACE calculator's elements; another calculator: all
        general = split_errors(calc, general_file, known=None if z_table is None else {int(z) for z in z_table.zs})
        metrics.update({f"general_{k}": v for k, v in general.items()})
    metrics.update(flat_metrics(props))
    metrics["eval_seconds"] = metrics["evaluate_wall_seconds"] = time.perf_counter() - t0
    metrics["evaluate_cpu_seconds"] = cpu_seconds() - c0
    if train_log is not None:
        metrics.update(training_metrics(train_log))
    log(f"band rmse {metrics['rmse']:.4f} THz, force MAE {metrics['force_mae']:.2f} meV/Å")
    write_json(out_dir / "metrics.json", metrics)
    return metrics
