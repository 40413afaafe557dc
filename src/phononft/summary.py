"""Summary stage: every per-model metrics.json into one tidy table.

``results/summary/metrics.csv`` has one row per material x strategy x selection x budget x seed x metric with
the columns ``material, strategy, selection, budget, seed, metric, value, unit, status``.  The reference's own properties are
rows with strategy ``reference`` (budget 0, seed 0).  A model whose results are missing gets one row
per metric with value NaN and ``status`` ``missing``, so gaps are explicit.
"""

from __future__ import annotations

import csv
import math
import re
from pathlib import Path

import pandas as pd

from . import layout
from .config import Run
from .phases import new_phase_scores, phase_set_scores
from .io import atomic_path, read_json
from .metrics import unit_of  # the one definition of metrics and units (re-exported here)



#: spglib tolerances of the phase sets (phononft.imaginary.SYMPRECS, as key tags)
PHASE_TOLERANCES = ("1e-3", "1e-1")


def spacegroup_number(symbol: str | None) -> float:
    m = re.search(r"\((\d+)\)", symbol or "")
    return float(m.group(1)) if m else math.nan


def flatten(metrics: dict) -> dict[str, float]:
    """Numeric metrics only; booleans become 0/1; space groups become their numbers + ``new_phase``."""
    out: dict[str, float] = {}
    for key, value in metrics.items():
        if isinstance(value, bool):
            out[key] = float(value)
        elif isinstance(value, (int, float)) and value is not None:
            out[key] = float(value)
    if "spacegroup" in metrics:
        out["spacegroup_number"] = spacegroup_number(metrics["spacegroup"])
    if metrics.get("final_spacegroup_1e-1"):
        out["final_spacegroup_number"] = spacegroup_number(metrics["final_spacegroup_1e-1"])
    if "benchmark_spacegroup" in metrics:
        out["benchmark_spacegroup_number"] = spacegroup_number(metrics["benchmark_spacegroup"])
    return out


def benchmark_seconds(paths: str | Path | list) -> dict[str, float]:
    """Wall and CPU seconds of Snakemake ``benchmark:`` files (one, or the sum over several jobs)."""
    paths = paths if isinstance(paths, list) else [paths]
    frames = [pd.read_csv(p, sep="\t") for p in paths]
    out = {"wall_seconds": float(sum(df["s"].mean() for df in frames))}
    if all("cpu_time" in df for df in frames):
        out["cpu_seconds"] = float(sum(df["cpu_time"].mean() for df in frames))
    return out


#: columns of the tidy table
COLUMNS = ["material", "strategy", "selection", "budget", "seed", "metric", "value", "unit", "status"]


def collect(metric_files: list[str], reference_files: list[str], expected: list | None = None,
            benchmarks: dict | None = None) -> pd.DataFrame:
    """Tidy DataFrame from metrics.json files (paths encode material/strategy/selection/budget/seed).

    ``expected``: every run (:class:`phononft.config.Run`); a missing one gets rows of NaN marked ``missing``.
    ``benchmarks``: per run, ``{stage: path | [paths] | (path or [paths], scale)}`` of Snakemake benchmark
    files; their summed wall and CPU seconds (times ``scale``, e.g. the share of a labelled series a budget
    uses) become ``<stage>_wall_seconds`` / ``<stage>_cpu_seconds``.  (Fine-tuning and evaluation report
    their own per-model seconds in metrics.json: one job covers several models.)  The reference's rows have
    strategy ``reference``, selection ``random``, budget and seed 0.
    """
    rows = []
    seen = set()
    phase_sets: dict[Run, dict] = {}  # run -> {tolerance: set of end phases}
    for path in reference_files:
        material = layout.parse_reference(path)
        if material is None:
            raise ValueError(f"not a reference metrics path: {path}")
        data = read_json(path)
        key = Run(material, "reference", 0, 0)
        phase_sets[key] = _phase_sets(data)
        rows.extend(_rows(key, flatten(data)))
    all_metrics: set[str] = set()
    for path in metric_files:
        parsed = layout.parse_evaluation(path)
        if parsed is None:
            raise ValueError(f"not a model metrics path: {path}")
        key = Run(**parsed)
        if not Path(path).is_file():
            continue
        seen.add(key)
        data = read_json(path)
        phase_sets[key] = _phase_sets(data)
        values = flatten(data)
        for stage, bench in (benchmarks or {}).get(key, {}).items():
            bench, scale = bench if isinstance(bench, tuple) else (bench, 1.0)
            if all(Path(b).is_file() for b in (bench if isinstance(bench, list) else [bench])):
                for k, v in benchmark_seconds(bench).items():
                    values[f"{stage}_{k}"] = v * scale
        all_metrics.update(values)
        rows.extend(_rows(key, values))
    for key in expected or []:
        key = Run(*key)
        if key not in seen:
            rows.extend(_rows(key, {m: math.nan for m in sorted(all_metrics) or ["rmse"]}, status="missing"))
    df = pd.DataFrame(rows, columns=COLUMNS)
    df = pd.concat([df, new_phase_rows(df), phase_set_rows(phase_sets)], ignore_index=True)
    order = ["material", "strategy", "selection", "budget", "seed", "metric"]
    return df.sort_values(order, kind="stable").reset_index(drop=True)


