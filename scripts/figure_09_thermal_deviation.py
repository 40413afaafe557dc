"""Snakemake adapter: fig09, deviation of thermal properties against the budget (phononft.figures)."""
from phononft.figures import fig09_thermal_deviation, load_table
from phononft.logs import rule_logger

log = rule_logger(snakemake.log[0])
fig09_thermal_deviation(load_table(snakemake.input[0]), snakemake.output.png, snakemake.output.pdf)
log(f"wrote {snakemake.output.png}")
