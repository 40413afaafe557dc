"""Figures of the study, drawn from the tidy table and the per-material JSON files.

Everything here only *reads* results (``results/summary/metrics.csv``, ``structure.json``,
``bands.json``, ``surface.json``) and draws; no physics is recomputed. The only arithmetic is
presentation: medians / quartiles over seeds and materials, percentage deviations from the reference,
and the first budget at which a target accuracy is met.

Every figure function has the signature ``figNN_name(<inputs>, out_png, out_pdf, **options) -> None``
and writes a 300 dpi PNG and a PDF atomically. All figures share :func:`style` and the fixed strategy
colours / order :data:`STRATEGY_COLORS`, :data:`STRATEGY_ORDER`.

Missing data (NaN values from failed jobs, absent files) never raises: what exists is drawn and what is
missing is marked ("n/a" text, a grey cross, or a hatched panel).

Band files (``bands.json``) are read by :func:`load_bands`, which accepts

* ``distances``: one list per segment (or one flat list for a single segment); per-segment lists that
  restart at 0 are made cumulative;
* ``frequencies``: per segment ``[q][band]`` in THz (a transposed ``[band][q]`` segment is detected);
* ``labels``: seekpath pairs ``[["GAMMA", "X"], ...]``, phonopy's flat list together with
  ``connections``, a flat list of ``n_segments + 1`` (all connected) or ``2 * n_segments`` labels, or none.

Surface files (``surface.json``): the evaluate stage's ``{"surface": <phononft.modes.energy_surface
dict>, "relaxation": ..., "modes_source": ...}`` (``amplitudes`` in Å of maximum atomic displacement on
both axes, ``energies_meV_per_atom`` 1-D or ``[i][j]``), or generically
``energy[i][j] = E(amplitudes_1[i], amplitudes_2[j])`` in meV/atom (a transposed matrix is detected
when the shape allows); a 1-D ``energy`` (or no ``amplitudes_2``) is a single-mode scan.
"""

from __future__ import annotations

import contextlib
import json
import math
import re
import shutil
import subprocess
import sys
import tempfile
import textwrap
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping, Sequence

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.collections import LineCollection  # noqa: E402
from matplotlib.colors import BoundaryNorm, LogNorm  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.patches import FancyBboxPatch, Patch, Rectangle  # noqa: E402

from . import layout  # noqa: E402
from .io import atomic_path  # noqa: E402

# --------------------------------------------------------------------------------------------------
# Shared style
# --------------------------------------------------------------------------------------------------

#: Fixed order of strategies in every legend and axis (unknown strategies are appended alphabetically).
STRATEGY_ORDER: tuple[str, ...] = ("pretrained", "scratch", "naive", "frozen", "multihead", "lora",
                                   "equitrain", "l2sp")

#: One colour per strategy, identical in every figure; ``reference`` is black.
STRATEGY_COLORS: dict[str, str] = {
    "reference": "#000000",
    "pretrained": "#7f7f7f",
    "scratch": "#8c564b",
    "naive": "#1f77b4",
    "frozen": "#17becf",
    "multihead": "#9467bd",
    "lora": "#d62728",
    "equitrain": "#ff7f0e",
    "l2sp": "#2ca02c",
}

#: One marker per strategy (helps in grey-scale print and for colour-blind readers).
STRATEGY_MARKERS: dict[str, str] = {
    "reference": "*", "pretrained": "o", "scratch": "s", "naive": "D", "frozen": "v", "multihead": "^",
    "lora": "P", "equitrain": "X", "l2sp": "h",
}

#: What each strategy trains (fig01's panel).
STRATEGY_DESCRIPTIONS: dict[str, str] = {
    "pretrained": "nothing: the foundation model, zero-shot",
    "scratch": "all weights of a freshly initialised MACE, target data only",
    "naive": "all foundation weights (full fine-tuning)",
    "frozen": "upper blocks only; embedding and interactions frozen (--freeze)",
    "multihead": "all weights, new head, with replay of the pretraining data",
    "lora": "low-rank adapters on the equivariant linears (mace --lora), merged",
    "equitrain": "low-rank adapters on the radial-MLP weights (Equitrain-style, peft), merged",
    "l2sp": "all weights, L2-SP penalty pulling toward the pretrained weights",
}

_FALLBACK_COLORS = ["#bcbd22", "#e377c2", "#393b79", "#637939", "#8c6d31", "#843c39", "#7b4173"]

#: Axis labels and units of the table's metrics (the table's own ``unit`` column wins when present).
METRIC_INFO: dict[str, tuple[str, str]] = {
    "rmse": ("band RMSE", "THz"),
    "mae": ("band MAE", "THz"),
    "r2": ("band R²", ""),
    "phonon_rmse": ("phonon RMSE", "THz"),
    "min_frequency": ("min. frequency", "THz"),
    "max_frequency": ("max. frequency", "THz"),
    "heat_capacity": ("heat capacity $C_V$", "J/K/mol"),
    "entropy": ("entropy $S$", "J/K/mol"),
    "free_energy": ("free energy $F$", "kJ/mol"),
    "bulk_modulus_eos": ("bulk modulus (EOS)", "GPa"),
    "bulk_modulus_vrh": ("bulk modulus $B_\\mathrm{VRH}$", "GPa"),
    "shear_modulus_vrh": ("shear modulus $G_\\mathrm{VRH}$", "GPa"),
    "kappa_slack": ("thermal cond. $\\kappa_\\mathrm{Slack}$", "W/m/K"),
    "debye_temperature": ("Debye temperature $\\Theta_D$", "K"),
    "energy_mae": ("energy MAE", "meV/atom"),
    "force_mae": ("force MAE", "meV/Å"),
    "stress_mae": ("stress MAE", "GPa"),
    "new_phase": ("new phase", ""),
    "train_seconds": ("training time", "s"),
    "eval_seconds": ("evaluation time", "s"),
    "reference_calculations": ("reference calculations", "count"),
}

#: Short names used as panel titles of the deviation figures.
PROPERTY_SHORT: dict[str, str] = {
    "heat_capacity": "$C_V$", "entropy": "$S$", "free_energy": "$F$",
    "bulk_modulus_eos": "$B_\\mathrm{EOS}$", "bulk_modulus_vrh": "$B_\\mathrm{VRH}$",
    "shear_modulus_vrh": "$G_\\mathrm{VRH}$", "kappa_slack": "$\\kappa_\\mathrm{Slack}$",
    "debye_temperature": "$\\Theta_D$",
}

#: fig03's properties (thermal and elastic).
DEVIATION_PROPERTIES: tuple[str, ...] = ("heat_capacity", "entropy", "free_energy", "bulk_modulus_vrh",
                                         "shear_modulus_vrh", "kappa_slack", "debye_temperature")
#: fig09's properties (thermal only).
THERMAL_PROPERTIES: tuple[str, ...] = ("heat_capacity", "entropy", "free_energy")
#: fig08 / fig11 metrics (validation-set errors).
VALIDATION_METRICS: tuple[str, ...] = ("energy_mae", "force_mae", "stress_mae")

CRYSTAL_SYSTEMS: tuple[str, ...] = ("triclinic", "monoclinic", "orthorhombic", "tetragonal", "trigonal",
                                    "hexagonal", "cubic")

_RC = {
    "figure.dpi": 100,
    "savefig.dpi": 300,
    "font.size": 8,
    "axes.titlesize": 9,
    "axes.labelsize": 8,
    "xtick.labelsize": 7,
    "ytick.labelsize": 7,
    "legend.fontsize": 7,
    "legend.title_fontsize": 7,
    "legend.frameon": False,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.color": "#e5e5e5",
    "grid.linewidth": 0.5,
    "axes.axisbelow": True,
    "lines.linewidth": 1.3,
    "lines.markersize": 4,
    "pdf.fonttype": 42,
    "ps.fonttype": 42,
    "image.cmap": "viridis",
}


@contextlib.contextmanager
def style() -> Iterator[None]:
    """The shared style of every figure (an ``rc_context``; nothing global is changed)."""
    with plt.rc_context(_RC):
        yield


def strategy_color(strategy: str) -> str:
    """The fixed colour of a strategy (label such as ``"lora (N=10)"`` accepted)."""
    s = _strategy_of(strategy)
    if s in STRATEGY_COLORS:
        return STRATEGY_COLORS[s]
    return _FALLBACK_COLORS[sum(map(ord, s)) % len(_FALLBACK_COLORS)]


def strategy_marker(strategy: str) -> str:
    return STRATEGY_MARKERS.get(_strategy_of(strategy), "o")


def ordered_strategies(strategies: Iterable[str]) -> list[str]:
    """Strategies in the fixed order; unknown ones appended alphabetically; ``reference`` dropped."""
    present = {s for s in strategies if isinstance(s, str) and s != "reference"}
    known = [s for s in STRATEGY_ORDER if s in present]
    return known + sorted(present - set(STRATEGY_ORDER))


def _strategy_of(label: str) -> str:
    label = str(label).strip()
    if label in STRATEGY_COLORS:
        return label
    head = re.split(r"[\s/(,:]", label, maxsplit=1)[0]
    return head


def metric_label(metric: str, unit: str | None = None) -> str:
    """``"force MAE (meV/Å)"``: axis label of a metric, with its unit."""
    name, default_unit = METRIC_INFO.get(metric, (metric.replace("_", " "), ""))
    unit = unit if unit not in (None, "") and not (isinstance(unit, float) and math.isnan(unit)) else default_unit
    return f"{name} ({unit})" if unit else name


def model_label(strategy: str, budget: int | None = None) -> str:
    """Display label of one model: ``"pretrained"`` or ``"lora (N=10)"``."""
    if strategy in ("pretrained", "reference") or budget is None:
        return strategy
    return f"{strategy} (N={int(budget)})"


