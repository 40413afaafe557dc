"""Snakemake adapter: fig02, crystal systems and cell sizes of the materials (phononft.figures.dataset)."""
from phononft.figures.dataset import fig02_dataset
from phononft.logs import rule_logger

log = rule_logger(snakemake.log[0])
fig02_dataset(list(snakemake.input.structures), snakemake.output.png, snakemake.output.pdf)
log(f"wrote {snakemake.output.png} ({len(snakemake.input.structures)} materials)")
