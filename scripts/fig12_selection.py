"""Snakemake adapter: fig12, which structures to label (phononft.figures.budget.fig12_selection)."""
from phononft.figures.budget import fig12_selection
from phononft.logs import rule_logger

log = rule_logger(snakemake.log[0])
p = snakemake.params
fig12_selection(snakemake.input.table, snakemake.output.png, snakemake.output.pdf, metric=p.metric, target=p.target)
log(f"wrote {snakemake.output.png} (target {p.metric} < {p.target})")