def _save(fig, out_png: str | Path, out_pdf: str | Path) -> None:
    for path, fmt in ((out_png, "png"), (out_pdf, "pdf")):
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format=fmt, dpi=300, bbox_inches="tight", pad_inches=0.05)
    plt.close(fig)


def _na(ax, text: str = "n/a", **kw) -> None:
    """Mark an empty panel as missing: hatched background and a note."""
    ax.add_patch(Rectangle((0, 0), 1, 1, transform=ax.transAxes, facecolor="none", edgecolor="#bbbbbb",
                           hatch="///", linewidth=0, zorder=0))
    ax.text(0.5, 0.5, text, transform=ax.transAxes, ha="center", va="center", color="#555555",
            bbox=dict(facecolor="white", edgecolor="none", pad=2), **kw)


# --------------------------------------------------------------------------------------------------
# Loaders
# --------------------------------------------------------------------------------------------------

TABLE_COLUMNS = ("material", "strategy", "budget", "seed", "metric", "value", "unit")


def load_table(path: str | Path | pd.DataFrame) -> pd.DataFrame:
    """The tidy metrics table, normalised: numeric ``value`` (unparseable -> NaN), integer budget/seed."""
    df = path.copy() if isinstance(path, pd.DataFrame) else pd.read_csv(path)
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


#: Pseudo-materials of the tidy table: pooled rows (e.g. new-phase precision/recall over all materials)
#: that are not a material of their own and are left out of per-material figures.
POOLED_MATERIALS: tuple[str, ...] = ("all",)


def _table(table) -> pd.DataFrame:
    df = load_table(table)
    return df[~df["material"].isin(POOLED_MATERIALS)].reset_index(drop=True)


def _unit_of(df: pd.DataFrame, metric: str) -> str | None:
    units = df.loc[(df["metric"] == metric) & (df["unit"] != ""), "unit"]
    return str(units.iloc[0]) if len(units) else None


def load_json(path: str | Path) -> Any:
    return json.loads(Path(path).read_text())


def load_structure(path: str | Path | Mapping) -> dict:
    """A ``structure.json`` as a dict (a dict passes through); elements derived from the formula if absent."""
    data = dict(path) if isinstance(path, Mapping) else load_json(path)
    if not data.get("elements") and data.get("formula"):
        data["elements"] = sorted(set(re.findall(r"[A-Z][a-z]?", str(data["formula"]))))
    return data


def _structures(structures) -> dict[str, dict]:
    """Mapping material -> structure dict, from a mapping (values dicts or paths) or a list of paths."""
    out: dict[str, dict] = {}
    if isinstance(structures, Mapping):
        items = list(structures.items())
    else:
        items = []
        for p in structures:
            p = Path(p)
            items.append((p.parent.name if p.name == "structure.json" else p.stem, p))
    for name, value in items:
        try:
            out[str(name)] = load_structure(value)
        except (OSError, ValueError) as exc:
            warnings.warn(f"structure of {name} unreadable: {exc}")
    return out


_GREEK = {"GAMMA": "Γ", "SIGMA": "Σ", "DELTA": "Δ", "LAMBDA": "Λ"}


def pretty_label(label: Any) -> str:
    """``"GAMMA"`` -> ``"Γ"``, ``"X_1"`` -> ``"X$_{1}$"`` (``"G"`` is read as Γ too)."""
    if label is None:
        return ""
    s = str(label).strip().replace("$", "").lstrip("\\")
    base, _, sub = s.partition("_")
    if base.upper() in _GREEK:
        base = _GREEK[base.upper()]
    elif base == "G":
        base = "Γ"
    return f"{base}$_{{{sub}}}$" if sub else base


@dataclass
class Bands:
    """A band structure: per segment distances ``(nq,)`` and frequencies ``(nq, nbands)`` in THz."""

    distances: list[np.ndarray]
    frequencies: list[np.ndarray]
    labels: list[tuple[str, str]] = field(default_factory=list)

    @property
    def nseg(self) -> int:
        return len(self.distances)

    def select(self, start: int | None = None, stop: int | None = None) -> "Bands":
        idx = list(range(self.nseg))[slice(start, stop)]
        if not idx:
            raise ValueError(f"segment range {start}:{stop} is empty (band structure has {self.nseg} segments)")
        return Bands([self.distances[i] for i in idx], [self.frequencies[i] for i in idx],
                     [self.labels[i] for i in idx])

    def ticks(self) -> tuple[list[float], list[str]]:
        """Tick positions at segment ends, labels merged (``"U|K"`` at a discontinuity)."""
        pos, lab = [], []
        for i, (d, (a, b)) in enumerate(zip(self.distances, self.labels)):
            a, b = pretty_label(a), pretty_label(b)
            if i == 0:
                pos.append(float(d[0]))
                lab.append(a)
            elif lab[-1] != a and a:
                lab[-1] = f"{lab[-1]}|{a}" if lab[-1] else a
            pos.append(float(d[-1]))
            lab.append(b)
        return pos, lab

    @property
    def fmin(self) -> float:
        return float(min(np.nanmin(f) for f in self.frequencies))

    @property
    def fmax(self) -> float:
        return float(max(np.nanmax(f) for f in self.frequencies))


def _segment_labels(labels: Any, connections: Any, nseg: int) -> list[tuple[str, str]]:
    empty = [("", "")] * nseg
    if not labels:
        return empty
    labels = list(labels)
    if all(isinstance(x, (list, tuple)) for x in labels):
        # seekpath style: one (start, end) pair per segment
        pairs = [tuple(str(v) for v in x[:2]) if len(x) >= 2 else ("", "") for x in labels]
        return (pairs + empty)[:nseg]
    labels = [str(x) for x in labels]
    if connections is not None and len(connections) >= nseg:
        out, k = [], 0
        for i in range(nseg):
            if k + 1 >= len(labels):
                return empty
            out.append((labels[k], labels[k + 1]))
            k += 1 if connections[i] else 2
        return out
    if len(labels) == nseg + 1:
        return [(labels[i], labels[i + 1]) for i in range(nseg)]
    if len(labels) == 2 * nseg:
        return [(labels[2 * i], labels[2 * i + 1]) for i in range(nseg)]
    return empty


def load_bands(path: str | Path | Mapping | Bands) -> Bands:
    """Read a ``bands.json`` (phonopy band-structure dict style, see the module doc) into :class:`Bands`."""
    if isinstance(path, Bands):
        return path
    data = dict(path) if isinstance(path, Mapping) else load_json(path)
    freqs_raw = data["frequencies"]
    dists_raw = data.get("distances")
    # a single segment given flat: frequencies (nq, nb), distances (nq,)
    if np.ndim(freqs_raw[0]) == 1 if len(freqs_raw) else False:
        freqs_raw = [freqs_raw]
        dists_raw = [dists_raw] if dists_raw is not None else None
    freqs = [np.asarray(f, dtype=float) for f in freqs_raw]
    if dists_raw is None:
        dists_raw = [np.arange(len(f), dtype=float) for f in freqs]
    if len(dists_raw) and np.ndim(dists_raw[0]) == 0:
        dists_raw = [dists_raw]
    dists = [np.asarray(d, dtype=float).ravel() for d in dists_raw]
    if len(dists) != len(freqs):
        raise ValueError(f"bands: {len(dists)} distance segments but {len(freqs)} frequency segments")
    offset, out_d, out_f = 0.0, [], []
    for d, f in zip(dists, freqs):
        if f.ndim == 1:
            f = f[:, None]
        if f.shape[0] != len(d) and f.shape[1] == len(d):
            f = f.T
        if f.shape[0] != len(d):
            raise ValueError(f"bands: segment with {len(d)} distances but frequencies of shape {f.shape}")
        if out_d and d[0] < out_d[-1][-1] - 1e-8:
            d = d - d[0] + out_d[-1][-1]  # per-segment distances restarting at 0: make cumulative
        out_d.append(d)
        out_f.append(f)
    labels = _segment_labels(data.get("labels"), data.get("connections") or data.get("path_connections"),
                             len(out_d))
    return Bands(out_d, out_f, labels)


def _maybe_bands(value) -> Bands | None:
    if value is None:
        return None
    try:
        return load_bands(value)
    except (OSError, ValueError, KeyError, TypeError, IndexError) as exc:
        warnings.warn(f"band structure unreadable ({exc}); marked as n/a")
        return None


def _aligned(model: Bands, ref: Bands) -> Bands:
    """The model's frequencies on the reference's x axis (same fractional q-path; segment-wise linear map)."""
    if model.nseg != ref.nseg:
        return model
    dists = []
    for dm, dr in zip(model.distances, ref.distances):
        if len(dm) == len(dr):
            dists.append(dr)
        else:
            span = (dm[-1] - dm[0]) or 1.0
            dists.append(dr[0] + (dm - dm[0]) / span * (dr[-1] - dr[0]))
    return Bands(dists, model.frequencies, ref.labels)


@dataclass
class Surface:
    """Energy along imaginary modes: ``energy[i, j] = E(a1[i], a2[j])`` (meV/atom), or 1-D ``E(a1[i])``."""

    a1: np.ndarray
    a2: np.ndarray | None
    energy: np.ndarray
    modes: list = field(default_factory=list)
    amplitude_unit: str = "Å"
    relaxation: dict | None = None  #: the evaluate stage's relaxation along the modes (end phase, energy gain)

    @property
    def is_2d(self) -> bool:
        return self.a2 is not None and self.energy.ndim == 2


