"""Figures of the study, drawn from results files only (never recomputing physics).

Where things are:

* :mod:`.registry`: every figure (name, drawing function, what it reads, which ``figures.*`` options it
  takes); ``rules/figures.smk``, the report captions, ``figure_targets()`` and the partial summary read it;
* :mod:`.style`: strategy colours / markers / labels (:func:`.style.strategy_style`), metric labels,
  matplotlib style (Agg backend, set there once), saving, marks of missing data;
* :mod:`.data`: the tidy table and the structure summaries, table statistics (medians, deviations,
  budget to reach a target); :mod:`.bandfiles`: band-structure and energy-surface files;
* :mod:`.rulegraph`: the workflow's rule graph (``snakemake --rulegraph``, pydot, igraph layout);
* one module per family of figures: :mod:`.overview` (fig01), :mod:`.dataset` (fig02, fig07),
  :mod:`.deviations` (fig03, fig09), :mod:`.bands` (fig04, fig05, fig10), :mod:`.cost` (fig06),
  :mod:`.validation` (fig08, fig11), :mod:`.budget` (fig13_budget_curves).

Every drawing function has the signature ``<name>(<inputs>, out_png, out_pdf, **options) -> None`` and
writes a 300 dpi PNG and a PDF atomically.  Missing data (NaN values from failed jobs, absent files) never
raises: what exists is drawn and what is missing is marked ("n/a" text, a grey cross, or a hatched panel).

This package's ``__init__`` imports nothing, so that the Snakefile can read the registry cheaply.
"""
