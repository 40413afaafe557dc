"""Snakemake adapter: the training series of one selection of a seed's pool (phononft.selection.select_series)."""
from pathlib import Path

from phononft.label import calculator_from_config, label_structures
from phononft.logs import rule_logger
from phononft.selection import select_series

log = rule_logger(snakemake.log[0])
i, p, w = snakemake.input, snakemake.params, snakemake.wildcards
label = None
if p.labeller is not None:  # uncertainty: the rounds label their picks with the (in-process) labeller
    calc = calculator_from_config(p.labeller[p.labeller["type"]])
    label = lambda images: label_structures(images, calc, log=lambda s: None)  # noqa: E731
select_series(i.pool, snakemake.output.series, w.selection, budgets=p.budgets, settings=p.settings, seed=int(w.seed),
              foundation=getattr(i, "foundation", None), valid_file=getattr(i, "valid", None), label=label,
              workdir=Path(snakemake.output.series).parent / f".{w.selection}_s{w.seed}", dtype=p.dtype, log=log)