def _from_energy_surface(data: Mapping) -> dict:
    """The evaluate stage's ``surface.json`` (``{"surface": <phononft.modes.energy_surface dict>,
    "relaxation": ..., "modes_source": ...}``) in the generic form: one amplitude grid (Å of maximum
    atomic displacement) on both axes, ``energies_meV_per_atom`` 1-D (one mode) or 2-D ``[i][j]``,
    and the probed modes (q, branch, frequency) for the axis labels."""
    surf = data["surface"] if isinstance(data.get("surface"), Mapping) else data
    n_modes = int(surf.get("n_modes") or 0)
    energy = surf.get("energies_meV_per_atom")
    if n_modes == 0 or energy is None or np.size(energy) == 0:
        source = data.get("modes_source", "none")
        raise ValueError(f"no energy surface (n_modes {n_modes}, modes source {source!r})")
    amps = list(surf.get("amplitudes") or [])
    qs, bands, freqs = (list(surf.get(k) or []) for k in ("mode_q", "mode_band", "mode_frequency"))
    modes = []
    for i in range(n_modes):
        m: dict = {}
        if i < len(qs):
            m["q"] = qs[i]
        if i < len(freqs) and freqs[i] is not None:
            m["frequency"] = freqs[i]
        if i < len(bands):
            m["band"] = bands[i]
        modes.append(m)
    out = {"energy": energy, "amplitudes_1": amps, "modes": modes, "amplitude_unit": "Å",
           "relaxation": data.get("relaxation") if isinstance(data.get("relaxation"), Mapping) else None}
    if np.ndim(energy) == 2:
        out["amplitudes_2"] = amps
    return out


def load_surface(path: str | Path | Mapping | Surface) -> Surface:
    """Read a ``surface.json`` (see the module doc) into :class:`Surface`.

    Accepts the evaluate stage's file (``{"surface": {"amplitudes", "energies_meV_per_atom",
    "n_modes", "mode_q", "mode_band", "mode_frequency", ...}, "relaxation": ..., "modes_source": ...}``)
    as well as the generic ``{"amplitudes_1", "amplitudes_2", "energy", "modes"}``. A file without a
    surface (no imaginary mode probed: ``n_modes`` 0) raises ``ValueError`` (drawn as n/a)."""
    if isinstance(path, Surface):
        return path
    data = dict(path) if isinstance(path, Mapping) else load_json(path)
    if "energy" not in data and ("surface" in data or "energies_meV_per_atom" in data):
        data = _from_energy_surface(data)
    energy = np.asarray(data["energy"], dtype=float)
    a1 = data.get("amplitudes_1", data.get("amplitudes"))
    a2 = data.get("amplitudes_2")
    unit = str(data.get("amplitude_unit", "Å"))
    if energy.ndim == 2 and 1 in energy.shape:
        energy = energy.ravel()
    a1 = np.asarray(a1, dtype=float) if a1 is not None else np.arange(energy.shape[0], dtype=float)
    if energy.ndim == 1 or a2 is None:
        energy = energy.ravel()
        if len(a1) != len(energy):
            raise ValueError(f"surface: {len(a1)} amplitudes but {len(energy)} energies")
        return Surface(a1, None, energy, list(data.get("modes") or []), unit, data.get("relaxation"))
    a2 = np.asarray(a2, dtype=float)
    if energy.shape != (len(a1), len(a2)):
        if energy.shape == (len(a2), len(a1)):
            energy = energy.T
        else:
            raise ValueError(f"surface: energy shape {energy.shape} does not match amplitudes "
                             f"({len(a1)}, {len(a2)})")
    return Surface(a1, a2, energy, list(data.get("modes") or []), unit, data.get("relaxation"))


def _maybe_surface(value) -> Surface | None:
    if value is None:
        return None
    try:
        return load_surface(value)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        warnings.warn(f"surface unreadable ({exc}); marked as n/a")
        return None


def eval_files(results_dir: str | Path, material: str, *, budget: int, seed: int = 0,
               strategies: Iterable[str] = STRATEGY_ORDER, filename: str = "bands.json",
               pretrained_budget: int = 0) -> dict[str, Path | None]:
    """``{model label: path}`` of one material's evaluated models at ``budget`` (None where absent).

    ``phononft.layout.evaluation`` with ``results_dir`` in place of ``results/``; ``pretrained`` is looked up
    at ``n{pretrained_budget}``.
    """
    out: dict[str, Path | None] = {}
    for s in strategies:
        b = pretrained_budget if s == "pretrained" else budget
        p = Path(results_dir) / Path(layout.evaluation(material, s, b, seed, filename)).relative_to(layout.RESULTS)
        out[model_label(s, None if s == "pretrained" else b)] = p if p.exists() else None
    return out


# --------------------------------------------------------------------------------------------------
# Table helpers
# --------------------------------------------------------------------------------------------------

def _models(df: pd.DataFrame, budget: int | None) -> pd.DataFrame:
    """Model rows (no reference); at ``budget`` (pretrained always taken at its own budget 0)."""
    df = df[df["strategy"] != "reference"]
    if budget is None:
        return df
    return df[(df["budget"] == int(budget)) | (df["strategy"] == "pretrained")]


def _quartiles(values: pd.Series) -> tuple[float, float, float]:
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
        med, lo, hi = _quartiles(g["value"])
        rows.append(dict(zip(by, key), median=med, q25=lo, q75=hi, n=int(g["value"].notna().sum())))
    out = pd.DataFrame(rows, columns=[*by, "median", "q25", "q75", "n"])
    return out.astype({"median": float, "q25": float, "q75": float})


def deviations(table, metric: str, budget: int | None = None) -> pd.DataFrame:
    """Percentage deviation ``100 (model - reference) / |reference|`` per material x strategy (x budget).

    The reference value is the row's twin ``benchmark_<metric>`` (same material / strategy / budget / seed)
    when present, else the ``reference`` strategy's ``<metric>`` of the material. Seeds: median.
    Returns columns ``material, strategy, budget, deviation`` (NaN where model or reference is missing).
    """
    df = _table(table)
    mod = _models(df, budget)
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
    out = (m.groupby(["material", "strategy", "budget"], sort=False)["deviation"]
           .median().reset_index())
    return out


def min_budget_to_target(table, metric: str = "rmse", target: float = 0.1) -> pd.DataFrame:
    """Per material x strategy, the smallest budget whose seed-median ``metric`` is below ``target``.

    Columns ``material, strategy, min_budget, status`` with status ``reached`` / ``not reached`` / ``n/a``
    (no finite value at all). Pretrained reaching the target gives ``min_budget = 0``.
    """
    df = _models(_table(table), None)
    d = df[df["metric"] == metric]
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


def _tidy_log_axis(axis) -> None:
    """Plain numbers (0.1, 2, 50) instead of 10^x / 2x10^1 on a log axis; minor labels only when the
    axis spans less than about one decade."""
    fmt = matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}")
    axis.set_major_formatter(fmt)
    lo, hi = axis.get_view_interval()
    majors = (math.floor(math.log10(hi)) - math.ceil(math.log10(lo)) + 1) if lo > 0 and hi > lo else 99
    if majors < 2:
        axis.set_minor_locator(matplotlib.ticker.LogLocator(10, subs=(2, 5)))
        axis.set_minor_formatter(fmt)
    else:
        axis.set_minor_formatter(matplotlib.ticker.NullFormatter())


def _legend_handles(strategies: Sequence[str], *, line: bool = True, missing: Sequence[str] = ()) -> list:
    hs = []
    for s in strategies:
        lab = s + (": n/a" if s in missing else "")
        hs.append(Line2D([], [], color=strategy_color(s), marker=strategy_marker(s), lw=1.3 if line else 0,
                         ls="--" if (line and s == "pretrained") else "-", label=lab))
    return hs


# --------------------------------------------------------------------------------------------------
# fig01: overview (rule graph + strategies)
# --------------------------------------------------------------------------------------------------

def parse_dot(dot: str) -> tuple[dict[str, str], list[tuple[str, str]]]:
    """Nodes ``{id: label}`` and edges ``[(src, dst)]`` of a (Snakemake rule-graph) DOT text."""
    nodes: dict[str, str] = {}
    edges: list[tuple[str, str]] = []
    body = dot.split("{", 1)[-1]
    for stmt in re.split(r"[;\n]", body):
        stmt = stmt.strip()
        if not stmt or stmt.startswith(("graph", "node", "edge", "}", "//", "#")):
            continue
        m = re.match(r'^"?([\w.]+)"?\s*->\s*"?([\w.]+)"?', stmt)
        if m:
            # a -> b -> c chains
            chain = re.findall(r'"?([\w.]+)"?\s*(?:->|$)', stmt.split("[")[0])
            for a, b in zip(chain, chain[1:]):
                edges.append((a, b))
                nodes.setdefault(a, a)
                nodes.setdefault(b, b)
            continue
        m = re.match(r'^"?([\w.]+)"?\s*\[(.*)\]?', stmt)
        if m:
            lab = re.search(r'label\s*=\s*"([^"]*)"', m.group(2)) or re.search(r"label\s*=\s*([\w.]+)",
                                                                              m.group(2))
            nodes[m.group(1)] = lab.group(1) if lab else m.group(1)
    return nodes, edges


#: fig01's default simplification of the rule graph: every figure rule (and the rule-graph rule) becomes
#: one node; the aggregating target rules are dropped.
FIGURE_RULES = r"^(fig\d+_\w+|figure_\w+|rulegraph|figures|report)$"
DROPPED_RULES = ("all",)


