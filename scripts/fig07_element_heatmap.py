"""Snakemake adapter: fig07, periodic-table heatmap of the elements of the dataset (phononft.figures.dataset)."""
from phononft.figures.dataset import fig07_element_heatmap
from phononft.logs import rule_logger

log = rule_logger(snakemake.log[0])
fig07_element_heatmap(list(snakemake.input.structures), snakemake.output.png, snakemake.output.pdf)
log(f"wrote {snakemake.output.png} ({len(snakemake.input.structures)} materials)")
