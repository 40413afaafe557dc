"""What the figures read from the tidy table and the structure summaries, and the statistics they show.

Only presentation arithmetic happens here: medians / quartiles over seeds and materials, percentage
deviations from the reference, and the first budget at which a target accuracy is met.  Loaders are
tolerant: unparseable values become NaN and an unreadable structure summary is skipped with a warning, so
that a figure draws what exists and marks what is missing.  Band and surface files: :mod:`.bandfiles`.
"""

from __future__ import annotations

import json
import re
import warnings
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from .. import layout

TABLE_COLUMNS = ("material", "strategy", "budget", "seed", "metric", "value", "unit")

#: Pseudo-materials of the tidy table: pooled rows (e.g. new-phase precision/recall over all materials)
#: that are not a material of their own and are left out of per-material figures.
POOLED_MATERIALS: tuple[str, ...] = ("all",)


# ---- the tidy table ------------------------------------------------------------------------------
def load_table(path: str | Path | pd.DataFrame, selection: str | None = "random") -> pd.DataFrame:
    """The tidy metrics table, normalised: numeric ``value`` (unparseable -> NaN), integer budget/seed; the
    rows of one ``selection`` (default ``random``, the study's: every figure but fig12 compares strategies on
    the same training structures; the reference and the zero-shot model are ``random`` rows), or all (None)."""
    df = path.copy() if isinstance(path, pd.DataFrame) else pd.read_csv(path)
    if "selection" not in df.columns:
        df["selection"] = "random"
    df["selection"] = df["selection"].fillna("random").astype(str)
    if selection is not None:
        df = df[df["selection"] == selection]
    missing = [c for c in ("material", "strategy", "metric", "value") if c not in df.columns]
    if missing:
        raise ValueError(f"metrics table lacks column(s) {missing}; expected {list(TABLE_COLUMNS)}")
    for col in ("budget", "seed"):
        if col not in df.columns:
            df[col] = 0
        df[col] = pd.to_numeric(df[col], errors="coerce").fillna(0).astype(int)
    if "unit" not in df.columns:
        df["unit"] = ""
    df["unit"] = df["unit"].fillna("").astype(str)
    for col in ("material", "strategy", "metric"):
        df[col] = df[col].astype(str).str.strip()
    df["value"] = pd.to_numeric(df["value"], errors="coerce")
    return df.reset_index(drop=True)


def material_rows(table, selection: str | None = "random") -> pd.DataFrame:
    """The normalised table (a path or a DataFrame) without the pooled pseudo-materials; the rows of one
    ``selection`` or all (None), as :func:`load_table`."""
    df = load_table(table, selection=selection)
    return df[~df["material"].isin(POOLED_MATERIALS)].reset_index(drop=True)


def trained_on(df: pd.DataFrame, selection: str) -> pd.DataFrame:
    """The rows of models trained on ``selection``'s structures, and zero-shot's (it trains on none: its rows,
    stored as ``random``, belong to every selection)."""
    return df[(df["selection"] == selection) | (df["strategy"] == "pretrained")]


def model_rows(df: pd.DataFrame, budget: int | None) -> pd.DataFrame:
    """Model rows (no reference); at ``budget`` (pretrained always taken at its own budget 0)."""
    df = df[df["strategy"] != "reference"]
    if budget is None:
        return df
    return df[(df["budget"] == int(budget)) | (df["strategy"] == "pretrained")]


def unit_of(df: pd.DataFrame, metric: str) -> str | None:
    """The table's unit of ``metric`` (None when no row names one)."""
    units = df.loc[(df["metric"] == metric) & (df["unit"] != ""), "unit"]
    return str(units.iloc[0]) if len(units) else None


# ---- statistics ----------------------------------------------------------------------------------
def quartiles(values: pd.Series) -> tuple[float, float, float]:
    """(median, q25, q75) of the finite values (NaN when there is none)."""
    v = values.dropna().to_numpy(dtype=float)
    if v.size == 0:
        return (np.nan, np.nan, np.nan)
    q = np.percentile(v, [25, 50, 75])
    return float(q[1]), float(q[0]), float(q[2])


def summarise(df: pd.DataFrame, by: Sequence[str]) -> pd.DataFrame:
    """Median, q25, q75 and count of finite values of ``value`` grouped by ``by``."""
    rows = []
    for key, g in df.groupby(list(by), sort=False):
        key = key if isinstance(key, tuple) else (key,)
        med, lo, hi = quartiles(g["value"])
        rows.append(dict(zip(by, key), median=med, q25=lo, q75=hi, n=int(g["value"].notna().sum())))
    out = pd.DataFrame(rows, columns=[*by, "median", "q25", "q75", "n"])
    return out.astype({"median": float, "q25": float, "q75": float})