def collapse_graph(nodes: Mapping[str, str], edges: Sequence[tuple[str, str]], *,
                   groups: Mapping[str, str] | None = None,
                   drop: Iterable[str] = ()) -> tuple[dict[str, str], list[tuple[str, str]]]:
    """Merge the nodes whose *label* matches a regex of ``groups`` (``{regex: group label}``; ``{n}`` in
    the label is replaced by the number of merged rules) into one node each; drop the nodes labelled as
    in ``drop`` and their edges. Edges inside a group disappear, parallel edges are merged."""
    drop = set(drop)
    rep: dict[str, str] = {}
    members: dict[str, list[str]] = {}
    for n, lab in nodes.items():
        if lab in drop:
            continue
        for k, rx in enumerate(groups or {}):
            if re.match(rx, lab):
                gid = f"__group{k}"
                rep[n] = gid
                members.setdefault(gid, []).append(lab)
                break
        else:
            rep[n] = n
    out_nodes: dict[str, str] = {}
    for n, lab in nodes.items():
        if n in rep and rep[n] == n:
            out_nodes[n] = lab
    for k, glab in enumerate((groups or {}).values()):
        gid = f"__group{k}"
        if gid in members:
            out_nodes[gid] = glab.replace("{n}", str(len(members[gid])))
    out_edges: list[tuple[str, str]] = []
    for a, b in edges:
        if a not in rep or b not in rep or rep[a] == rep[b]:
            continue
        e = (rep[a], rep[b])
        if e not in out_edges:
            out_edges.append(e)
    return out_nodes, out_edges


def to_dot(nodes: Mapping[str, str], edges: Sequence[tuple[str, str]]) -> str:
    """A plain DOT text (Snakemake's rule-graph style) of ``nodes`` / ``edges``."""
    lines = ["digraph rulegraph {", "    graph[bgcolor=white, margin=0];",
             "    node[shape=box, style=rounded, fontname=sans, fontsize=10, penwidth=1.5, color=\"#4a6fa5\"];",
             "    edge[penwidth=1.2, color=grey];"]
    ids = {n: i for i, n in enumerate(nodes)}
    lines += [f'    {ids[n]}[label = "{lab}"];' for n, lab in nodes.items()]
    lines += [f"    {ids[a]} -> {ids[b]}" for a, b in edges if a in ids and b in ids]
    return "\n".join(lines + ["}"]) + "\n"


def _layers(nodes: Mapping[str, str], edges: Sequence[tuple[str, str]]) -> dict[str, tuple[int, float]]:
    """Simple layered layout: layer = longest path from a source; order by barycentre sweeps."""
    preds: dict[str, list[str]] = {n: [] for n in nodes}
    succs: dict[str, list[str]] = {n: [] for n in nodes}
    for a, b in edges:
        if a != b:
            preds[b].append(a)
            succs[a].append(b)
    layer: dict[str, int] = {}

    def depth(n: str, stack: frozenset = frozenset()) -> int:
        if n in layer:
            return layer[n]
        if n in stack:  # cycle guard
            return 0
        d = 1 + max((depth(p, stack | {n}) for p in preds[n]), default=-1)
        layer[n] = d
        return d

    for n in nodes:
        depth(n)
    by_layer: dict[int, list[str]] = {}
    for n in nodes:
        by_layer.setdefault(layer[n], []).append(n)
    order = {n: float(i) for lst in by_layer.values() for i, n in enumerate(sorted(lst, key=nodes.get))}
    for _ in range(4):
        for rng, nb in ((sorted(by_layer), preds), (sorted(by_layer, reverse=True), succs)):
            for L in rng:
                lst = by_layer[L]
                bary = {n: (np.mean([order[p] for p in nb[n]]) if nb[n] else order[n]) for n in lst}
                lst.sort(key=lambda n: (bary[n], nodes[n]))
                width = len(lst)
                for i, n in enumerate(lst):
                    order[n] = i - (width - 1) / 2
    return {n: (layer[n], order[n]) for n in nodes}


def _draw_dag(ax, nodes: Mapping[str, str], edges: Sequence[tuple[str, str]]) -> None:
    pos = _layers(nodes, edges)
    nlayers = 1 + max((l for l, _ in pos.values()), default=0)
    maxw = max((sum(1 for l2, _ in pos.values() if l2 == l) for l in range(nlayers)), default=1)
    xy = {n: (o, -l) for n, (l, o) in pos.items()}
    ax.set_xlim(-maxw / 2 - 0.2, maxw / 2 + 0.2)
    ax.set_ylim(-nlayers + 0.5, 0.5)
    ax.axis("off")
    fs = 7 if maxw <= 4 else 6 if maxw <= 6 else 5
    for a, b in edges:
        if a in xy and b in xy and a != b:
            ax.annotate("", xy=xy[b], xytext=xy[a],
                        arrowprops=dict(arrowstyle="-|>", color="#888888", lw=0.8, shrinkA=8, shrinkB=8,
                                        mutation_scale=8))
    for n, (x, y) in xy.items():
        ax.text(x, y, nodes[n], ha="center", va="center", fontsize=fs, zorder=3,
                bbox=dict(boxstyle="round,pad=0.3", facecolor="#f2f6fb", edgecolor="#4a6fa5", lw=0.8))


def _render_dot(dot: str) -> np.ndarray | None:
    exe = shutil.which("dot")
    if not exe:
        return None
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "graph.png"
        try:
            subprocess.run([exe, "-Tpng", "-Gdpi=200", "-o", str(out)], input=dot.encode(), check=True,
                           capture_output=True, timeout=60)
            return plt.imread(out)
        except (subprocess.SubprocessError, OSError, SyntaxError, ValueError) as exc:
            warnings.warn(f"graphviz dot failed ({exc}); drawing the rule graph with matplotlib")
            return None


def rulegraph_command(snakefile: str | Path, configfile: str | Path, workdir: str | Path = ".") -> list[str]:
    """The child ``snakemake --rulegraph`` command of :func:`write_rulegraph` (same interpreter)."""
    return [sys.executable, "-m", "snakemake", "--snakefile", str(snakefile), "--directory", str(workdir),
            "--configfile", str(configfile), "--rulegraph", "--nolock", "--workflow-profile", "none"]


def write_rulegraph(snakefile: str | Path, config: Mapping, out: str | Path, *, workdir: str | Path = ".",
                    log: str | Path | None = None, timeout: float = 1800) -> str:
    """Write the workflow's rule graph (DOT of ``snakemake --rulegraph``, default target) to ``out``.

    Runs Snakemake in a child process on ``snakefile`` with ``config`` (the run's *resolved* config,
    dumped to a temporary file, so ``--configfile``/``--config`` of the parent are reproduced exactly)
    and ``--nolock``: the parent that runs this job holds the lock of the same working directory.
    Raises ``RuntimeError`` (with the child's stderr in ``log``) if Snakemake fails.
    """
    import yaml

    with tempfile.TemporaryDirectory() as tmp:
        cfg = Path(tmp) / "config.yaml"
        cfg.write_text(yaml.safe_dump(json.loads(json.dumps(dict(config))), sort_keys=False))
        cmd = rulegraph_command(snakefile, cfg, Path(workdir).resolve())
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if log is not None:
        Path(log).parent.mkdir(parents=True, exist_ok=True)
        Path(log).write_text(" ".join(cmd) + f"\nexit status {res.returncode}\n" + res.stderr)
    start, end = res.stdout.find("digraph"), res.stdout.rfind("}")
    if res.returncode != 0 or start < 0 or end < start:
        raise RuntimeError(f"snakemake --rulegraph failed (exit {res.returncode}): {res.stderr[-2000:]}")
    dot = res.stdout[start:end + 1] + "\n"
    with atomic_path(out) as tmp_out:
        Path(tmp_out).write_text(dot)
    return dot


def fig01_overview(rulegraph: str | Path, out_png: Path, out_pdf: Path, *,
                   strategies: Sequence[str] = STRATEGY_ORDER, use_graphviz: bool = True,
                   title: str | None = "Workflow rule graph",
                   collapse: Mapping[str, str] | None = None, drop: Iterable[str] | None = None) -> None:
    """Overview: the workflow's rule graph (DOT from ``snakemake --rulegraph``, as text or a file path)
    rendered with graphviz ``dot`` if available (else drawn with matplotlib), beside the strategies.

    ``collapse`` (``{label regex: group label}``) and ``drop`` (labels) simplify the graph (see
    :func:`collapse_graph`); by default the figure rules become one node ``figures (n rules)`` and the
    target rule ``all`` is dropped. Pass ``collapse={}``, ``drop=()`` for the graph as it is.
    """
    text = str(rulegraph)
    if "{" not in text and Path(text).exists():
        text = Path(text).read_text()
    nodes, edges = parse_dot(text)
    groups = {FIGURE_RULES: "figures ({n} rules)"} if collapse is None else collapse
    drop = DROPPED_RULES if drop is None else tuple(drop)
    if groups or drop:
        nodes, edges = collapse_graph(nodes, edges, groups=groups, drop=drop)
        text = to_dot(nodes, edges)
    img = _render_dot(text) if use_graphviz else None
    with style():
        fig = plt.figure(figsize=(10, 5.2), layout="constrained")
        ax_g, ax_s = fig.subplots(1, 2, width_ratios=[1.25, 1])
        if img is not None:
            ax_g.imshow(img)
            ax_g.axis("off")
        elif nodes:
            _draw_dag(ax_g, nodes, edges)
        else:
            ax_g.axis("off")
            _na(ax_g, "rule graph n/a")
        if title:
            ax_g.set_title(f"(a) {title}", loc="left")
        ax_s.axis("off")
        ax_s.set_title("(b) Fine-tuning strategies: what is trained", loc="left")
        ax_s.set_xlim(0, 1)
        n = len(strategies)
        ax_s.set_ylim(n - 0.4, -0.6)
        for i, s in enumerate(strategies):
            ax_s.add_patch(FancyBboxPatch((0.0, i - 0.18), 0.035, 0.36, boxstyle="round,pad=0.005",
                                          facecolor=strategy_color(s), edgecolor="none"))
            ax_s.text(0.055, i, s, va="center", ha="left", fontweight="bold", fontsize=8)
            desc = textwrap.fill(STRATEGY_DESCRIPTIONS.get(s, ""), 44)
            ax_s.text(0.3, i, desc, va="center", ha="left", fontsize=7)
        _save(fig, out_png, out_pdf)


