"""The look shared by every figure: strategy colours / markers / labels, metric labels with units, the
matplotlib style, saving (300 dpi PNG + PDF, atomically) and the marks of missing data.

matplotlib's non-interactive Agg backend is selected here, once for the package: every drawing module
imports this one before pyplot.
"""

from __future__ import annotations

import contextlib
import math
import re
from pathlib import Path
from typing import Iterable, Iterator, Sequence

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.patches import Rectangle  # noqa: E402
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter  # noqa: E402

from .. import strategies  # noqa: E402
from ..io import atomic_path  # noqa: E402
from ..selection import SELECTIONS  # noqa: E402

# ---- strategies ----------------------------------------------------------------------------------
# Labels, colours, markers, order and descriptions are the strategy modules' (phononft.strategies): a strategy
# added there is drawn like the others.  ``reference`` is black.  Markers help in grey-scale print and for
# colour-blind readers.

#: Fixed order of strategies in every legend and axis (the registry's; unknown ones appended alphabetically).
STRATEGY_ORDER: tuple[str, ...] = tuple(strategies.names())
#: What each strategy trains (fig01's panel; :func:`strategy_description` reads the registry now).
STRATEGY_DESCRIPTIONS: dict[str, str] = {s.name: s.trains for s in strategies.all_strategies()}
_REFERENCE = ("reference", "#000000", "*")
_FALLBACK_COLORS = ["#bcbd22", "#393b79", "#637939", "#8c6d31", "#843c39", "#7b4173", "#aec7e8"]


def _registered(name: str):
    try:
        return strategies.get(name)
    except ValueError:
        return None


def strategy_description(name: str) -> str:
    """What a strategy trains (fig01's panel): its module's one line."""
    strategy = _registered(name)
    return strategy.trains if strategy is not None else ""


def strategy_style(name: str) -> tuple[str, str, str]:
    """``(label, colour, marker)`` of a strategy (or ``reference``): the one place every figure asks.

    A strategy unknown to the registry keeps its name as label, gets a colour picked from its name (stable
    between runs) and a circle."""
    if name == "reference":
        return _REFERENCE
    strategy = _registered(name)
    if strategy is not None:
        return strategy.style()
    return name, _FALLBACK_COLORS[sum(map(ord, name)) % len(_FALLBACK_COLORS)], "o"


def strategy_of(label: str) -> str:
    """The strategy of a model label (``"lora (N=10)"`` -> ``"lora"``)."""
    label = str(label).strip()
    if label == "reference" or _registered(label) is not None:
        return label
    return re.split(r"[\s/(,:]", label, maxsplit=1)[0]


def strategy_color(label: str) -> str:
    """The fixed colour of a strategy (label such as ``"lora (N=10)"`` accepted)."""
    return strategy_style(strategy_of(label))[1]


def strategy_marker(label: str) -> str:
    return strategy_style(strategy_of(label))[2]


def _order() -> list[str]:
    return strategies.names()  # the registry now (a strategy module may have been added since import)


def ordered_strategies(strategies: Iterable[str]) -> list[str]:
    """Strategies in the fixed order; unknown ones appended alphabetically; ``reference`` dropped."""
    order = _order()
    present = {s for s in strategies if isinstance(s, str) and s != "reference"}
    known = [s for s in order if s in present]
    return known + sorted(present - set(order))


def ordered_labels(labels: Iterable[str]) -> list[str]:
    """Model labels (``"lora (N=10)"``) in the fixed order of their strategies."""
    order = {s: i for i, s in enumerate(_order())}
    return sorted(labels, key=lambda lab: (order.get(strategy_of(lab), len(order)), lab))


def model_label(strategy: str, budget: int | None = None) -> str:
    """Display label of one model: ``"pretrained"`` or ``"lora (N=10)"``."""
    if strategy in ("pretrained", "reference") or budget is None:
        return strategy
    return f"{strategy} (N={int(budget)})"


def legend_handles(strategies: Sequence[str], *, line: bool = True, missing: Sequence[str] = ()) -> list:
    """One legend entry per strategy (its colour and marker; ``": n/a"`` for those in ``missing``)."""
    hs = []
    for s in strategies:
        lab = strategy_style(s)[0] + (": n/a" if s in missing else "")
        hs.append(Line2D([], [], color=strategy_color(s), marker=strategy_marker(s), lw=1.3 if line else 0,
                         ls="--" if (line and s == "pretrained") else "-", label=lab))
    return hs


# ---- selections ----------------------------------------------------------------------------------
#: Line style and hatch per selection (phononft.selection.SELECTIONS, in that order): fig06, fig12, fig13.
SELECTION_LINESTYLES: dict[str, str] = dict(zip(SELECTIONS, ("-", "--", ":")))
SELECTION_HATCHES: dict[str, str] = dict(zip(SELECTIONS, ("", "//", "..")))
#: Marker fill per selection in scatter panels (fig06): random filled, fps left half, uncertainty lower half (open
#: means "not reached" there).
SELECTION_FILLSTYLES: dict[str, str] = dict(zip(SELECTIONS, ("full", "left", "bottom")))


