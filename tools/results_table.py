#!/usr/bin/env python
"""The README's results table from a run's tidy table: per strategy, the median band RMSE (THz) at each budget
with its interquartile range over materials x seeds, and per material the seed medians.

    .venv/bin/python tools/results_table.py results/summary/metrics.csv [--metric rmse] [--budgets 2 10]
        [--selection random]

Markdown on stdout.  Aggregation: ``phononft.figures.data.summarise`` (median, 25th-75th percentile), the
``random`` selection (``--selection``), rows with status ``ok``; zero-shot (``pretrained``) is budget 0 and shown in every column.
"""

from __future__ import annotations

import argparse
import sys

from phononft import strategies
from phononft.figures.data import load_table, summarise, trained_on


def _cell(row) -> str:
    if row is None or row["n"] == 0:
        return "–"
    return f"{row['median']:.3f} [{row['q25']:.3f}–{row['q75']:.3f}] (n={int(row['n'])})"


def results_table(path: str, metric: str = "rmse", budgets: list[int] | None = None,
                  selection: str = "random") -> str:
    df = trained_on(load_table(path, selection=None), selection)
    df = df[(df.metric == metric) & (df.strategy != "reference")]
    if "status" in df.columns:
        df = df[df.status.fillna("ok") == "ok"]
    budgets = budgets or sorted(b for b in df.budget.unique() if b > 0)
    order = [s for s in strategies.names() if s in set(df.strategy)]
    pooled = summarise(df, ["strategy", "budget"]).set_index(["strategy", "budget"])
    per_mat = summarise(df, ["strategy", "budget", "material"])
    materials = sorted(df.material.unique())

    def get(strategy, budget):
        key = (strategy, 0 if strategy == "pretrained" else budget)
        return pooled.loc[key] if key in pooled.index else None

    verdicts = [verdict(pooled, order, b) for b in budgets]
    lines = [f"| strategy | " + " | ".join(f"N = {b}: median [IQR] over materials × seeds" for b in budgets) + " |",
             "| --- |" + " --- |" * len(budgets)]
    lines += [f"| {s} | " + " | ".join(_cell(get(s, b)) for b in budgets) + " |" for s in order]
    lines += ["", "| strategy | N | " + " | ".join(materials) + " |", "| --- | --- |" + " --- |" * len(materials)]
    pm = per_mat.set_index(["strategy", "budget", "material"])
    for s in order:
        for b in ([0] if s == "pretrained" else budgets):
            cells = []
            for m in materials:
                r = pm.loc[(s, b, m)] if (s, b, m) in pm.index else None
                cells.append("–" if r is None else f"{r['median']:.3f} [{r['q25']:.3f}–{r['q75']:.3f}]")
            lines.append(f"| {s} | {b} | " + " | ".join(cells) + " |")
    return "\n".join(lines + [""] + verdicts)


def verdict(pooled, order: list[str], budget: int) -> str:
    """Which strategy has the lowest median at ``budget`` and which others it beats beyond the spread (its
    upper quartile below their lower quartile), and which overlap it."""
    rows = {s: pooled.loc[(s, 0 if s == "pretrained" else budget)] for s in order
            if (s, 0 if s == "pretrained" else budget) in pooled.index}
    rows = {s: r for s, r in rows.items() if r["n"] > 0}
    if not rows:
        return f"N = {budget}: no values"
    best = min(rows, key=lambda s: rows[s]["median"])
    beaten = [s for s, r in rows.items() if s != best and rows[best]["q75"] < r["q25"]]
    overlap = [s for s in rows if s != best and s not in beaten]
    return (f"N = {budget}: lowest median {best} ({rows[best]['median']:.3f}); beyond the IQR it beats "
            f"{', '.join(beaten) or 'none'}; overlapping: {', '.join(overlap) or 'none'}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("table")
    ap.add_argument("--metric", default="rmse")
    ap.add_argument("--budgets", type=int, nargs="*")
    ap.add_argument("--selection", default="random", help="rows of this selection (zero-shot: always shown)")
    args = ap.parse_args(argv)
    print(results_table(args.table, args.metric, args.budgets, args.selection))
    return 0


if __name__ == "__main__":
    sys.exit(main())