# --------------------------------------------------------------------------------------------------
# fig02: dataset
# --------------------------------------------------------------------------------------------------

def fig02_dataset(structures, out_png: Path, out_pdf: Path) -> None:
    """Dataset: crystal systems (bar counts) and atoms per primitive cell (histogram).

    ``structures``: mapping material -> structure dict / ``structure.json`` path, or a list of paths.
    """
    data = _structures(structures)
    systems = [str(d.get("crystal_system") or "unknown").lower() for d in data.values()]
    natoms = [d.get("natoms_primitive") for d in data.values()]
    natoms = [int(n) for n in natoms if n is not None and not (isinstance(n, float) and math.isnan(n))]
    cats = list(CRYSTAL_SYSTEMS) + sorted(set(systems) - set(CRYSTAL_SYSTEMS))
    counts = [systems.count(c) for c in cats]
    with style():
        fig, (a1, a2) = plt.subplots(1, 2, figsize=(7.5, 3), layout="constrained", width_ratios=[1.2, 1])
        bars = a1.bar(range(len(cats)), counts, color="#4a6fa5")
        a1.bar_label(bars, fontsize=6, padding=1)
        a1.set_xticks(range(len(cats)), cats, rotation=35, ha="right")
        a1.set_ylabel("materials (count)")
        a1.set_title("(a) crystal systems", loc="left")
        a1.grid(axis="x", visible=False)
        a1.set_ylim(0, max(counts + [1]) * 1.15)
        a1.yaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
        if natoms:
            lo, hi = min(natoms), max(natoms)
            bins = np.arange(lo - 0.5, hi + 1.5, 1) if hi - lo <= 40 else 20
            a2.hist(natoms, bins=bins, color="#4a6fa5", edgecolor="white", linewidth=0.5)
            a2.xaxis.get_major_locator().set_params(integer=True)
            a2.yaxis.get_major_locator().set_params(integer=True)
        else:
            _na(a2, "natoms_primitive n/a")
        a2.set_xlabel("atoms per primitive cell")
        a2.set_ylabel("materials (count)")
        shown = f"{len(natoms)} of {len(data)}" if len(natoms) < len(data) else f"{len(data)}"
        a2.set_title(f"(b) cell sizes ({shown} materials; others n/a)" if len(natoms) < len(data)
                     else f"(b) cell sizes ({shown} materials)", loc="left")
        _save(fig, out_png, out_pdf)


# --------------------------------------------------------------------------------------------------
# fig03 / fig09: deviations of properties
# --------------------------------------------------------------------------------------------------

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
        ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(4) if scale == "linear"
                                   else matplotlib.ticker.SymmetricalLogLocator(base=10, linthresh=10))
        if scale == "symlog":
            ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}"))
            ax.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
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
    df = _table(table)
    with style():
        fig = _deviation_panels(df, properties, budget, strategies, ncols, xscale,
                                f"Deviation from the reference, N = {budget} training structures "
                                "(pretrained: zero-shot); one point per material")
        _save(fig, out_png, out_pdf)


def fig09_thermal_deviation(table, out_png: Path, out_pdf: Path, *, budget: int | None = None,
                            properties: Sequence[str] = THERMAL_PROPERTIES,
                            strategies: Sequence[str] | None = None, xscale: str = "auto") -> None:
    """Deviation (%) of heat capacity, entropy and free energy per strategy.

    ``budget=None`` (default): median |deviation| over materials with IQR against the budget, one line
    per strategy (pretrained as a horizontal band); ``budget=N``: box + strip plot at that budget.
    """
    df = _table(table)
    with style():
        if budget is not None:
            fig = _deviation_panels(df, properties, budget, strategies, len(properties), xscale,
                                    f"Thermal properties: deviation from the reference, N = {budget}")
            _save(fig, out_png, out_pdf)
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
            got = _budget_panel(ax, curves[p], strats, ylabel=f"|deviation| of {PROPERTY_SHORT.get(p, p)} (%)")
            missing &= set(strats) - got
            ax.set_title(METRIC_INFO.get(p, (p,))[0], loc="center")
        fig.legend(handles=_legend_handles(strats, missing=missing) +
                   [Patch(color="#7f7f7f", alpha=0.25, label="IQR")], loc="outside right upper",
                   title="strategy")
        fig.suptitle("Thermal properties: median |deviation| from the reference over materials "
                     "(band: IQR)", fontsize=9, x=0.01, ha="left")
        _save(fig, out_png, out_pdf)


# --------------------------------------------------------------------------------------------------
# Curves over budget (budget_curves, fig08)
# --------------------------------------------------------------------------------------------------

def _budget_panel(ax, d: pd.DataFrame, strats: Sequence[str], *, ylabel: str, logy: bool | None = None) -> set:
    """Median and IQR over all rows (materials x seeds) per strategy and budget; pretrained: horizontal band.
    Returns the strategies that had at least one finite value."""
    got: set[str] = set()
    budgets_all = sorted(b for b in d.loc[d["strategy"] != "pretrained", "budget"].unique() if b > 0)
    for s in strats:
        g = d[d["strategy"] == s]
        c = strategy_color(s)
        if s == "pretrained":
            med, lo, hi = _quartiles(g["value"])
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
        ax.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
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
        _tidy_log_axis(ax.yaxis)
    if not got:
        _na(ax)
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
    df = _models(_table(table), None)
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
            unit = _unit_of(df, metric)
            for c, mat in enumerate(cols):
                ax = axes[r, c]
                d = df[df["metric"] == metric]
                if mat is not None:
                    d = d[d["material"] == mat]
                got = _budget_panel(ax, d, strats, ylabel=metric_label(metric, unit) if c == 0 else "",
                                    logy=logy)
                missing &= set(strats) - got
                if r == 0:
                    ax.set_title(mat if mat is not None else f"all materials ({len(mats)})")
                if r < len(metrics) - 1:
                    ax.set_xlabel("")
        fig.legend(handles=_legend_handles(strats, missing=missing) +
                   [Patch(color="#7f7f7f", alpha=0.25, label="IQR (seeds)")],
                   loc="outside right upper", title="strategy")
        _save(fig, out_png, out_pdf)


def fig08_validation_errors(table, out_png: Path, out_pdf: Path, *,
                            metrics: Sequence[str] = VALIDATION_METRICS,
                            strategies: Sequence[str] | None = None, logy: bool | None = True) -> None:
    """Energy, force and stress MAE on the validation sets against the budget: median with IQR over
    materials x seeds, one line per strategy (log-x); pretrained as a horizontal dashed line + band."""
    df = _models(_table(table), None)
    strats = ordered_strategies(strategies or df["strategy"].unique())
    with style():
        fig, axes = plt.subplots(1, len(metrics), figsize=(2.9 * len(metrics) + 1.3, 2.7),
                                 layout="constrained", squeeze=False)
        missing = set(strats)
        for ax, metric, letter in zip(axes.flat, metrics, "abcdefgh"):
            d = df[df["metric"] == metric]
            got = _budget_panel(ax, d, strats, ylabel=metric_label(metric, _unit_of(df, metric)), logy=logy)
            missing &= set(strats) - got
            ax.set_title(f"({letter}) {METRIC_INFO.get(metric, (metric,))[0]}", loc="left")
        fig.legend(handles=_legend_handles(strats, missing=missing) +
                   [Patch(color="#7f7f7f", alpha=0.25, label="IQR")],
                   loc="outside right upper", title="strategy")
        fig.suptitle("Errors on the held-out test structures: median over materials and seeds "
                     "(band: inter-quartile range)",
                     fontsize=9, x=0.01, ha="left")
        _save(fig, out_png, out_pdf)


# --------------------------------------------------------------------------------------------------
# fig11: validation errors per material
# --------------------------------------------------------------------------------------------------

def _dodged_points(ax, d: pd.DataFrame, mats: Sequence[str], strats: Sequence[str], *, width: float = 0.8):
    """Per material (x) and strategy (dodged): seed-median with IQR error bars; NaN -> grey cross."""
    k = len(strats)
    offs = (np.arange(k) - (k - 1) / 2) * (width / max(k, 1))
    any_missing = False
    for j, s in enumerate(strats):
        c = strategy_color(s)
        for i, m in enumerate(mats):
            g = d[(d["strategy"] == s) & (d["material"] == m)]
            med, lo, hi = _quartiles(g["value"])
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


def _material_ticks(ax, mats: Sequence[str]) -> None:
    rot = 0 if len(mats) <= 4 and max((len(m) for m in mats), default=0) <= 10 else (
        45 if len(mats) <= 15 else 90)
    ax.set_xticks(range(len(mats)), mats, rotation=rot, ha="right" if rot == 45 else "center",
                  rotation_mode="anchor" if rot == 45 else "default")


