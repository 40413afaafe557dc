"""Band-structure and energy-surface files of the evaluated models and the reference, read tolerantly.

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

``maybe_bands`` / ``maybe_surface`` turn an absent or unreadable file into ``None`` (with a warning): the
figures mark it "n/a".
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping

import numpy as np

from .. import layout
from .data import load_json
from .style import STRATEGY_ORDER, model_label

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
    out_d, out_f = [], []
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


def maybe_bands(value) -> Bands | None:
    if value is None:
        return None
    try:
        return load_bands(value)
    except (OSError, ValueError, KeyError, TypeError, IndexError) as exc:
        warnings.warn(f"band structure unreadable ({exc}); marked as n/a")
        return None


def aligned(model: Bands, ref: Bands) -> Bands:
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
    "relaxation": ..., "modes_source": ...}``) in the generic form: each mode's normal-mode coordinate Q
    (``Q_axes``, amu^1/2 Å; files without it: the amplitude grid, Å of maximum atomic displacement) on its
    axis, ``energies_meV_per_atom`` 1-D (one mode) or 2-D ``[i][j]``, and the probed modes (q, branch,
    frequency) for the axis labels."""
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
    # the normal-mode coordinate Q = amplitude x sqrt(sum_i m_i |u_i|^2) per mode (amu^1/2 Å), when the file has it
    q_axes = list(surf.get("Q_axes") or [])
    axes = q_axes if len(q_axes) == n_modes and all(len(a) == len(amps) for a in q_axes) else [amps] * n_modes
    out = {"energy": energy, "amplitudes_1": axes[0], "modes": modes,
           "amplitude_unit": "amu$^{1/2}$ Å" if axes is q_axes else "Å",
           "relaxation": data.get("relaxation") if isinstance(data.get("relaxation"), Mapping) else None}
    if np.ndim(energy) == 2:
        out["amplitudes_2"] = axes[1] if len(axes) > 1 else axes[0]
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


def maybe_surface(value) -> Surface | None:
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


