"""Snakemake adapter: fig11, energy/force/stress errors per material at one budget (phononft.figures.validation)."""
from phononft.figures.validation import fig11_validation_per_material
from phononft.logs import rule_logger

log = rule_logger(snakemake.log[0])
fig11_validation_per_material(snakemake.input.table, snakemake.output.png, snakemake.output.pdf,
                              budget=snakemake.params.budget)
log(f"wrote {snakemake.output.png} (N = {snakemake.params.budget})")
