"""Snakemake adapter: fig09, deviation of thermal properties against the budget (phononft.figures.deviations)."""
from phononft.figures.deviations import fig09_thermal_deviation
from phononft.logs import rule_logger

log = rule_logger(snakemake.log[0])
fig09_thermal_deviation(snakemake.input.table, snakemake.output.png, snakemake.output.pdf)
log(f"wrote {snakemake.output.png}")
