"""Snakemake adapter: fig11, energy/force/stress errors per material at one budget (phononft.figures)."""
from phononft.figures import fig11_validation_per_material, load_table
from phononft.logs import rule_logger

log = rule_logger(snakemake.log[0])
fig11_validation_per_material(load_table(snakemake.input[0]), snakemake.output.png, snakemake.output.pdf,
                              budget=snakemake.params.budget)
log(f"wrote {snakemake.output.png} (N = {snakemake.params.budget})")
