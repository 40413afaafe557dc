"""How many labelled structures does a material need?

:func:`recommend` reads the answer off the tidy table of a finished study (the smallest budget whose
seed-median metric meets a target); :func:`predict_budget` extrapolates it to materials not fine-tuned yet,
from a cheap proxy measured on them (e.g. a committee's force disagreement on their pool, eV/Å) by a
log-log least-squares line ``ln N = a + b ln d`` across the measured materials, with a leave-one-out
uncertainty.
"""

from __future__ import annotations

import math
from typing import Mapping

import numpy as np
import pandas as pd

#: at least this many measured materials before a budget is predicted (with 2, a line fits exactly and
#: nothing is left to judge it by)
MIN_MATERIALS = 3


def recommend(table: pd.DataFrame, target: float, metric: str = "rmse", *, higher_is_better: bool = False) -> pd.DataFrame:
    """Per material x strategy x selection, the smallest budget ``N`` whose median over seeds of ``metric``
    is below ``target`` (above it with ``higher_is_better``).

    ``table``: the tidy table (columns ``material, strategy, budget, seed, metric, value, unit``, optionally
    ``selection``; without it every row counts as ``"random"``).  Reference rows are ignored; NaN values
    (missing runs) are left out of the medians.  Returns one row per group with ``budget_needed`` (NaN when
    no budget reaches the target), ``value`` (the median there, NaN otherwise), ``best_value`` (the best
    median over budgets), ``target``, ``metric``, ``unit`` and ``n_seeds`` (seeds behind the chosen median).
    """
    missing = {"material", "strategy", "budget", "seed", "metric", "value"} - set(table.columns)
    if missing:
        raise ValueError(f"table lacks column(s) {sorted(missing)}")
    d = table[(table["metric"] == metric) & (table["strategy"] != "reference")].copy()
    if "selection" not in d.columns:
        d["selection"] = "random"
    d["selection"] = d["selection"].fillna("random")
    if "unit" not in d.columns:
        d["unit"] = ""
    d["value"] = pd.to_numeric(d["value"], errors="coerce")
    keys = ["material", "strategy", "selection"]
    med = (d.groupby([*keys, "budget"], sort=True)
            .agg(median=("value", "median"), n_seeds=("value", "count"), unit=("unit", "first"))
            .reset_index())
    rows = []
    for group, g in med.groupby(keys, sort=True):
        g = g.sort_values("budget")
        ok = g["median"] >= target if higher_is_better else g["median"] < target
        best = g["median"].max() if higher_is_better else g["median"].min()
        hit = g[ok.fillna(False)]
        first = hit.iloc[0] if len(hit) else None
        rows.append({**dict(zip(keys, group)), "metric": metric, "target": float(target),
                     "budget_needed": float(first["budget"]) if first is not None else math.nan,
                     "value": float(first["median"]) if first is not None else math.nan,
                     "best_value": float(best), "unit": g["unit"].iloc[0],
                     "n_seeds": int(first["n_seeds"]) if first is not None else 0})
    return pd.DataFrame(rows, columns=[*keys, "metric", "target", "budget_needed", "value", "best_value", "unit",
                                       "n_seeds"])