def deviations(table, metric: str, budget: int | None = None) -> pd.DataFrame:
    """Percentage deviation ``100 (model - reference) / |reference|`` per material x strategy (x budget).

    The reference value is the row's twin ``benchmark_<metric>`` (same material / strategy / budget / seed)
    when present, else the ``reference`` strategy's ``<metric>`` of the material. Seeds: median.
    Returns columns ``material, strategy, budget, deviation`` (NaN where model or reference is missing).
    """
    df = material_rows(table)
    mod = model_rows(df, budget)
    keys = ["material", "strategy", "budget", "seed"]
    val = mod[mod["metric"] == metric][keys + ["value"]]
    twin = mod[mod["metric"] == f"benchmark_{metric}"][keys + ["value"]].rename(columns={"value": "bench"})
    ref = (df[(df["strategy"] == "reference") & (df["metric"] == metric)]
           .groupby("material")["value"].median().rename("refval"))
    m = val.merge(twin.drop_duplicates(keys), on=keys, how="left").merge(ref, on="material", how="left")
    r = m["bench"].where(m["bench"].notna(), m["refval"]) if "bench" in m else m["refval"]
    with np.errstate(divide="ignore", invalid="ignore"):
        dev = 100.0 * (m["value"] - r) / r.abs()
    m["deviation"] = dev.replace([np.inf, -np.inf], np.nan)
    return m.groupby(["material", "strategy", "budget"], sort=False)["deviation"].median().reset_index()


def min_budget_to_target(table, metric: str = "rmse", target: float = 0.1,
                         selection: str = "random") -> pd.DataFrame:
    """Per material x strategy, the smallest budget whose seed-median ``metric`` is below ``target``, trained
    on ``selection``'s structures (zero-shot: whatever the selection, it trains on none).

    Columns ``material, strategy, min_budget, status`` with status ``reached`` / ``not reached`` / ``n/a``
    (no finite value at all). Pretrained reaching the target gives ``min_budget = 0``.
    """
    df = model_rows(material_rows(table, selection=None), None)
    d = trained_on(df, selection)
    d = d[d["metric"] == metric]
    med = d.groupby(["material", "strategy", "budget"])["value"].median().reset_index()
    rows = []
    for (mat, strat), g in med.groupby(["material", "strategy"]):
        g = g.sort_values("budget")
        ok = g[g["value"] < target]
        if len(ok):
            rows.append((mat, strat, int(ok["budget"].iloc[0]), "reached"))
        elif g["value"].notna().any():
            rows.append((mat, strat, np.nan, "not reached"))
        else:
            rows.append((mat, strat, np.nan, "n/a"))
    return pd.DataFrame(rows, columns=["material", "strategy", "min_budget", "status"])


# ---- structure summaries (structures/structure.json) ---------------------------------------------
def load_json(path: str | Path) -> Any:
    return json.loads(Path(path).read_text())


def load_structure(path: str | Path | Mapping) -> dict:
    """A ``structure.json`` as a dict (a dict passes through); elements derived from the formula if absent."""
    data = dict(path) if isinstance(path, Mapping) else load_json(path)
    if not data.get("elements") and data.get("formula"):
        data["elements"] = sorted(set(re.findall(r"[A-Z][a-z]?", str(data["formula"]))))
    return data


def structure_material(path: str | Path) -> str:
    """The material of a structure summary path laid out as ``layout.structure(material, "json")``, else
    the file's stem."""
    path = Path(path)
    inside = Path(layout.structure("_", "json")).relative_to(layout.material_dir("_"))  # structures/structure.json
    if path.parts[-len(inside.parts):] == inside.parts and len(path.parts) > len(inside.parts):
        return path.parents[len(inside.parts) - 1].name
    return path.stem


def load_structures(structures) -> dict[str, dict]:
    """Mapping material -> structure dict, from a mapping (values dicts or paths) or a list of paths: each
    material's summary in the results layout (``layout.structure(material, "json")``, under any results
    root) is named after its material, any other file after its stem."""
    out: dict[str, dict] = {}
    items = list(structures.items()) if isinstance(structures, Mapping) else [
        (structure_material(p), p) for p in map(Path, structures)]
    for name, value in items:
        try:
            out[str(name)] = load_structure(value)
        except (OSError, ValueError) as exc:
            warnings.warn(f"structure of {name} unreadable: {exc}")
    return out
