"""fig02 and fig07: the dataset, from each material's structure summary (``structure.json``): crystal
systems and cell sizes (fig02), and the elements on a periodic table (fig07)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from matplotlib.cm import ScalarMappable
from matplotlib.colors import BoundaryNorm, LogNorm, Normalize, to_rgb
from matplotlib.patches import Rectangle
from matplotlib.ticker import MaxNLocator

from .data import load_structures
from .style import mark_na, plt, save, style

CRYSTAL_SYSTEMS: tuple[str, ...] = ("triclinic", "monoclinic", "orthorhombic", "tetragonal", "trigonal",
                                    "hexagonal", "cubic")


def fig02_dataset(structures, out_png: Path, out_pdf: Path) -> None:
    """Dataset: crystal systems (bar counts) and atoms per primitive cell (histogram).

    ``structures``: mapping material -> structure dict / ``structure.json`` path, or a list of paths.
    """
    data = load_structures(structures)
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
        a1.yaxis.set_major_locator(MaxNLocator(integer=True))
        if natoms:
            lo, hi = min(natoms), max(natoms)
            bins = np.arange(lo - 0.5, hi + 1.5, 1) if hi - lo <= 40 else 20
            a2.hist(natoms, bins=bins, color="#4a6fa5", edgecolor="white", linewidth=0.5)
            a2.xaxis.get_major_locator().set_params(integer=True)
            a2.yaxis.get_major_locator().set_params(integer=True)
        else:
            mark_na(a2, "natoms_primitive n/a")
        a2.set_xlabel("atoms per primitive cell")
        a2.set_ylabel("materials (count)")
        shown = f"{len(natoms)} of {len(data)}" if len(natoms) < len(data) else f"{len(data)}"
        a2.set_title(f"(b) cell sizes ({shown} materials; others n/a)" if len(natoms) < len(data)
                     else f"(b) cell sizes ({shown} materials)", loc="left")
        save(fig, out_png, out_pdf)



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
    data = load_structures(structures)
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
        norm = Normalize(1, vmax)
    with style():
        fig, ax = plt.subplots(figsize=(9, 5), layout="constrained")
        for z, el in enumerate(ELEMENTS, start=1):
            r, c = periodic_position(z)
            y = r - (0.5 if r >= 9 else 0)
            n = counts.get(el, 0)
            fc = cm(norm(n)) if n else "#f0f0f0"
            ax.add_patch(Rectangle((c - 0.46, y - 0.46), 0.92, 0.92, facecolor=fc, edgecolor="white", lw=0.5))
            dark = n and np.mean(to_rgb(fc)) < 0.5
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
        sm = ScalarMappable(norm=norm, cmap=cm)
        cb = fig.colorbar(sm, ax=ax, shrink=0.6, pad=0.01)
        cb.set_label("materials containing the element (count)")
        if vmax <= 10 and not log:
            cb.set_ticks(range(1, vmax + 1))
        note = f"{len(data)} materials"
        if unknown:
            note += "; not placed: " + ", ".join(unknown)
        ax.set_title(f"Elements of the dataset ({note})", loc="left")
        save(fig, out_png, out_pdf)