def selections_in(df) -> list[str]:
    """The selections present in a table (its ``selection`` column), in SELECTIONS order; ``["random"]``
    when there is none."""
    present = set(df["selection"]) if "selection" in df.columns else set()
    return [s for s in SELECTIONS if s in present] or ["random"]


def selection_handles(selections: Sequence[str], *, kind: str = "line") -> list:
    """Legend entries for the selections: ``line`` (line style), ``marker`` (fill style) or ``bar`` (hatch)."""
    if kind == "bar":
        return [Rectangle((0, 0), 1, 1, facecolor="w", edgecolor="k", hatch=SELECTION_HATCHES[s], label=s)
                for s in selections]
    if kind == "marker":
        return [Line2D([], [], color="#555555", marker="o", lw=0, fillstyle=SELECTION_FILLSTYLES[s], label=s)
                for s in selections]
    return [Line2D([], [], color="#555555", ls=SELECTION_LINESTYLES[s], lw=1.3, label=s) for s in selections]


# ---- metrics -------------------------------------------------------------------------------------

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

#: Short names used in axis labels of the deviation figures.
PROPERTY_SHORT: dict[str, str] = {
    "heat_capacity": "$C_V$", "entropy": "$S$", "free_energy": "$F$",
    "bulk_modulus_eos": "$B_\\mathrm{EOS}$", "bulk_modulus_vrh": "$B_\\mathrm{VRH}$",
    "shear_modulus_vrh": "$G_\\mathrm{VRH}$", "kappa_slack": "$\\kappa_\\mathrm{Slack}$",
    "debye_temperature": "$\\Theta_D$",
}


def metric_name(metric: str) -> str:
    """``"force MAE"``: the display name of a metric."""
    return METRIC_INFO.get(metric, (metric.replace("_", " "), ""))[0]


def metric_label(metric: str, unit: str | None = None) -> str:
    """``"force MAE (meV/Å)"``: axis label of a metric, with its unit."""
    name, default_unit = METRIC_INFO.get(metric, (metric.replace("_", " "), ""))
    unit = unit if unit not in (None, "") and not (isinstance(unit, float) and math.isnan(unit)) else default_unit
    return f"{name} ({unit})" if unit else name


# ---- matplotlib style, saving, missing data -------------------------------------------------------

_RC = {
    "figure.dpi": 100, "savefig.dpi": 300, "font.size": 8, "axes.titlesize": 9, "axes.labelsize": 8,
    "xtick.labelsize": 7, "ytick.labelsize": 7, "legend.fontsize": 7, "legend.title_fontsize": 7,
    "legend.frameon": False, "axes.spines.top": False, "axes.spines.right": False, "axes.grid": True,
    "grid.color": "#e5e5e5", "grid.linewidth": 0.5, "axes.axisbelow": True, "lines.linewidth": 1.3,
    "lines.markersize": 4, "pdf.fonttype": 42, "ps.fonttype": 42, "image.cmap": "viridis",
}


@contextlib.contextmanager
def style() -> Iterator[None]:
    """The shared style of every figure (an ``rc_context``; nothing global is changed)."""
    with plt.rc_context(_RC):
        yield


def save(fig, out_png: str | Path, out_pdf: str | Path) -> None:
    """Write ``fig`` as a 300 dpi PNG and a PDF, each atomically, and close it."""
    for path, fmt in ((out_png, "png"), (out_pdf, "pdf")):
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format=fmt, dpi=300, bbox_inches="tight", pad_inches=0.05)
    plt.close(fig)


def mark_na(ax, text: str = "n/a", **kw) -> None:
    """Mark an empty panel as missing: hatched background and a note."""
    ax.add_patch(Rectangle((0, 0), 1, 1, transform=ax.transAxes, facecolor="none", edgecolor="#bbbbbb",
                           hatch="///", linewidth=0, zorder=0))
    ax.text(0.5, 0.5, text, transform=ax.transAxes, ha="center", va="center", color="#555555",
            bbox=dict(facecolor="white", edgecolor="none", pad=2), **kw)


def tidy_log_axis(axis) -> None:
    """Plain numbers (0.1, 2, 50) instead of 10^x / 2x10^1 on a log axis; minor labels only when the
    axis spans less than about one decade."""
    fmt = FuncFormatter(lambda v, _: f"{v:g}")
    axis.set_major_formatter(fmt)
    lo, hi = axis.get_view_interval()
    majors = (math.floor(math.log10(hi)) - math.ceil(math.log10(lo)) + 1) if lo > 0 and hi > lo else 99
    if majors < 2:
        axis.set_minor_locator(LogLocator(10, subs=(2, 5)))
        axis.set_minor_formatter(fmt)
    else:
        axis.set_minor_formatter(NullFormatter())


def material_ticks(ax, mats: Sequence[str]) -> None:
    """Material names on the x axis, rotated when there are many or long ones."""
    rot = 0 if len(mats) <= 4 and max((len(m) for m in mats), default=0) <= 10 else (
        45 if len(mats) <= 15 else 90)
    ax.set_xticks(range(len(mats)), mats, rotation=rot, ha="right" if rot == 45 else "center",
                  rotation_mode="anchor" if rot == 45 else "default")
