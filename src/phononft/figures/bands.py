"""Band structures of one material, reference against models: a section of the path (fig04), every model
in its own panel (fig10), and the imaginary modes with the energy surface along them (fig05)."""

from __future__ import annotations

import math
import textwrap
from pathlib import Path
from typing import Any, Iterable, Mapping

import numpy as np
from matplotlib.collections import LineCollection
from matplotlib.lines import Line2D
from matplotlib.ticker import MaxNLocator

from .bandfiles import Bands, Surface, aligned, load_bands, maybe_bands, maybe_surface
from .data import load_table
from .style import mark_na, model_label, ordered_labels, plt, save, strategy_color, strategy_marker, style


def plot_bands(ax, b: Bands, *, color: str, lw: float = 1.0, ls: str = "-", alpha: float = 1.0,
               zorder: int = 2, label: str | None = None) -> None:
    segs = [np.column_stack([d, f[:, j]]) for d, f in zip(b.distances, b.frequencies)
            for j in range(f.shape[1])]
    lc = LineCollection(segs, colors=color, linewidths=lw, linestyles=[ls], alpha=alpha, zorder=zorder,
                        label=label)
    ax.add_collection(lc, autolim=True)
    ax.autoscale_view()


def band_axes(ax, ref: Bands, *, ylim=None, ylabel: bool = True) -> None:
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


def freq_limits(ref: Bands, models: Iterable[Bands | None]) -> tuple[float, float]:
    lo, hi = ref.fmin, ref.fmax
    for m in models:
        if m is not None:
            lo, hi = min(lo, m.fmin), max(hi, m.fmax)
    lo = min(lo, 0.0)
    pad = 0.05 * (hi - lo or 1.0)
    return lo - (pad if lo < 0 else 0.0), hi + pad


def load_models(models: Mapping[str, Any] | None, ref: Bands) -> dict[str, Bands | None]:
    out = {}
    for k, v in (models or {}).items():
        b = maybe_bands(v)
        out[str(k)] = aligned(b, ref) if b is not None else None
    return out


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
            for k, v in load_models(models, ref_full).items()}
    labels = ordered_labels(mods)
    with style():
        fig, ax = plt.subplots(figsize=(5.2, 3.4), layout="constrained")
        hs = []
        for lab in labels:
            b = mods[lab]
            c = strategy_color(lab)
            if b is None:
                hs.append(Line2D([], [], color=c, lw=1, ls="--", label=f"{lab}: n/a", alpha=0.5))
                continue
            plot_bands(ax, b, color=c, lw=0.9, ls=(0, (4, 1.5)), zorder=3)
            hs.append(Line2D([], [], color=c, lw=0.9, ls=(0, (4, 1.5)), label=lab))
        plot_bands(ax, ref, color="black", lw=1.6, alpha=0.85, zorder=2)
        hs.insert(0, Line2D([], [], color="black", lw=1.6, label="reference"))
        band_axes(ax, ref, ylim=ylim or freq_limits(ref, mods.values()))
        ax.set_xlabel("wave vector")
        if material:
            ax.set_title(material, loc="left")
        fig.legend(handles=hs, loc="outside right upper")
        save(fig, out_png, out_pdf)


def fig10_band_grid(reference, models: Mapping[str, Any], out_png: Path, out_pdf: Path, *,
                    material: str | None = None, ncols: int = 4,
                    annotations: Mapping[str, str] | None = None,
                    ylim: tuple[float, float] | None = None) -> None:
    """Full band structure of one material: reference (black) vs each model (colour), one small panel per
    model. ``annotations``: optional ``{label: text}`` shown in the panel (e.g. ``"RMSE 0.12 THz"``, read
    from the table by the caller); a missing model (None / unreadable) gives a hatched "n/a" panel."""
    ref = load_bands(reference)
    mods = load_models(models, ref)
    labels = ordered_labels(mods) or ["(no models)"]
    n = len(labels)
    ncols = max(1, min(ncols, n))
    nrows = math.ceil(n / ncols)
    lims = ylim or freq_limits(ref, mods.values())
    with style():
        fig, axes = plt.subplots(nrows, ncols, figsize=(2.5 * ncols + 0.4, 2.1 * nrows + 0.4),
                                 layout="constrained", sharey=True, squeeze=False)
        for k, ax in enumerate(axes.flat):
            if k >= n:
                ax.axis("off")
                continue
            lab = labels[k]
            b = mods.get(lab)
            plot_bands(ax, ref, color="black", lw=1.3, alpha=0.8, zorder=2)
            band_axes(ax, ref, ylim=lims, ylabel=(k % ncols == 0))
            ax.set_title(lab, color=strategy_color(lab), fontsize=8)
            if b is None:
                mark_na(ax, "model n/a", fontsize=7)
                continue
            plot_bands(ax, b, color=strategy_color(lab), lw=0.9, ls=(0, (4, 1.5)), zorder=3)
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
        save(fig, out_png, out_pdf)


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
            for k, v in load_models(model_bands, ref_full).items()}
    surfs: dict[str, Surface | None] = {"reference": maybe_surface(reference_surface)}
    for k, v in (model_surfaces or {}).items():
        surfs[str(k)] = maybe_surface(v)
    surf_labels = ["reference"] + ordered_labels([k for k in surfs if k != "reference"])
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
        for lab in ordered_labels(mods):
            b = mods[lab]
            c = strategy_color(lab)
            if b is None:
                hs.append(Line2D([], [], color=c, ls="--", alpha=0.5, label=f"{lab}: n/a"))
                continue
            plot_bands(ax, b, color=c, lw=0.9, ls=(0, (4, 1.5)), zorder=3)
            hs.append(Line2D([], [], color=c, lw=0.9, ls=(0, (4, 1.5)), label=lab))
        plot_bands(ax, ref, color="black", lw=1.6, alpha=0.85, zorder=2)
        lo, hi = freq_limits(ref, mods.values())
        band_axes(ax, ref, ylim=(lo, hi))
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
            lv = MaxNLocator(levels).tick_values(vmin, vmax)
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
                    mark_na(a, "surface n/a", fontsize=7)
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
                mark_na(a, "surfaces n/a")
            elif missing:
                a.text(0.99, 0.97, "n/a: " + ", ".join(missing), transform=a.transAxes, ha="right", va="top",
                       fontsize=6, color="#777777")
            a.set_ylabel("energy (meV/atom)")
            a.set_title("(b) energy along the imaginary mode", loc="left")
            if drawn:
                bottom.legend(loc="outside right upper")
        save(fig, out_png, out_pdf)


def rmse_notes(table, material: str, strategies: Iterable[str], budget: int, seed: int) -> dict[str, str]:
    """fig10's panel notes ``{model label: "RMSE 0.123 THz"}``: each model's band RMSE from the tidy table
    (a path or a DataFrame) at ``budget`` and ``seed`` (pretrained at its budget 0); none where it is missing."""
    df = load_table(table)
    rmse = df[(df["material"] == material) & (df["metric"] == "rmse") & (df["seed"] == seed)]
    notes = {}
    for s in strategies:
        v = rmse.loc[(rmse["strategy"] == s) & (rmse["budget"] == (0 if s == "pretrained" else budget)), "value"]
        if len(v) and v.notna().all():
            notes[model_label(s, budget)] = f"RMSE {float(v.iloc[0]):.3f} THz"
    return notes
