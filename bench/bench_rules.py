"""Where a finished run spent its time: wall and CPU seconds per rule and per strategy.

    .venv/bin/python bench/bench_rules.py [results] [--json]

Reads (nothing is run):

* ``results/benchmarks/<rule>/**.tsv``: Snakemake ``benchmark:`` files (columns ``s``, wall seconds, and
  ``cpu_time``, CPU seconds; several rows = repeats, averaged).  The rule is the folder under
  ``benchmarks/``; a file named after a strategy (``finetune/<material>/<strategy>.tsv``,
  ``evaluate/<material>/<strategy>.tsv``, ``evaluate/<material>_reference.tsv``) also counts for it.
* ``results/<material>/evaluate/<strategy>/[<selection>/]n<budget>/s<seed>/metrics.json`` (``phononft.layout``):
  each model's own seconds
  (``finetune_wall_seconds``, ``finetune_cpu_seconds``, ``evaluate_wall_seconds``,
  ``evaluate_cpu_seconds``): one Snakemake job trains or evaluates several models.

Prints three tables sorted by total wall seconds, each row with its share of the table's whole; ``--json``
prints the same as one JSON object instead.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import sys
from pathlib import Path

from phononft import layout
from phononft.strategies import names as strategy_names

MODEL_KEYS = ("finetune_wall_seconds", "finetune_cpu_seconds", "evaluate_wall_seconds", "evaluate_cpu_seconds")


def _number(text) -> float | None:
    try:
        value = float(text)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def read_benchmark(path: Path) -> dict:
    """``{"wall_s", "cpu_s"}`` of one Snakemake benchmark file: the mean over its rows (repeats);
    ``cpu_s`` is None when the file has no usable ``cpu_time``."""
    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh, delimiter="\t"))
    if not rows or "s" not in rows[0]:
        raise ValueError(f"{path}: not a Snakemake benchmark file (no 's' column)")
    walls = [_number(r["s"]) for r in rows]
    if any(w is None for w in walls):
        raise ValueError(f"{path}: non-numeric wall seconds in column 's'")
    cpus = [_number(r.get("cpu_time")) for r in rows]
    return {"wall_s": sum(walls) / len(walls),
            "cpu_s": None if any(c is None for c in cpus) else sum(cpus) / len(cpus)}


def strategy_of_benchmark(relative: Path) -> str | None:
    """Strategy a benchmark file belongs to (``finetune/Cu/naive.tsv`` -> ``naive``), else None."""
    stem = relative.stem
    if stem in strategy_names():
        return stem
    if relative.parts[0] == "reference" or stem == "reference" or stem.endswith("_reference"):
        return "reference"
    return None


def benchmark_jobs(results: Path) -> list[dict]:
    """One row per benchmark file: rule, strategy (or None), file, wall_s, cpu_s."""
    root = Path(results) / "benchmarks"
    jobs = []
    for path in sorted(root.rglob("*.tsv")):
        relative = path.relative_to(root)
        if len(relative.parts) < 2:
            continue  # a file directly under benchmarks/ names no rule
        jobs.append({"rule": relative.parts[0], "strategy": strategy_of_benchmark(relative),
                     "file": str(relative), **read_benchmark(path)})
    return jobs


def model_seconds(results: Path) -> list[dict]:
    """One row per evaluated model: material, strategy, selection, budget, seed and its own seconds (None if
    absent)."""
    rows = []
    for path in sorted(Path(results).glob("*/evaluate/**/metrics.json")):
        run = layout.parse_evaluation(Path(layout.RESULTS) / path.relative_to(results))
        if run is None:
            continue
        metrics = json.loads(path.read_text())
        rows.append({**run, **{k: _number(metrics.get(k)) for k in MODEL_KEYS}})
    return rows


def _sum(values) -> float | None:
    values = list(values)
    return None if not values or any(v is None for v in values) else float(sum(values))


def summarize(rows: list[dict], key: str, columns: dict[str, str]) -> list[dict]:
    """Rows grouped by ``key``: count and the sum of each column (``{out_name: in_name}``; None if any row
    lacks it), the share of each summed column in its total, sorted by the first column, largest first."""
    groups: dict = {}
    for row in rows:
        if row.get(key) is not None:
            groups.setdefault(row[key], []).append(row)
    table = [{key: name, "n": len(members), **{out: _sum(r[col] for r in members) for out, col in columns.items()}}
             for name, members in groups.items()]
    for out in columns:
        total = _sum(r[out] for r in table if r[out] is not None)
        for r in table:
            r[f"{out}_share"] = (r[out] / total) if (r[out] is not None and total) else None
    first = next(iter(columns))
    return sorted(table, key=lambda r: (-(r[first] or 0.0), str(r[key])))


def report(results: Path) -> dict:
    jobs = benchmark_jobs(results)
    models = model_seconds(results)
    bench_cols = {"wall_s": "wall_s", "cpu_s": "cpu_s"}
    for m in models:  # a model's training plus its evaluation (None if it has neither)
        present = [m[k] for k in ("finetune_wall_seconds", "evaluate_wall_seconds") if m[k] is not None]
        m["total_wall_s"] = float(sum(present)) if present else None
    model_cols = {"total_wall_s": "total_wall_s", "finetune_wall_s": "finetune_wall_seconds",
                  "finetune_cpu_s": "finetune_cpu_seconds", "evaluate_wall_s": "evaluate_wall_seconds",
                  "evaluate_cpu_s": "evaluate_cpu_seconds"}
    return {"results": str(results),
            "total": {"jobs": len(jobs), "wall_s": _sum(j["wall_s"] for j in jobs),
                      "cpu_s": _sum(j["cpu_s"] for j in jobs if j["cpu_s"] is not None),
                      "jobs_without_cpu": sum(j["cpu_s"] is None for j in jobs)},
            "rules": summarize(jobs, "rule", bench_cols),
            "strategies": summarize(jobs, "strategy", bench_cols),
            "models": summarize(models, "strategy", model_cols)}


def _cell(value, share=None) -> str:
    if value is None:
        return "n/a"
    return f"{value:10.1f}" + (f" ({100 * share:5.1f}%)" if share is not None else "")


def format_table(title: str, rows: list[dict], key: str, columns: list[str]) -> str:
    head = f"{key:<16} {'n':>4}  " + "  ".join(f"{c:>19}" for c in columns)
    lines = [title, head, "-" * len(head)]
    for r in rows:
        lines.append(f"{str(r[key]):<16} {r['n']:>4}  "
                     + "  ".join(f"{_cell(r[c], r.get(f'{c}_share')):>19}" for c in columns))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("results", nargs="?", default="results", help="results folder of a finished run")
    ap.add_argument("--json", action="store_true", help="print one JSON object instead of tables")
    args = ap.parse_args(argv)
    results = Path(args.results)
    if not (results / "benchmarks").is_dir():
        sys.exit(f"{results}/benchmarks not found: not the results folder of a finished run")
    rep = report(results)
    if args.json:
        print(json.dumps(rep, indent=1))
        return
    total = rep["total"]
    missing = f" ({total['jobs_without_cpu']} without cpu_time)" if total["jobs_without_cpu"] else ""
    print(f"{results}: {total['jobs']} benchmarked jobs, {_cell(total['wall_s']).strip()} s wall, "
          f"{_cell(total['cpu_s']).strip()} s CPU{missing}; below: seconds (share of the table's total)\n")
    print(format_table("Snakemake jobs per rule (benchmark files)", rep["rules"], "rule", ["wall_s", "cpu_s"]))
    print()
    print(format_table("Snakemake jobs per strategy (finetune + evaluate benchmark files)", rep["strategies"],
                       "strategy", ["wall_s", "cpu_s"]))
    print()
    print(format_table("Per model (metrics.json), summed per strategy", rep["models"], "strategy",
                       ["total_wall_s", "finetune_wall_s", "finetune_cpu_s", "evaluate_wall_s", "evaluate_cpu_s"]))


if __name__ == "__main__":
    main()
