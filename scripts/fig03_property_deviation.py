"""Snakemake adapter: fig03, deviation of thermal and elastic properties at one budget
(phononft.figures.deviations)."""
from phononft.figures.deviations import fig03_property_deviation
from phononft.logs import rule_logger

log = rule_logger(snakemake.log[0])
fig03_property_deviation(snakemake.input.table, snakemake.output.png, snakemake.output.pdf,
                         budget=snakemake.params.budget)
log(f"wrote {snakemake.output.png} (N = {snakemake.params.budget})")
