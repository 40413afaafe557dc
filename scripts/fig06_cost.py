"""Snakemake adapter: fig06, training structures needed to reach an accuracy target (phononft.figures.cost)."""
from phononft.figures.cost import fig06_cost
from phononft.logs import rule_logger

log = rule_logger(snakemake.log[0])
p = snakemake.params
fig06_cost(snakemake.input.table, snakemake.output.png, snakemake.output.pdf, metric=p.metric, target=p.target)
log(f"wrote {snakemake.output.png} (target {p.metric} < {p.target})")
