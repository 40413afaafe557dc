"""fig08 and fig11: energy, force and stress errors on the held-out test structures, against the budget
(fig08) and per material at one budget (fig11)."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from .budget import budget_panel
from .data import material_rows, model_rows, quartiles, unit_of
from .style import METRIC_INFO, legend_handles, mark_na, material_ticks, metric_label, ordered_strategies, plt, \
    save, strategy_color, strategy_marker, style, tidy_log_axis

#: fig08 / fig11 metrics (validation-set errors).
VALIDATION_METRICS: tuple[str, ...] = ("energy_mae", "force_mae", "stress_mae")


def fig08_validation_errors(table, out_png: Path, out_pdf: Path, *,
                            metrics: Sequence[str] = VALIDATION_METRICS,
                            strategies: Sequence[str] | None = None, logy: bool | None = True) -> None:
    """Energy, force and stress MAE on the validation sets against the budget: median with IQR over
    materials x seeds, one line per strategy (log-x); pretrained as a horizontal dashed line + band."""
    df = model_rows(material_rows(table), None)
    strats = ordered_strategies(strategies or df["strategy"].unique())
    with style():
        fig, axes = plt.subplots(1, len(metrics), figsize=(2.9 * len(metrics) + 1.3, 2.7),
                                 layout="constrained", squeeze=False)
        missing = set(strats)
        for ax, metric, letter in zip(axes.flat, metrics, "abcdefgh"):
            d = df[df["metric"] == metric]
            got = budget_panel(ax, d, strats, ylabel=metric_label(metric, unit_of(df, metric)), logy=logy)
            missing &= set(strats) - got
            ax.set_title(f"({letter}) {METRIC_INFO.get(metric, (metric,))[0]}", loc="left")
        fig.legend(handles=legend_handles(strats, missing=missing) +
                   [Patch(color="#7f7f7f", alpha=0.25, label="IQR")],
                   loc="outside right upper", title="strategy")
        fig.suptitle("Errors on the held-out test structures: median over materials and seeds "
                     "(band: inter-quartile range)",
                     fontsize=9, x=0.01, ha="left")
        save(fig, out_png, out_pdf)



def _dodged_points(ax, d: pd.DataFrame, mats: Sequence[str], strats: Sequence[str], *, width: float = 0.8):
    """Per material (x) and strategy (dodged): seed-median with IQR error bars; NaN -> grey cross."""
    k = len(strats)
    offs = (np.arange(k) - (k - 1) / 2) * (width / max(k, 1))
    any_missing = False
    for j, s in enumerate(strats):
        c = strategy_color(s)
        for i, m in enumerate(mats):
            g = d[(d["strategy"] == s) & (d["material"] == m)]
            med, lo, hi = quartiles(g["value"])
            x = i + offs[j]
            if np.isfinite(med):
                ax.errorbar(x, med, yerr=[[med - lo], [hi - med]], color=c, marker=strategy_marker(s),
                            ms=3.5, lw=0.9, capsize=1.5, zorder=3)
            else:
                any_missing = True
                ax.plot(x, 0.03, marker="x", color="#999999", ms=3.5, transform=ax.get_xaxis_transform(),
                        zorder=3, clip_on=False)
    for i in range(1, len(mats)):
        ax.axvline(i - 0.5, color="#eeeeee", lw=0.6, zorder=0)
    ax.set_xlim(-0.5, len(mats) - 0.5)
    ax.grid(axis="x", visible=False)
    return any_missing



def fig11_validation_per_material(table, out_png: Path, out_pdf: Path, *, budget: int = 10,
                                  metrics: Sequence[str] = VALIDATION_METRICS,
                                  strategies: Sequence[str] | None = None, logy: bool = True) -> None:
    """Energy, force and stress MAE per material at ``budget`` (pretrained zero-shot): median over seeds
    with IQR error bars, strategies side by side; missing values as grey crosses."""
    df = model_rows(material_rows(table), budget)
    mats = sorted(df["material"].unique())
    strats = ordered_strategies(strategies or df["strategy"].unique())
    with style():
        w = min(max(6.0, 0.12 * len(mats) * max(len(strats), 4) + 2), 16)
        fig, axes = plt.subplots(len(metrics), 1, figsize=(w, 1.9 * len(metrics) + 0.6), layout="constrained",
                                 sharex=True, squeeze=False)
        any_missing = False
        for ax, metric, letter in zip(axes[:, 0], metrics, "abcdefgh"):
            d = df[df["metric"] == metric]
            any_missing |= _dodged_points(ax, d, mats, strats)
            vals = d["value"].dropna()
            if logy and len(vals) and (vals > 0).all():
                ax.set_yscale("log")
                ax.autoscale_view()
                tidy_log_axis(ax.yaxis)
            ax.set_ylabel(metric_label(metric, unit_of(df, metric)))
            ax.set_title(f"({letter}) {METRIC_INFO.get(metric, (metric,))[0]}", loc="left")
            if vals.empty:
                mark_na(ax)
        material_ticks(axes[-1, 0], mats)
        hs = legend_handles(strats, line=False)
        if any_missing:
            hs.append(Line2D([], [], color="#999999", marker="x", lw=0, label="n/a (missing)"))
        fig.legend(handles=hs, loc="outside lower center", ncols=min(len(hs), 5))
        fig.suptitle(f"Errors on the held-out test structures per material, N = {budget} (pretrained: zero-shot); "
                     "median over seeds, bars: IQR", fontsize=9, x=0.01, ha="left")
        save(fig, out_png, out_pdf)

