"""Metrics against the training-set size N: ``fig13_budget_curves`` (band RMSE and force MAE), and the panel
that fig08 and fig09 draw the same way (median and inter-quartile range per strategy and budget)."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd
from matplotlib.patches import Patch
from matplotlib.ticker import NullLocator

from ..recommend import recommend
from .data import material_rows, model_rows, quartiles, summarise, unit_of
from .style import SELECTION_HATCHES, SELECTION_LINESTYLES, legend_handles, mark_na, metric_label, \
    ordered_strategies, plt, save, selection_handles, selections_in, strategy_color, strategy_marker, style, \
    tidy_log_axis


def budget_panel(ax, d: pd.DataFrame, strats: Sequence[str], *, ylabel: str, logy: bool | None = None) -> set:
    """Median and IQR over all rows (materials x seeds) per strategy and budget; pretrained: horizontal band.
    With several selections in ``d`` (its ``selection`` column), one line per strategy and selection in the
    selection's line style (IQR band for ``random`` only, to stay readable).
    Returns the strategies that had at least one finite value."""
    got: set[str] = set()
    sels = selections_in(d)
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
        for sel in sels:
            gs = g[g["selection"] == sel] if "selection" in g.columns else g
            sm = summarise(gs, ["budget"]).sort_values("budget")
            sm = sm[sm["median"].notna()]
            if sm.empty:
                continue
            got.add(s)
            ax.plot(sm["budget"], sm["median"], color=c, marker=strategy_marker(s), ls=SELECTION_LINESTYLES[sel],
                    zorder=3)
            if sel == "random" and (sm["q75"] > sm["q25"]).any():
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


def fig13_budget_curves(table, out_png: Path, out_pdf: Path, *, metrics: Sequence[str] = ("rmse", "force_mae"),
                  material: str | Sequence[str] | None = None, strategies: Sequence[str] | None = None,
                  max_materials: int = 5, logy: bool | None = None) -> None:
    """Metrics (default band RMSE and force MAE) against the budget, one line per strategy: median over
    seeds with IQR band; pretrained (budget 0) as a horizontal dashed line with its IQR band.  With several
    selections, one line per strategy and selection (line style: the selection).

    ``material``: one material, a list (one column each), or None: one column per material when there
    are at most ``max_materials``, otherwise one column pooling all materials (median/IQR over
    materials x seeds).
    """
    df = model_rows(material_rows(table, selection=None), None)
    sels = selections_in(df)
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
        extra = selection_handles(sels) if len(sels) > 1 else []
        fig.legend(handles=legend_handles(strats, missing=missing) + extra +
                   [Patch(color="#7f7f7f", alpha=0.25, label="IQR (seeds" + (", random)" if extra else ")"))],
                   loc="outside right upper", title="strategy" + (" / selection" if extra else ""))
        save(fig, out_png, out_pdf)



def fig12_selection(table, out_png: Path, out_pdf: Path, *, metric: str = "rmse", target: float = 0.1) -> None:
    """Which structures to label: (a) ``metric`` against N per selection for the best strategy (the lowest
    median ``metric`` at the largest budget), median and IQR over materials x seeds; (b) per strategy and
    selection, the median over materials of the smallest N whose seed-median ``metric`` is below ``target``
    (phononft.recommend; open bar: some material never reaches it)."""
    df = model_rows(material_rows(table, selection=None), None)
    sel_names = selections_in(df)
    d = df[(df["metric"] == metric) & (df["strategy"] != "pretrained")]
    with style():
        fig, (ax_a, ax_b) = plt.subplots(1, 2, figsize=(9.0, 3.2), layout="constrained")
        if d["value"].notna().any():
            top = d[d["budget"] == d["budget"].max()].groupby("strategy")["value"].median()
            best = top.idxmin()
            for sel in sel_names:
                sm = summarise(d[(d["strategy"] == best) & (d["selection"] == sel)], ["budget"]).sort_values("budget")
                sm = sm[sm["median"].notna()]
                if sm.empty:
                    continue
                ax_a.plot(sm["budget"], sm["median"], ls=SELECTION_LINESTYLES[sel], marker="o", color=strategy_color(best),
                          label=sel)
                ax_a.fill_between(sm["budget"], sm["q25"], sm["q75"], color=strategy_color(best), alpha=0.1, lw=0)
            ax_a.set_xscale("log")
            ax_a.set_title(f"best strategy: {best}")
            ax_a.axhline(target, color="k", lw=0.8, ls=":")
            ax_a.legend(title="selection")
        else:
            mark_na(ax_a)
        ax_a.set_xlabel("training structures N")
        ax_a.set_ylabel(metric_label(metric, unit_of(df, metric)))
        rec = recommend(df.assign(selection=df["selection"]), target, metric=metric)
        strats = [s for s in ordered_strategies(rec["strategy"].unique()) if s != "pretrained"] if len(rec) else []
        width = 0.8 / max(len(sel_names), 1)
        for k, sel in enumerate(sel_names):
            for i, s in enumerate(strats):
                g = rec[(rec["strategy"] == s) & (rec["selection"] == sel)]["budget_needed"]
                if g.empty:
                    continue
                reached = g.dropna()
                value = float(np.median(reached)) if len(reached) else np.nan
                full = len(reached) == len(g)
                ax_b.bar(i + (k - (len(sel_names) - 1) / 2) * width, value if np.isfinite(value) else 0, width,
                         color=strategy_color(s), alpha=0.9 if full else 0.35, hatch=SELECTION_HATCHES[sel],
                         edgecolor="k", lw=0.5)
        ax_b.set_xticks(range(len(strats)), strats, rotation=45, ha="right")
        ax_b.set_ylabel(f"N to reach {metric} < {target}")
        ax_b.set_title("structures needed (median over materials)")
        ax_b.legend(handles=selection_handles(sel_names, kind="bar"), title="selection")
        save(fig, out_png, out_pdf)