def fig11_validation_per_material(table, out_png: Path, out_pdf: Path, *, budget: int = 10,
                                  metrics: Sequence[str] = VALIDATION_METRICS,
                                  strategies: Sequence[str] | None = None, logy: bool = True) -> None:
    """Energy, force and stress MAE per material at ``budget`` (pretrained zero-shot): median over seeds
    with IQR error bars, strategies side by side; missing values as grey crosses."""
    df = _models(_table(table), budget)
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
                _tidy_log_axis(ax.yaxis)
            ax.set_ylabel(metric_label(metric, _unit_of(df, metric)))
            ax.set_title(f"({letter}) {METRIC_INFO.get(metric, (metric,))[0]}", loc="left")
            if vals.empty:
                _na(ax)
        _material_ticks(axes[-1, 0], mats)
        hs = _legend_handles(strats, line=False)
        if any_missing:
            hs.append(Line2D([], [], color="#999999", marker="x", lw=0, label="n/a (missing)"))
        fig.legend(handles=hs, loc="outside lower center", ncols=min(len(hs), 5))
        fig.suptitle(f"Errors on the held-out test structures per material, N = {budget} (pretrained: zero-shot); "
                     "median over seeds, bars: IQR", fontsize=9, x=0.01, ha="left")
        _save(fig, out_png, out_pdf)


# --------------------------------------------------------------------------------------------------
# fig06: cost
# --------------------------------------------------------------------------------------------------

def fig06_cost(table, out_png: Path, out_pdf: Path, *, metric: str = "rmse", target: float = 0.1,
               strategies: Sequence[str] | None = None,
               cost_metric: str = "reference_calculations") -> None:
    """(a) Per material, the minimum number of training structures (= reference calculations) needed to
    reach ``metric < target`` per strategy, with the cost of the finite-displacement reference phonon run
    (the reference's ``reference_calculations``) as a black scale line; (b) fraction of materials that
    reach the target against the budget."""
    df = _table(table)
    mb = min_budget_to_target(df, metric, target)
    mods = _models(df, None)
    mats = sorted(set(mods["material"]) | set(df.loc[df["strategy"] == "reference", "material"]))
    strats = ordered_strategies(strategies or mods["strategy"].unique())
    ref_cost = (df[(df["strategy"] == "reference") & (df["metric"] == cost_metric)]
                .groupby("material")["value"].median())
    unit = _unit_of(df, metric) or METRIC_INFO.get(metric, ("", ""))[1]
    budgets = sorted(b for b in mods.loc[mods["metric"] == metric, "budget"].unique() if b > 0)
    reached = mb.loc[mb["status"] == "reached", "min_budget"]
    pos = [v for v in list(reached) + list(ref_cost.dropna()) + budgets if v > 0]
    lo = min(pos) if pos else 1.0
    hi = max(pos) if pos else 10.0
    y_zero, y_none = lo / 3.0, hi * 3.0
    y_na = y_zero / 3.0
    with style():
        w = min(max(7.5, 0.45 * len(mats) + 4.5), 16)
        fig, (ax, ax2) = plt.subplots(1, 2, figsize=(w, 3.2 if len(mats) <= 15 else 3.8), layout="constrained",
                                      width_ratios=[max(w - 4.6, 3.0), 2.4])
        k = len(strats)
        offs = (np.arange(k) - (k - 1) / 2) * (0.8 / max(k, 1))
        any_na = False
        for j, s in enumerate(strats):
            g = mb[mb["strategy"] == s].set_index("material")
            for i, m in enumerate(mats):
                if m not in g.index or g.loc[m, "status"] == "n/a":
                    any_na = True
                    ax.plot(i + offs[j], y_na, marker="x", color="#999999", ms=3.5, zorder=2)
                    continue
                st = g.loc[m, "status"]
                y = y_none if st == "not reached" else (g.loc[m, "min_budget"] or y_zero)
                ax.plot(i + offs[j], y, marker=strategy_marker(s), color=strategy_color(s), ms=4.5,
                        mfc="none" if st == "not reached" else strategy_color(s), zorder=3, lw=0)
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
        ax.yaxis.set_minor_locator(matplotlib.ticker.NullLocator())
        ax.set_ylim((y_na if any_na else y_zero) / 1.8, y_none * 1.8)
        for yb in (y_zero * 1.35, y_none / 1.35):
            ax.axhline(yb, color="#cccccc", lw=0.6, ls=":")
        ax.set_xlim(-0.5, len(mats) - 0.5)
        ax.grid(axis="x", visible=False)
        _material_ticks(ax, mats)
        ax.set_ylabel("reference calculations\n(training structures N)")
        ax.set_title(f"(a) min. N for {METRIC_INFO.get(metric, (metric,))[0]} < {target:g} {unit}", loc="left")
        # (b) fraction of materials reaching the target vs budget
        n_mat = max(len(set(mods["material"])), 1)
        for s in strats:
            g = mb[mb["strategy"] == s]
            if g.empty or (g["status"] == "n/a").all():
                continue
            c = strategy_color(s)
            if s == "pretrained":
                ax2.axhline(100 * (g["status"] == "reached").sum() / n_mat, color=c, ls="--")
                continue
            xs = budgets or [1]
            frac = [100 * ((g["status"] == "reached") & (g["min_budget"] <= b)).sum() / n_mat for b in xs]
            ax2.step(xs, frac, where="post", color=c, marker=strategy_marker(s), ms=3.5)
        if budgets:
            ax2.set_xscale("log")
            ax2.set_xticks(budgets, [str(int(b)) for b in budgets])
            ax2.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
            if len(budgets) == 1:
                ax2.set_xlim(budgets[0] / 2, budgets[0] * 2)
        ax2.set_ylim(-3, 103)
        ax2.set_xlabel("training structures N")
        ax2.set_ylabel("materials reaching target (%)")
        ax2.set_title("(b) success rate", loc="left")
        hs = _legend_handles(strats, line=False)
        hs += [Line2D([], [], color="black", lw=1.6, label="reference phonon run\n(finite displacements)"),
               Line2D([], [], color="#555555", marker="o", mfc="none", lw=0, label="not reached")]
        if any_na:
            hs.append(Line2D([], [], color="#aaaaaa", marker="x", lw=0, label="n/a (missing)"))
        fig.legend(handles=hs, loc="outside right upper", title="strategy")
        _save(fig, out_png, out_pdf)


# --------------------------------------------------------------------------------------------------
# Band structures: fig04, fig10, fig05
# --------------------------------------------------------------------------------------------------

def _plot_bands(ax, b: Bands, *, color: str, lw: float = 1.0, ls: str = "-", alpha: float = 1.0,
                zorder: int = 2, label: str | None = None) -> None:
    segs = [np.column_stack([d, f[:, j]]) for d, f in zip(b.distances, b.frequencies)
            for j in range(f.shape[1])]
    lc = LineCollection(segs, colors=color, linewidths=lw, linestyles=[ls], alpha=alpha, zorder=zorder,
                        label=label)
    ax.add_collection(lc, autolim=True)
    ax.autoscale_view()


def _band_axes(ax, ref: Bands, *, ylim=None, ylabel: bool = True) -> None:
    pos, lab = ref.ticks()
    ax.set_xticks(pos, lab)
    for p in pos[1:-1]:
        ax.axvline(p, color="#999999", lw=0.6, zorder=1)
    ax.set_xlim(pos[0], pos[-1])
    ax.grid(axis="x", visible=False)
    ax.axhline(0, color="#555555", lw=0.6, ls=":", zorder=1)
    if ylim is not None:
        ax.set_ylim(*ylim)
    if ylabel:
        ax.set_ylabel("frequency (THz)")
    if len(pos) > 12:
        ax.tick_params(axis="x", labelsize=6)


def _freq_limits(ref: Bands, models: Iterable[Bands | None]) -> tuple[float, float]:
    lo, hi = ref.fmin, ref.fmax
    for m in models:
        if m is not None:
            lo, hi = min(lo, m.fmin), max(hi, m.fmax)
    lo = min(lo, 0.0)
    pad = 0.05 * (hi - lo or 1.0)
    return lo - (pad if lo < 0 else 0.0), hi + pad


def _load_models(models: Mapping[str, Any] | None, ref: Bands) -> dict[str, Bands | None]:
    out = {}
    for k, v in (models or {}).items():
        b = _maybe_bands(v)
        out[str(k)] = _aligned(b, ref) if b is not None else None
    return out


def _ordered_labels(labels: Iterable[str]) -> list[str]:
    order = {s: i for i, s in enumerate(STRATEGY_ORDER)}
    return sorted(labels, key=lambda l: (order.get(_strategy_of(l), len(order)), l))


def fig04_band_section(reference, models: Mapping[str, Any], out_png: Path, out_pdf: Path, *,
                       segments: tuple[int | None, int | None] = (0, 3), material: str | None = None,
                       ylim: tuple[float, float] | None = None) -> None:
    """A section of one material's band structure: reference (black) with the zero-shot and fine-tuned
    models overlaid. ``models``: ``{label: bands.json path | dict | Bands | None}`` (labels such as
    ``"pretrained"``, ``"lora (N=10)"`` pick the strategy colour; None marks a missing model);
    ``segments``: (start, stop) slice of path segments."""
    ref_full = load_bands(reference)
    start, stop = segments
    ref = ref_full.select(start, stop)
    mods = {k: (v.select(start, stop) if v is not None and v.nseg == ref_full.nseg else v)
            for k, v in _load_models(models, ref_full).items()}
    labels = _ordered_labels(mods)
    with style():
        fig, ax = plt.subplots(figsize=(5.2, 3.4), layout="constrained")
        hs = []
        for lab in labels:
            b = mods[lab]
            c = strategy_color(lab)
            if b is None:
                hs.append(Line2D([], [], color=c, lw=1, ls="--", label=f"{lab}: n/a", alpha=0.5))
                continue
            _plot_bands(ax, b, color=c, lw=0.9, ls=(0, (4, 1.5)), zorder=3)
            hs.append(Line2D([], [], color=c, lw=0.9, ls=(0, (4, 1.5)), label=lab))
        _plot_bands(ax, ref, color="black", lw=1.6, alpha=0.85, zorder=2)
        hs.insert(0, Line2D([], [], color="black", lw=1.6, label="reference"))
        _band_axes(ax, ref, ylim=ylim or _freq_limits(ref, mods.values()))
        ax.set_xlabel("wave vector")
        if material:
            ax.set_title(material, loc="left")
        fig.legend(handles=hs, loc="outside right upper")
        _save(fig, out_png, out_pdf)


