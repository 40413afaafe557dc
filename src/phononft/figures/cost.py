"""fig06: the cost of reaching an accuracy target, in reference calculations (training structures)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd
from matplotlib.lines import Line2D
from matplotlib.ticker import NullLocator

from .data import material_rows, min_budget_to_target, model_rows, unit_of
from .style import METRIC_INFO, SELECTION_FILLSTYLES, SELECTION_LINESTYLES, legend_handles, material_ticks, \
    ordered_strategies, plt, save, selection_handles, selections_in, strategy_color, strategy_marker, style


def fig06_cost(table, out_png: Path, out_pdf: Path, *, metric: str = "rmse", target: float = 0.1,
               strategies: Sequence[str] | None = None,
               cost_metric: str = "reference_calculations") -> None:
    """(a) Per material, the minimum number of training structures (= reference calculations) needed to
    reach ``metric < target`` per strategy, with the cost of the finite-displacement reference phonon run
    (the reference's ``reference_calculations``) as a black scale line; (b) fraction of materials that
    reach the target against the budget.  With several selections (which structures were labelled), one
    marker per strategy and selection in (a) (fill: the selection) and one line in (b) (line style)."""
    every = material_rows(table, selection=None)
    sels = selections_in(model_rows(every, None))
    mbs = {sel: min_budget_to_target(every, metric, target, selection=sel) for sel in sels}
    df = every[every["selection"] == "random"]
    mods = model_rows(every, None)
    mats = sorted(set(mods["material"]) | set(df.loc[df["strategy"] == "reference", "material"]))
    strats = ordered_strategies(strategies or mods["strategy"].unique())
    ref_cost = (df[(df["strategy"] == "reference") & (df["metric"] == cost_metric)]
                .groupby("material")["value"].median())
    unit = unit_of(df, metric) or METRIC_INFO.get(metric, ("", ""))[1]
    budgets = sorted(b for b in mods.loc[mods["metric"] == metric, "budget"].unique() if b > 0)
    reached = pd.concat([mb.loc[mb["status"] == "reached", "min_budget"] for mb in mbs.values()])
    pos = [v for v in list(reached) + list(ref_cost.dropna()) + budgets if v > 0]
    lo = min(pos) if pos else 1.0
    hi = max(pos) if pos else 10.0
    y_zero, y_none = lo / 3.0, hi * 3.0
    y_na = y_zero / 3.0
    with style():
        w = min(max(7.5, 0.45 * len(mats) + 4.5), 16)
        fig, (ax, ax2) = plt.subplots(1, 2, figsize=(w, 3.2 if len(mats) <= 15 else 3.8), layout="constrained",
                                      width_ratios=[max(w - 4.6, 3.0), 2.4])
        slots = [(s, sel) for s in strats for sel in (["random"] if s == "pretrained" else sels)]
        k = len(slots)
        offs = (np.arange(k) - (k - 1) / 2) * (0.8 / max(k, 1))
        any_na = False
        for j, (s, sel) in enumerate(slots):
            g = mbs[sel][mbs[sel]["strategy"] == s].set_index("material")
            for i, m in enumerate(mats):
                if m not in g.index or g.loc[m, "status"] == "n/a":
                    any_na = True
                    ax.plot(i + offs[j], y_na, marker="x", color="#999999", ms=3.5, zorder=2)
                    continue
                st = g.loc[m, "status"]
                y = y_none if st == "not reached" else (g.loc[m, "min_budget"] or y_zero)
                fill = "none" if st == "not reached" else SELECTION_FILLSTYLES[sel]
                ax.plot(i + offs[j], y, marker=strategy_marker(s), color=strategy_color(s), ms=4.5,
                        fillstyle=fill, zorder=3, lw=0)
        for i, m in enumerate(mats):
            if m in ref_cost.index and np.isfinite(ref_cost[m]):
                ax.hlines(ref_cost[m], i - 0.45, i + 0.45, color="black", lw=1.6, zorder=4)
            if i:
                ax.axvline(i - 0.5, color="#eeeeee", lw=0.6, zorder=0)
        ax.set_yscale("log")
        decades = [10.0 ** e for e in range(int(math.floor(math.log10(lo))), int(math.ceil(math.log10(hi))) + 1)]
        decades = [d for d in decades if y_zero * 1.5 < d < y_none / 1.5] or [lo]
        ticks = [y_zero] + decades + [y_none]
        labels = ["0 (zero-shot)"] + [f"{d:g}" for d in decades] + ["not reached"]
        if any_na:
            ticks.insert(0, y_na)
            labels.insert(0, "n/a")
        ax.set_yticks(ticks, labels)
        ax.yaxis.set_minor_locator(NullLocator())
        ax.set_ylim((y_na if any_na else y_zero) / 1.8, y_none * 1.8)
        for yb in (y_zero * 1.35, y_none / 1.35):
            ax.axhline(yb, color="#cccccc", lw=0.6, ls=":")
        ax.set_xlim(-0.5, len(mats) - 0.5)
        ax.grid(axis="x", visible=False)
        material_ticks(ax, mats)
        ax.set_ylabel("reference calculations\n(training structures N)")
        ax.set_title(f"(a) min. N for {METRIC_INFO.get(metric, (metric,))[0]} < {target:g} {unit}", loc="left")
        # (b) fraction of materials reaching the target vs budget
        n_mat = max(len(set(mods["material"])), 1)
        for s, sel in slots:
            g = mbs[sel][mbs[sel]["strategy"] == s]
            if g.empty or (g["status"] == "n/a").all():
                continue
            c = strategy_color(s)
            if s == "pretrained":
                ax2.axhline(100 * (g["status"] == "reached").sum() / n_mat, color=c, ls="--")
                continue
            xs = budgets or [1]
            frac = [100 * ((g["status"] == "reached") & (g["min_budget"] <= b)).sum() / n_mat for b in xs]
            ax2.step(xs, frac, where="post", color=c, marker=strategy_marker(s), ms=3.5,
                     ls=SELECTION_LINESTYLES[sel])
        if budgets:
            ax2.set_xscale("log")
            ax2.set_xticks(budgets, [str(int(b)) for b in budgets])
            ax2.xaxis.set_minor_locator(NullLocator())
            if len(budgets) == 1:
                ax2.set_xlim(budgets[0] / 2, budgets[0] * 2)
        ax2.set_ylim(-3, 103)
        ax2.set_xlabel("training structures N")
        ax2.set_ylabel("materials reaching target (%)")
        ax2.set_title("(b) success rate", loc="left")
        hs = legend_handles(strats, line=False)
        hs += [Line2D([], [], color="black", lw=1.6, label="reference phonon run\n(finite displacements)"),
               Line2D([], [], color="#555555", marker="o", mfc="none", lw=0, label="not reached")]
        if any_na:
            hs.append(Line2D([], [], color="#aaaaaa", marker="x", lw=0, label="n/a (missing)"))
        if len(sels) > 1:
            hs += selection_handles(sels, kind="marker")
        fig.legend(handles=hs, loc="outside right upper", title="strategy" + (" / selection" if len(sels) > 1 else ""))
        save(fig, out_png, out_pdf)

