"""fig03 and fig09: deviations (%) of thermal and elastic properties from the reference, per strategy."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd
from matplotlib.patches import Patch
from matplotlib.ticker import FuncFormatter, MaxNLocator, NullLocator, SymmetricalLogLocator

from .budget import budget_panel
from .data import deviations, material_rows
from .style import METRIC_INFO, PROPERTY_SHORT, legend_handles, ordered_strategies, plt, save, strategy_color, style

#: fig03's properties (thermal and elastic).
DEVIATION_PROPERTIES: tuple[str, ...] = ("heat_capacity", "entropy", "free_energy", "bulk_modulus_vrh",
                                         "shear_modulus_vrh", "kappa_slack", "debye_temperature")
#: fig09's properties (thermal only).
THERMAL_PROPERTIES: tuple[str, ...] = ("heat_capacity", "entropy", "free_energy")


def _deviation_panels(df: pd.DataFrame, properties: Sequence[str], budget: int | None, strategies, ncols: int,
                      xscale: str, title: str):
    devs = {p: deviations(df, p, budget) for p in properties}
    present = set()
    for d in devs.values():
        present |= set(d["strategy"])
    strats = ordered_strategies(strategies or present)
    n = len(properties)
    ncols = min(ncols, n)
    nrows = math.ceil(n / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(2.35 * ncols + 0.6, (0.28 * len(strats) + 0.9) * nrows),
                             layout="constrained", sharey=True, squeeze=False)
    rng = np.random.default_rng(0)
    for k, ax in enumerate(axes.flat):
        if k >= n:
            ax.axis("off")
            if k == n:
                ax.text(0.05, 0.5, "deviation = 100 (model − reference) / |reference|\n"
                        "box: inter-quartile range, bar: median,\nwhiskers: 1.5 IQR, points: materials\n"
                        "n/a: no value (failed or missing job)", transform=ax.transAxes, va="center",
                        fontsize=7, color="#444444")
            continue
        p = properties[k]
        d = devs[p]
        vals_all = d["deviation"].dropna()
        for i, s in enumerate(strats):
            v = d.loc[d["strategy"] == s, "deviation"].dropna().to_numpy()
            if v.size == 0:
                ax.text(0.02, i, "n/a", transform=ax.get_yaxis_transform(), va="center", fontsize=6,
                        color="#777777")
                continue
            c = strategy_color(s)
            ax.boxplot([v], positions=[i], orientation="horizontal", widths=0.6, patch_artist=True,
                       showfliers=False, boxprops=dict(facecolor=c, alpha=0.35, edgecolor=c),
                       medianprops=dict(color=c, lw=1.5), whiskerprops=dict(color=c),
                       capprops=dict(color=c))
            ax.scatter(v, i + rng.uniform(-0.18, 0.18, v.size), s=6, color=c, alpha=0.9, lw=0, zorder=3)
        ax.axvline(0, color="black", lw=0.7, zorder=1)
        scale = xscale
        if scale == "auto":
            scale = "symlog" if len(vals_all) and vals_all.abs().max() > 100 else "linear"
        if scale == "symlog":
            ax.set_xscale("symlog", linthresh=10)
        unit = "%"
        ax.set_xlabel(f"deviation ({unit})")
        ax.set_title(METRIC_INFO.get(p, (p.replace("_", " "),))[0], loc="center")
        ax.set_yticks(range(len(strats)), strats)
        ax.set_ylim(len(strats) - 0.5, -0.5)
        ax.grid(axis="y", visible=False)
        ax.xaxis.set_major_locator(MaxNLocator(4) if scale == "linear"
                                   else SymmetricalLogLocator(base=10, linthresh=10))
        if scale == "symlog":
            ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
            ax.xaxis.set_minor_locator(NullLocator())
    fig.suptitle(title, fontsize=9, x=0.01, ha="left")
    return fig


def fig03_property_deviation(table, out_png: Path, out_pdf: Path, *, budget: int = 10,
                             properties: Sequence[str] = DEVIATION_PROPERTIES,
                             strategies: Sequence[str] | None = None, ncols: int = 4,
                             xscale: str = "auto") -> None:
    """Deviation (%) of thermal and elastic properties from the reference, per strategy, over materials
    (box + strip), fine-tuned models at ``budget`` (pretrained at its budget 0).

    ``xscale``: ``"linear"``, ``"symlog"`` or ``"auto"`` (symlog once any |deviation| exceeds 100 %).
    """
    df = material_rows(table)
    with style():
        fig = _deviation_panels(df, properties, budget, strategies, ncols, xscale,
                                f"Deviation from the reference, N = {budget} training structures "
                                "(pretrained: zero-shot); one point per material")
        save(fig, out_png, out_pdf)


def fig09_thermal_deviation(table, out_png: Path, out_pdf: Path, *, budget: int | None = None,
                            properties: Sequence[str] = THERMAL_PROPERTIES,
                            strategies: Sequence[str] | None = None, xscale: str = "auto") -> None:
    """Deviation (%) of heat capacity, entropy and free energy per strategy.

    ``budget=None`` (default): median |deviation| over materials with IQR against the budget, one line
    per strategy (pretrained as a horizontal band); ``budget=N``: box + strip plot at that budget.
    """
    df = material_rows(table)
    with style():
        if budget is not None:
            fig = _deviation_panels(df, properties, budget, strategies, len(properties), xscale,
                                    f"Thermal properties: deviation from the reference, N = {budget}")
            save(fig, out_png, out_pdf)
            return
        curves = {}
        for p in properties:
            d = deviations(df, p, None).rename(columns={"deviation": "value"})
            d["value"] = d["value"].abs()
            curves[p] = d
        present = set().union(*(set(d["strategy"]) for d in curves.values())) if curves else set()
        strats = ordered_strategies(strategies or present)
        fig, axes = plt.subplots(1, len(properties), figsize=(3.0 * len(properties) + 1.2, 2.8),
                                 layout="constrained", squeeze=False)
        missing = set(strats)
        for ax, p in zip(axes.flat, properties):
            got = budget_panel(ax, curves[p], strats, ylabel=f"|deviation| of {PROPERTY_SHORT.get(p, p)} (%)")
            missing &= set(strats) - got
            ax.set_title(METRIC_INFO.get(p, (p,))[0], loc="center")
        fig.legend(handles=legend_handles(strats, missing=missing) +
                   [Patch(color="#7f7f7f", alpha=0.25, label="IQR")], loc="outside right upper",
                   title="strategy")
        fig.suptitle("Thermal properties: median |deviation| from the reference over materials "
                     "(band: IQR)", fontsize=9, x=0.01, ha="left")
        save(fig, out_png, out_pdf)