def fig10_band_grid(reference, models: Mapping[str, Any], out_png: Path, out_pdf: Path, *,
                    material: str | None = None, ncols: int = 4,
                    annotations: Mapping[str, str] | None = None,
                    ylim: tuple[float, float] | None = None) -> None:
    """Full band structure of one material: reference (black) vs each model (colour), one small panel per
    model. ``annotations``: optional ``{label: text}`` shown in the panel (e.g. ``"RMSE 0.12 THz"``, read
    from the table by the caller); a missing model (None / unreadable) gives a hatched "n/a" panel."""
    ref = load_bands(reference)
    mods = _load_models(models, ref)
    labels = _ordered_labels(mods) or ["(no models)"]
    n = len(labels)
    ncols = max(1, min(ncols, n))
    nrows = math.ceil(n / ncols)
    lims = ylim or _freq_limits(ref, mods.values())
    with style():
        fig, axes = plt.subplots(nrows, ncols, figsize=(2.5 * ncols + 0.4, 2.1 * nrows + 0.4),
                                 layout="constrained", sharey=True, squeeze=False)
        for k, ax in enumerate(axes.flat):
            if k >= n:
                ax.axis("off")
                continue
            lab = labels[k]
            b = mods.get(lab)
            _plot_bands(ax, ref, color="black", lw=1.3, alpha=0.8, zorder=2)
            _band_axes(ax, ref, ylim=lims, ylabel=(k % ncols == 0))
            ax.set_title(lab, color=strategy_color(lab), fontsize=8)
            if b is None:
                _na(ax, "model n/a", fontsize=7)
                continue
            _plot_bands(ax, b, color=strategy_color(lab), lw=0.9, ls=(0, (4, 1.5)), zorder=3)
            if annotations and annotations.get(lab):
                ax.text(0.98, 0.03, annotations[lab], transform=ax.transAxes, ha="right", va="bottom",
                        fontsize=6, bbox=dict(facecolor="white", edgecolor="none", alpha=0.8, pad=1))
            if len(ref.ticks()[0]) > 8:
                ax.tick_params(axis="x", labelsize=5, labelrotation=0)
        handles = [Line2D([], [], color="black", lw=1.3, label="reference"),
                   Line2D([], [], color="#555555", lw=0.9, ls=(0, (4, 1.5)), label="model (strategy colour)")]
        fig.legend(handles=handles, loc="outside lower center", ncols=2)
        fig.suptitle(f"Band structure{' of ' + material if material else ''}: reference vs each model",
                     fontsize=9, x=0.01, ha="left")
        _save(fig, out_png, out_pdf)


def _mode_label(s: Surface, i: int) -> str:
    base = f"amplitude $Q_{i + 1}$ ({s.amplitude_unit})" if s.amplitude_unit else f"amplitude $Q_{i + 1}$"
    if i < len(s.modes):
        m = s.modes[i]
        if isinstance(m, Mapping):
            bits = []
            if "label" in m:
                bits.append(str(m["label"]))
            elif "q" in m or "qpoint" in m:
                q = m.get("q", m.get("qpoint"))
                bits.append("q=(" + ",".join(f"{float(x):g}" for x in np.ravel(q)) + ")")
            if "frequency" in m:
                bits.append(f"{float(m['frequency']):.2f} THz")
            if bits:
                return base + "\n" + ", ".join(bits)
        elif isinstance(m, str):
            return base + "\n" + m
    return base


def _surface_note(s: Surface) -> str:
    """``"min -1.3 meV/atom"`` plus the end of the relaxation along the modes, when the file has one."""
    lines = [f"min {float(np.nanmin(s.energy)):.3g} meV/atom"]
    r = s.relaxation or {}
    sg = r.get("final_spacegroup_1e-1") or r.get("final_spacegroup_1e-3")
    if sg:
        gain = r.get("energy_gain_meV_per_atom")
        lines.append(f"relaxed: {sg}")
        if gain is not None and np.isfinite(float(gain)):
            lines.append(f"  {-float(gain):.3g} meV/atom")
    return "\n".join(lines)


def fig05_imaginary_modes(reference_bands, model_bands: Mapping[str, Any], reference_surface,
                          model_surfaces: Mapping[str, Any], out_png: Path, out_pdf: Path, *,
                          material: str | None = None,
                          segments: tuple[int | None, int | None] = (None, None), levels: int = 14,
                          ncols: int = 4, cmap: str = "viridis", energy_max: float | None = None) -> None:
    """Imaginary modes: (a) band structure, reference and models overlaid (negative = imaginary);
    (b) the energy surface along the two modes (meV/atom), reference and models side by side as contour
    plots with one shared colour scale; a 1-D surface (one mode) is drawn as overlaid curves.

    The colour scale spans [lowest minimum, ``energy_max``] (default: 4 x |lowest minimum| when there is
    a well, so that shallow wells are not lost next to the steep walls; higher energies saturate). Each
    panel marks its minimum and, when the file has one, the end of the relaxation along the modes
    (space group, energy gain per atom)."""
    ref_full = load_bands(reference_bands)
    start, stop = segments
    ref = ref_full.select(start, stop)
    mods = {k: (v.select(start, stop) if v is not None and v.nseg == ref_full.nseg else v)
            for k, v in _load_models(model_bands, ref_full).items()}
    surfs: dict[str, Surface | None] = {"reference": _maybe_surface(reference_surface)}
    for k, v in (model_surfaces or {}).items():
        surfs[str(k)] = _maybe_surface(v)
    surf_labels = ["reference"] + _ordered_labels([k for k in surfs if k != "reference"])
    two_d = any(s is not None and s.is_2d for s in surfs.values())
    # 2-D: one contour panel per available surface (the reference's panel always, hatched if missing);
    # the models without a surface are listed in a note
    missing = [l for l in surf_labels if surfs[l] is None or (two_d and not surfs[l].is_2d)]
    panels = [l for l in surf_labels if l == "reference" or l not in missing]
    n = len(panels)
    nc = max(1, min(ncols, n)) if two_d else 1
    nr = math.ceil(n / nc) if two_d else 1
    with style():
        fig = plt.figure(figsize=(2.3 * max(nc, 3) + 1.2, 2.9 + 2.3 * nr), layout="constrained")
        top, bottom = fig.subfigures(2, 1, height_ratios=[2.9, 2.3 * nr])
        ax = top.subplots()
        hs = [Line2D([], [], color="black", lw=1.6, label="reference")]
        for lab in _ordered_labels(mods):
            b = mods[lab]
            c = strategy_color(lab)
            if b is None:
                hs.append(Line2D([], [], color=c, ls="--", alpha=0.5, label=f"{lab}: n/a"))
                continue
            _plot_bands(ax, b, color=c, lw=0.9, ls=(0, (4, 1.5)), zorder=3)
            hs.append(Line2D([], [], color=c, lw=0.9, ls=(0, (4, 1.5)), label=lab))
        _plot_bands(ax, ref, color="black", lw=1.6, alpha=0.85, zorder=2)
        lo, hi = _freq_limits(ref, mods.values())
        _band_axes(ax, ref, ylim=(lo, hi))
        if lo < 0:
            ax.axhspan(lo, 0, color="#d62728", alpha=0.06, lw=0, zorder=0)
            ax.text(0.005, 0.02, "imaginary", transform=ax.transAxes, fontsize=6, color="#a02020",
                    va="bottom")
        ax.set_title("(a) band structure" + (f" of {material}" if material else "") +
                     " (negative: imaginary)", loc="left")
        top.legend(handles=hs, loc="outside right upper")
        # (b) surfaces
        if two_d:
            es = [s.energy for s in surfs.values() if s is not None and s.is_2d]
            vmin = float(min(np.nanmin(e) for e in es))
            vmax = float(max(np.nanmax(e) for e in es))
            if energy_max is not None:
                vmax = min(vmax, float(energy_max))
            elif vmin < 0:
                # the wells are shallow next to the walls at large amplitude: show [min, 4 |min|]
                vmax = min(vmax, 4.0 * abs(vmin))
            if not vmax > vmin:
                vmax = vmin + 1e-6
            lv = matplotlib.ticker.MaxNLocator(levels).tick_values(vmin, vmax)
            clipped = any(np.nanmax(e) > lv[-1] + 1e-9 for e in es)
            axs = bottom.subplots(nr, nc, squeeze=False, sharex=True, sharey=True)
            cs = None
            for k, a in enumerate(axs.flat):
                if k >= n:
                    a.axis("off")
                    continue
                lab = panels[k]
                s = surfs[lab]
                a.set_title(lab, fontsize=8, color=strategy_color(lab))
                a.grid(False)
                if s is None or not s.is_2d:
                    _na(a, "surface n/a", fontsize=7)
                    continue
                X, Y = np.meshgrid(s.a1, s.a2, indexing="ij")
                cs = a.contourf(X, Y, s.energy, levels=lv, cmap=cmap, extend="max" if clipped else "neither")
                a.contour(X, Y, s.energy, levels=lv, colors="white", linewidths=0.3, alpha=0.6)
                if np.nanmin(s.energy) < 0 < np.nanmax(s.energy):
                    a.contour(X, Y, s.energy, levels=[0.0], colors="white", linewidths=1.0)
                a.plot(0, 0, marker="+", color="white", ms=5)
                i, j = np.unravel_index(int(np.nanargmin(s.energy)), s.energy.shape)
                a.plot(s.a1[i], s.a2[j], marker="x", color="#d62728", ms=4, mew=1.2, clip_on=False, zorder=5)
                a.text(0.03, 0.03, _surface_note(s), transform=a.transAxes, fontsize=5.5, va="bottom",
                       ha="left", bbox=dict(facecolor="white", edgecolor="none", alpha=0.8, pad=1))
                a.set_aspect("equal", adjustable="box")
                if k % nc == 0:
                    a.set_ylabel(_mode_label(s, 1))
                if k + nc >= n:
                    a.set_xlabel(_mode_label(s, 0))
                    a.tick_params(axis="x", labelbottom=True)
            if cs is not None:
                cb = bottom.colorbar(cs, ax=axs, shrink=0.9, pad=0.02)
                cb.set_label("energy (meV/atom)")
            note = f"; n/a: {', '.join(m for m in missing if m != 'reference')}" if \
                [m for m in missing if m != "reference"] else ""
            bottom.suptitle(textwrap.fill("(b) energy along the imaginary modes (shared colour scale; white "
                                          f"line: 0, red x: minimum){note}", 120), x=0.01, ha="left",
                            fontsize=9)
        else:
            a = bottom.subplots()
            drawn = False
            for lab in surf_labels:
                s = surfs[lab]
                if s is None:
                    continue
                e = s.energy if s.energy.ndim == 1 else s.energy[:, 0]
                a.plot(s.a1, e, color=strategy_color(lab), lw=1.6 if lab == "reference" else 1.0,
                       ls="-" if lab == "reference" else (0, (4, 1.5)), marker=strategy_marker(lab), ms=2.5,
                       label=lab)
                drawn = True
                a.set_xlabel(_mode_label(s, 0))
            if not drawn:
                _na(a, "surfaces n/a")
            elif missing:
                a.text(0.99, 0.97, "n/a: " + ", ".join(missing), transform=a.transAxes, ha="right", va="top",
                       fontsize=6, color="#777777")
            a.set_ylabel("energy (meV/atom)")
            a.set_title("(b) energy along the imaginary mode", loc="left")
            if drawn:
                bottom.legend(loc="outside right upper")
        _save(fig, out_png, out_pdf)