def _rows(run: Run, values: dict, status: str = "ok") -> list[tuple]:
    return [(run.material, run.strategy, run.selection, run.budget, run.seed, metric, value, unit_of(metric), status)
            for metric, value in values.items()]


def new_phase_rows(df: pd.DataFrame) -> pd.DataFrame:
    """Precision, recall and F1 of "relaxation along imaginary modes ends in a new phase" against the
    reference, over all materials, per strategy x selection x budget x seed (material ``all``); and per model
    ``same_final_phase``."""
    flags = df[(df.metric == "new_phase") & (df.status == "ok")]
    ref = {r.material: bool(r.value) for r in flags[flags.strategy == "reference"].itertuples()}
    rows = []
    if not ref:
        return pd.DataFrame(rows, columns=COLUMNS)
    models = flags[flags.strategy != "reference"]
    for (strategy, selection, budget, seed), group in models.groupby(["strategy", "selection", "budget", "seed"]):
        scores = new_phase_scores(ref, {r.material: bool(r.value) for r in group.itertuples()})
        rows.extend(_rows(Run("all", strategy, budget, seed, selection),
                          {f"new_phase_{key}": float(scores[key]) for key in ("precision", "recall", "f1")}))
    # beyond "a new phase": does relaxation along the modes end in the reference's phase?
    final = df[(df.metric == "final_spacegroup_number") & (df.status == "ok")]
    ref_final = {r.material: r.value for r in final[final.strategy == "reference"].itertuples()}
    for r in final[final.strategy != "reference"].itertuples():
        if r.material in ref_final:
            rows.extend(_rows(Run(r.material, r.strategy, r.budget, r.seed, r.selection),
                              {"same_final_phase": float(r.value == ref_final[r.material])}))
    return pd.DataFrame(rows, columns=COLUMNS)


def _phase_sets(metrics: dict) -> dict[str, set]:
    """``{"1e-3": set, "1e-1": set}`` of the phases the relaxations along the imaginary modes end in."""
    return {tol: set(metrics[f"phases_{tol}"]) for tol in PHASE_TOLERANCES if f"phases_{tol}" in metrics}


def phase_set_rows(phase_sets: dict[Run, dict]) -> pd.DataFrame:
    """The study's phase metric per strategy x selection x budget x seed (material ``all``): precision and recall
    of the models' sets of end phases against the reference's, pooled over materials
    (phononft.phases.phase_set_scores), at each spglib tolerance: ``phase_precision_<t>``, ``phase_recall_<t>``."""
    reference = {k.material: v for k, v in phase_sets.items() if k.strategy == "reference"}
    runs: dict[Run, dict] = {}
    for key, sets in phase_sets.items():
        if key.strategy != "reference":
            runs.setdefault(key._replace(material="all"), {})[key.material] = sets
    rows = []
    for pooled, by_material in sorted(runs.items()):
        for tol in PHASE_TOLERANCES:
            ref = {m: s[tol] for m, s in reference.items() if tol in s}
            mod = {m: s[tol] for m, s in by_material.items() if tol in s}
            if not set(ref) & set(mod):
                continue
            scores = phase_set_scores(ref, mod)
            rows.extend(_rows(pooled, {f"phase_{key}_{tol}": float(scores[key]) for key in ("precision", "recall")}))
    return pd.DataFrame(rows, columns=COLUMNS)


def write_table(df: pd.DataFrame, path: str | Path) -> None:
    with atomic_path(path, suffix=".csv") as tmp:
        df.to_csv(tmp, index=False, quoting=csv.QUOTE_MINIMAL)


def write_partial_table(runs: list[tuple]) -> Path | None:
    """After a run that failed (e.g. with ``--keep-going``): the tidy table of what exists, every missing model
    marked ``missing``, as ``summary/metrics_partial.csv``.  Returns its path (None when nothing was evaluated
    yet); ``rules/common.smk`` then draws the table's figures from it."""
    runs = [Run(*run) for run in runs]
    files = [Path(layout.evaluation_of(run, "metrics.json")) for run in runs]
    materials = sorted({run.material for run in runs})
    refs = [layout.reference(m, "metrics.json") for m in materials if Path(layout.reference(m, "metrics.json")).is_file()]
    present = [str(f) for f in files if f.is_file()]
    if not present and not refs:
        return None
    df = collect(present, refs, runs)
    out = Path(layout.summary("metrics_partial.csv"))
    write_table(df, out)
    return out
