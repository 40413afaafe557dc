"""Every figure of the study, in one place: what it is called, which function draws it, what it reads and
which configuration options it takes.

One name per figure (``figNN_<what>``) is the name of its Snakemake rule
(``rules/figures.smk``: one rule per entry, asking this module for its inputs and params), its script
(``scripts/<name>.py``), its drawing function (``phononft.figures.<module>.<name>``), its output
(``results/figures/<name>.{png,pdf}``), its log (``results/logs/figures/<name>.log``) and its caption
(``report/<name>.rst``).  ``rules/common.smk``'s
``figure_targets()`` and the partial summary (:func:`draw_partial_figures`) read the same list.

What a figure reads decides its rule's inputs (:func:`rule_inputs`):

* ``table``: the tidy table ``results/summary/metrics.csv``;
* ``structures``: every material's structure summary ``results/<material>/structures/structure.json``;
* ``rulegraph``: the workflow's rule graph ``results/figures/rulegraph.dot`` (rule ``rulegraph``);
* ``bands`` / ``surfaces``: the reference's ``bands.json`` / ``surface.json`` of the figure's material,
  and the evaluation folders of that material's models (``results/<material>/evaluate/<strategy>``).

Its ``params`` (``{parameter: config key}``) are exactly the options its output depends on, so that a
changed option reruns only the figures that take it (:func:`rule_params`); a table figure's parameters are
keywords of its drawing function.  This module imports nothing heavy: the Snakefile reads it while it
parses, and a drawing function is imported only when it is asked for (:attr:`Figure.draw`).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Mapping

from .. import layout
from ..config import figure_choice
from .data import load_table

TABLE, STRUCTURES, RULEGRAPH, BANDS, SURFACES = "table", "structures", "rulegraph", "bands", "surfaces"


@dataclass(frozen=True)
class Figure:
    name: str
    #: the module of ``phononft.figures`` that defines the function ``name``
    module: str
    #: what it reads: ``table``, ``structures``, ``rulegraph``, ``bands``, ``surfaces``
    reads: tuple[str, ...]
    #: ``{parameter: config key}``: ``figures.<key>`` (resolved by :func:`option_values`) or ``strategies``
    params: Mapping[str, str] = field(default_factory=dict)

    @property
    def draw(self) -> Callable:
        """The drawing function ``phononft.figures.<module>.<name>(<inputs>, out_png, out_pdf, **options)``."""
        # imported on demand: matplotlib and the drawing modules are heavy, the Snakefile needs names only
        return getattr(importlib.import_module(f"{__package__}.{self.module}"), self.name)

    @property
    def script(self) -> str:
        return f"scripts/{self.name}.py"

    @property
    def caption(self) -> str:
        return f"report/{self.name}.rst"

    @property
    def partial(self) -> bool:
        """Drawn by the partial summary: it reads the tidy table only."""
        return self.reads == (TABLE,)

    def outputs(self, *, partial: bool = False) -> list[str]:
        return [layout.figure(self.name, ext, partial=partial) for ext in ("png", "pdf")]


_BUDGET, _SEED, _STRATEGIES = "figures.budget", "figures.seed", "strategies"
_MODELS = {"strategies": _STRATEGIES, "budget": _BUDGET, "seed": _SEED}

FIGURES: dict[str, Figure] = {f.name: f for f in (
    Figure("fig01_overview", "overview", (RULEGRAPH,), {"strategies": _STRATEGIES}),
    Figure("fig02_dataset", "dataset", (STRUCTURES,)),
    Figure("fig03_property_deviation", "deviations", (TABLE,), {"budget": _BUDGET}),
    Figure("fig04_band_section", "bands", (BANDS,),
           {"material": "figures.band_material", **_MODELS, "segments": "figures.band_segments"}),
    Figure("fig05_imaginary_modes", "bands", (BANDS, SURFACES), {"material": "figures.imaginary_material", **_MODELS}),
    Figure("fig06_cost", "cost", (TABLE,), {"metric": "figures.cost_metric", "target": "figures.cost_target"}),
    Figure("fig07_element_heatmap", "dataset", (STRUCTURES,)),
    Figure("fig08_validation_errors", "validation", (TABLE,)),
    Figure("fig09_thermal_deviation", "deviations", (TABLE,)),
    Figure("fig10_band_grid", "bands", (TABLE, BANDS), {"material": "figures.band_material", **_MODELS}),
    Figure("fig11_validation_per_material", "validation", (TABLE,), {"budget": _BUDGET}),
    Figure("fig12_selection", "budget", (TABLE,), {"metric": "figures.cost_metric", "target": "figures.cost_target"}),
    Figure("fig13_budget_curves", "budget", (TABLE,)),
)}


def figure_files(*, partial: bool = False) -> list[str]:
    """PNG and PDF of every figure (``results/figures/`` or, ``partial``, ``results/figures/partial/``)."""
    return [path for fig in FIGURES.values() for path in fig.outputs(partial=partial)]


def option_values(config: Mapping) -> dict:
    """``{config key: value}`` of every key a figure takes: ``figures.*`` resolved by
    :func:`phononft.config.figure_choice` (material, budget, seed; ConfigError names a bad one) or as
    configured (defaults from the schema), and ``strategies``."""
    choice = figure_choice(dict(config))
    values = {f"figures.{k}": v for k, v in config["figures"].items()}
    values.update({f"figures.{k}": choice[k] for k in ("band_material", "imaginary_material", "budget", "seed")})
    values[_STRATEGIES] = list(config["strategies"])
    return values


def rule_params(fig: Figure, values: Mapping) -> dict:
    """The figure rule's ``params``: its options' values (``values`` from :func:`option_values`)."""
    return {param: values[key] for param, key in fig.params.items()}


def rule_inputs(fig: Figure, values: Mapping, materials) -> dict:
    """The figure rule's named inputs: what it reads, as paths of the results layout."""
    out: dict = {}
    if TABLE in fig.reads:
        out["table"] = layout.summary()
    if STRUCTURES in fig.reads:
        out["structures"] = [layout.structure(m, "json") for m in materials]
    if RULEGRAPH in fig.reads:
        out["rulegraph"] = layout.figure("rulegraph", "dot")
    if BANDS in fig.reads or SURFACES in fig.reads:
        material = values[fig.params["material"]]
        out["reference_bands"] = layout.reference(material, "bands.json")
        if SURFACES in fig.reads:
            out["reference_surface"] = layout.reference(material, "surface.json")
        # the evaluation jobs (directory outputs) of the figure's models; the files in them: eval_files
        out["models"] = [layout.job("evaluate", material, s) for s in values[_STRATEGIES]]
    return out


def draw_partial_figures(table: str | Path, config: Mapping) -> Path:
    """The figures drawn from the tidy table alone (:attr:`Figure.partial`), with the options of their rules,
    of a partial summary (failed models marked missing; the figures show them as n/a), into
    ``results/figures/partial/``."""
    values, df = option_values(config), load_table(table)
    out = Path(layout.figure("x", partial=True)).parent
    out.mkdir(parents=True, exist_ok=True)
    for fig in FIGURES.values():
        if not fig.partial:
            continue
        png, pdf = fig.outputs(partial=True)
        try:
            fig.draw(df, png, pdf, **rule_params(fig, values))
        except Exception as exc:  # a partial summary must not fail on one figure
            print(f"phononft: partial figure {fig.name} not drawn: {exc}")
    return out