def _fit(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Least-squares ``y = a + b x``: (a, b)."""
    b, a = np.polyfit(x, y, 1)
    return float(a), float(b)


def predict_budget(disagreements: Mapping[str, float], measured: Mapping[str, float]) -> dict:
    """Predict the budget of materials not fine-tuned yet from their disagreement.

    ``disagreements``: material -> proxy (> 0, e.g. zero-shot or first-round committee force disagreement,
    eV/Å) for every material, measured or not; ``measured``: material -> budget needed (from
    :func:`recommend`; NaN/None = never reached, left out of the fit).  Fits ``ln N = a + b ln d`` on the
    materials with both; the uncertainty is the leave-one-out residual spread ``s`` (RMS of ln N minus the
    prediction of the line fitted without that material), the interval ``N exp(±s)``.

    Returns ``{"ok", "reason", "n_fit", "materials_fit", "slope", "intercept", "loo_rms_log",
    "predictions": {material: {"disagreement", "budget", "low", "high"}}, "loo": {material: budget}}`` with
    a prediction for every material of ``disagreements`` not in the fit, and for every fitted material its
    leave-one-out prediction (the line through the others: the check of the method on measured materials).
    With fewer than :data:`MIN_MATERIALS` usable materials, ``ok`` is False, ``reason`` says so and every
    number is NaN.
    """
    used = sorted(m for m, n in measured.items()
                  if n is not None and np.isfinite(float(n)) and float(n) > 0
                  and m in disagreements and disagreements[m] is not None and float(disagreements[m]) > 0)
    todo = sorted(m for m in disagreements if m not in used)
    nan = math.nan
    out = {"ok": False, "reason": "", "n_fit": len(used), "materials_fit": used, "slope": nan, "intercept": nan,
           "loo_rms_log": nan, "loo": {},
           "predictions": {m: {"disagreement": disagreements[m], "budget": nan, "low": nan, "high": nan}
                           for m in todo}}
    if len(used) < MIN_MATERIALS:
        out["reason"] = (f"only {len(used)} material(s) with a measured budget and a disagreement; at least "
                         f"{MIN_MATERIALS} are needed to fit ln N vs ln d and judge the fit (leave-one-out)")
        return out
    x = np.log([float(disagreements[m]) for m in used])
    y = np.log([float(measured[m]) for m in used])
    if np.ptp(x) == 0:
        out["reason"] = "every measured material has the same disagreement: no trend to fit"
        return out
    a, b = _fit(x, y)
    loo = []
    for i in range(len(used)):
        keep = np.arange(len(used)) != i
        if np.ptp(x[keep]) == 0:
            continue
        ai, bi = _fit(x[keep], y[keep])
        loo.append(y[i] - (ai + bi * x[i]))
        out["loo"][used[i]] = math.exp(ai + bi * x[i])
    s = float(np.sqrt(np.mean(np.square(loo)))) if loo else nan
    out.update(ok=True, reason=f"fit on {len(used)} materials", slope=b, intercept=a, loo_rms_log=s)
    for m in todo:
        d = disagreements[m]
        if d is None or not float(d) > 0:
            continue
        n_hat = math.exp(a + b * math.log(float(d)))
        out["predictions"][m].update(budget=n_hat, low=n_hat * math.exp(-s), high=n_hat * math.exp(s))
    return out


def recommendation(table: pd.DataFrame, target: float, metric: str = "rmse",
                   disagreements: Mapping[str, float] | None = None) -> tuple[pd.DataFrame, dict]:
    """``results/summary/recommendation.csv``: :func:`recommend`'s rows, plus per material x selection a row of
    strategy ``best`` (the smallest N any strategy needs), and the prediction of that N from ``disagreements``
    (material -> committee force disagreement, eV/Å: :func:`predict_budget`), leave-one-out for the materials
    that were measured (so the prediction is checked against them) and plain for the others.  Returns the
    table and :func:`predict_budget`'s result (``ok`` False, with its reason, when it cannot fit)."""
    rec = recommend(table, target, metric)
    rows = [rec]
    if len(rec):
        best = (rec.groupby(["material", "selection"], sort=True)
                   .agg(budget_needed=("budget_needed", "min"), best_value=("best_value", "min"),
                        unit=("unit", "first")).reset_index())
        best = best.assign(strategy="best", metric=metric, target=float(target), value=math.nan, n_seeds=0)
        rows.append(best)
    out = pd.concat(rows, ignore_index=True)
    for col in ("disagreement", "predicted_budget", "predicted_low", "predicted_high"):
        out[col] = math.nan
    fit = {"ok": False, "reason": "no committee disagreement (the uncertainty selection measures it)"}
    if disagreements:
        measured = {m: n for m, n in out[(out.strategy == "best") & (out.selection == "random")]
                    [["material", "budget_needed"]].itertuples(index=False)}
        fit = predict_budget(disagreements, measured)
        spread = math.exp(fit["loo_rms_log"]) if fit["ok"] and np.isfinite(fit["loo_rms_log"]) else math.nan
        for m, d in disagreements.items():
            # a measured material: predicted from the others (leave one out), the check of the method
            n_hat = fit["loo"].get(m, fit["predictions"].get(m, {}).get("budget", math.nan))
            mask = (out.material == m) & (out.strategy == "best")
            out.loc[mask, "disagreement"] = d
            out.loc[mask, ["predicted_budget", "predicted_low", "predicted_high"]] = [
                n_hat, n_hat / spread, n_hat * spread]
    return out, fit
