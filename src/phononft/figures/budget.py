"""Metrics against the training-set size N: ``budget_curves`` (band RMSE and force MAE), and the panel
that fig08 and fig09 draw the same way (median and inter-quartile range per strategy and budget)."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd
from matplotlib.patches import Patch
from matplotlib.ticker import NullLocator

from .data import material_rows, model_rows, quartiles, summarise, unit_of
from .style import legend_handles, mark_na, metric_label, ordered_strategies, plt, save, strategy_color, \
    strategy_marker, style, tidy_log_axis


def budget_panel(ax, d: pd.DataFrame, strats: Sequence[str], *, ylabel: str, logy: bool | None = None) -> set:
    """Median and IQR over all rows (materials x seeds) per strategy and budget; pretrained: horizontal band.
    Returns the strategies that had at least one finite value."""
    got: set[str] = set()
    budgets_all = sorted(b for b in d.loc[d["strategy"] != "pretrained", "budget"].unique() if b > 0)
    for s in strats:
        g = d[d["strategy"] == s]
        c = strategy_color(s)
        if s == "pretrained":
            med, lo, hi = quartiles(g["value"])
            if np.isfinite(med):
                got.add(s)
                ax.axhline(med, color=c, ls="--", lw=1.2, zorder=2)
                if np.isfinite(lo) and hi > lo:
                    ax.axhspan(lo, hi, color=c, alpha=0.12, lw=0, zorder=1)
            continue
        g = g[g["budget"] > 0]
        sm = summarise(g, ["budget"]).sort_values("budget")
        sm = sm[sm["median"].notna()]
        if sm.empty:
            continue
        got.add(s)
        ax.plot(sm["budget"], sm["median"], color=c, marker=strategy_marker(s), zorder=3)
        if (sm["q75"] > sm["q25"]).any():
            ax.fill_between(sm["budget"], sm["q25"], sm["q75"], color=c, alpha=0.15, lw=0, zorder=2)
    if budgets_all:
        ax.set_xscale("log")
        ax.set_xticks(budgets_all, [str(int(b)) for b in budgets_all])
        ax.xaxis.set_minor_locator(NullLocator())
        if len(budgets_all) == 1:
            b = budgets_all[0]
            ax.set_xlim(b / 2, b * 2)
        if len(budgets_all) > 8:
            ax.tick_params(axis="x", labelrotation=45)
    ax.set_xlabel("training structures N")
    ax.set_ylabel(ylabel)
    vals = d["value"].to_numpy(dtype=float)
    vals = vals[np.isfinite(vals)]
    if logy is None:
        logy = vals.size > 0 and vals.min() > 0 and vals.max() / vals.min() > 20
    if logy and vals.size and vals.min() > 0:
        ax.set_yscale("log")
        ax.autoscale_view()
        tidy_log_axis(ax.yaxis)
    if not got:
        mark_na(ax)
    return got


def budget_curves(table, out_png: Path, out_pdf: Path, *, metrics: Sequence[str] = ("rmse", "force_mae"),
                  material: str | Sequence[str] | None = None, strategies: Sequence[str] | None = None,
                  max_materials: int = 5, logy: bool | None = None) -> None:
    """Metrics (default band RMSE and force MAE) against the budget, one line per strategy: median over
    seeds with IQR band; pretrained (budget 0) as a horizontal dashed line with its IQR band.

    ``material``: one material, a list (one column each), or None: one column per material when there
    are at most ``max_materials``, otherwise one column pooling all materials (median/IQR over
    materials x seeds).
    """
    df = model_rows(material_rows(table), None)
    mats = sorted(df["material"].unique())
    if isinstance(material, str):
        cols = [material]
    elif material is not None:
        cols = list(material)
    elif len(mats) <= max_materials:
        cols = mats
    else:
        cols = [None]
    strats = ordered_strategies(strategies or df["strategy"].unique())
    with style():
        fig, axes = plt.subplots(len(metrics), len(cols), figsize=(2.9 * len(cols) + 1.3, 2.4 * len(metrics)),
                                 layout="constrained", squeeze=False)
        missing = set(strats)
        for r, metric in enumerate(metrics):
            unit = unit_of(df, metric)
            for c, mat in enumerate(cols):
                ax = axes[r, c]
                d = df[df["metric"] == metric]
                if mat is not None:
                    d = d[d["material"] == mat]
                got = budget_panel(ax, d, strats, ylabel=metric_label(metric, unit) if c == 0 else "",
                                    logy=logy)
                missing &= set(strats) - got
                if r == 0:
                    ax.set_title(mat if mat is not None else f"all materials ({len(mats)})")
                if r < len(metrics) - 1:
                    ax.set_xlabel("")
        fig.legend(handles=legend_handles(strats, missing=missing) +
                   [Patch(color="#7f7f7f", alpha=0.25, label="IQR (seeds)")],
                   loc="outside right upper", title="strategy")
        save(fig, out_png, out_pdf)

