"""Snakemake adapter: fig08, energy/force/stress errors against the budget (phononft.figures.validation)."""
from phononft.figures.validation import fig08_validation_errors
from phononft.logs import rule_logger

log = rule_logger(snakemake.log[0])
fig08_validation_errors(snakemake.input.table, snakemake.output.png, snakemake.output.pdf)
log(f"wrote {snakemake.output.png}")