# --------------------------------------------------------------------------------------------------
# fig07: periodic table
# --------------------------------------------------------------------------------------------------

ELEMENTS: tuple[str, ...] = (
    "H", "He", "Li", "Be", "B", "C", "N", "O", "F", "Ne", "Na", "Mg", "Al", "Si", "P", "S", "Cl", "Ar", "K",
    "Ca", "Sc", "Ti", "V", "Cr", "Mn", "Fe", "Co", "Ni", "Cu", "Zn", "Ga", "Ge", "As", "Se", "Br", "Kr",
    "Rb", "Sr", "Y", "Zr", "Nb", "Mo", "Tc", "Ru", "Rh", "Pd", "Ag", "Cd", "In", "Sn", "Sb", "Te", "I", "Xe",
    "Cs", "Ba", "La", "Ce", "Pr", "Nd", "Pm", "Sm", "Eu", "Gd", "Tb", "Dy", "Ho", "Er", "Tm", "Yb", "Lu",
    "Hf", "Ta", "W", "Re", "Os", "Ir", "Pt", "Au", "Hg", "Tl", "Pb", "Bi", "Po", "At", "Rn", "Fr", "Ra",
    "Ac", "Th", "Pa", "U", "Np", "Pu", "Am", "Cm", "Bk", "Cf", "Es", "Fm", "Md", "No", "Lr", "Rf", "Db",
    "Sg", "Bh", "Hs", "Mt", "Ds", "Rg", "Cn", "Nh", "Fl", "Mc", "Lv", "Ts", "Og")


def periodic_position(z: int) -> tuple[int, int]:
    """(row, column), both 1-based, of element ``z`` in the 18-column table; La-Lu / Ac-Lr on rows 9 / 10."""
    if z == 1:
        return 1, 1
    if z == 2:
        return 1, 18
    for start, row in ((3, 2), (11, 3)):
        if start <= z < start + 8:
            i = z - start
            return row, (i + 1 if i < 2 else i + 11)
    for start, row in ((19, 4), (37, 5)):
        if start <= z < start + 18:
            return row, z - start + 1
    for start, row, frow in ((55, 6, 9), (87, 7, 10)):
        if start <= z < start + 32:
            i = z - start
            if i < 2:
                return row, i + 1
            if i < 17:
                return frow, i + 1  # f-block row, columns 3..17
            return row, i - 13
    raise ValueError(f"no element with Z={z}")


def fig07_element_heatmap(structures, out_png: Path, out_pdf: Path, *, cmap: str = "viridis",
                          log: bool = False) -> None:
    """Periodic-table heatmap: number of materials of the dataset containing each element."""
    data = _structures(structures)
    counts: dict[str, int] = {}
    for d in data.values():
        for el in set(d.get("elements") or []):
            counts[str(el)] = counts.get(str(el), 0) + 1
    unknown = sorted(set(counts) - set(ELEMENTS))
    vmax = max(counts.values(), default=1)
    cm = plt.get_cmap(cmap)
    if log:
        norm = LogNorm(1, max(vmax, 2))
    elif vmax <= 12:  # few materials: one discrete colour per count
        cm = cm.resampled(max(vmax, 1))
        norm = BoundaryNorm(np.arange(0.5, max(vmax, 1) + 1), cm.N)
    else:
        norm = matplotlib.colors.Normalize(1, vmax)
    with style():
        fig, ax = plt.subplots(figsize=(9, 5), layout="constrained")
        for z, el in enumerate(ELEMENTS, start=1):
            r, c = periodic_position(z)
            y = r - (0.5 if r >= 9 else 0)
            n = counts.get(el, 0)
            fc = cm(norm(n)) if n else "#f0f0f0"
            ax.add_patch(Rectangle((c - 0.46, y - 0.46), 0.92, 0.92, facecolor=fc, edgecolor="white", lw=0.5))
            dark = n and np.mean(matplotlib.colors.to_rgb(fc)) < 0.5
            tc = "white" if dark else ("#222222" if n else "#aaaaaa")
            ax.text(c, y - 0.08, el, ha="center", va="center", fontsize=6.5, color=tc,
                    fontweight="bold" if n else "normal")
            if n:
                ax.text(c, y + 0.27, str(n), ha="center", va="center", fontsize=5, color=tc)
        ax.text(2.45, 8.5, "La–Lu", ha="right", va="center", fontsize=5.5, color="#777777")
        ax.text(2.45, 9.5, "Ac–Lr", ha="right", va="center", fontsize=5.5, color="#777777")
        ax.set_xlim(0.4, 18.6)
        ax.set_ylim(10.0, 0.45)
        ax.set_aspect("equal")
        ax.axis("off")
        sm = matplotlib.cm.ScalarMappable(norm=norm, cmap=cm)
        cb = fig.colorbar(sm, ax=ax, shrink=0.6, pad=0.01)
        cb.set_label("materials containing the element (count)")
        if vmax <= 10 and not log:
            cb.set_ticks(range(1, vmax + 1))
        note = f"{len(data)} materials"
        if unknown:
            note += "; not placed: " + ", ".join(unknown)
        ax.set_title(f"Elements of the dataset ({note})", loc="left")
        _save(fig, out_png, out_pdf)


__all__ = [
    "STRATEGY_ORDER", "STRATEGY_COLORS", "STRATEGY_MARKERS", "STRATEGY_DESCRIPTIONS", "METRIC_INFO",
    "DEVIATION_PROPERTIES", "THERMAL_PROPERTIES", "VALIDATION_METRICS", "Bands", "Surface", "style",
    "strategy_color", "ordered_strategies", "metric_label", "model_label", "load_table", "load_json",
    "load_structure", "load_bands", "load_surface", "eval_files", "deviations", "min_budget_to_target",
    "summarise", "parse_dot", "collapse_graph", "to_dot", "write_rulegraph", "rulegraph_command", "budget_curves", "fig01_overview", "fig02_dataset", "fig03_property_deviation",
    "fig04_band_section", "fig05_imaginary_modes", "fig06_cost", "fig07_element_heatmap",
    "fig08_validation_errors", "fig09_thermal_deviation", "fig10_band_grid", "fig11_validation_per_material",
]


def draw_partial_figures(table: str | Path, budget: int) -> Path:
    """The figures drawn from the tidy table alone, of a partial summary (failed models marked missing; the
    figures show them as n/a), into ``results/figures/partial/``."""
    df = load_table(table)
    out = Path(layout.figure("x", partial=True)).parent
    out.mkdir(parents=True, exist_ok=True)
    table_figures = {
        "budget_curves": (budget_curves, {}),
        "fig03_property_deviation": (fig03_property_deviation, {"budget": budget}),
        "fig06_cost": (fig06_cost, {}),
        "fig08_validation_errors": (fig08_validation_errors, {}),
        "fig09_thermal_deviation": (fig09_thermal_deviation, {}),
        "fig11_validation_per_material": (fig11_validation_per_material, {"budget": budget}),
    }
    for name, (draw, options) in table_figures.items():
        try:
            draw(df, out_png=layout.figure(name, "png", partial=True), out_pdf=layout.figure(name, "pdf", partial=True),
                 **options)
        except Exception as exc:  # a partial summary must not fail on one figure
            print(f"phononft: partial figure {name} not drawn: {exc}")
    return out
