"""Snakemake adapter: fig08, energy/force/stress errors against the budget (phononft.figures)."""
from phononft.figures import fig08_validation_errors, load_table
from phononft.logs import rule_logger

log = rule_logger(snakemake.log[0])
fig08_validation_errors(load_table(snakemake.input[0]), snakemake.output.png, snakemake.output.pdf)
log(f"wrote {snakemake.output.png}")
