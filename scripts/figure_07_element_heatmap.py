"""Snakemake adapter: fig07, periodic-table heatmap of the elements of the dataset (phononft.figures)."""
from phononft.figures import fig07_element_heatmap
from phononft.logs import rule_logger

log = rule_logger(snakemake.log[0])
fig07_element_heatmap(list(snakemake.input), snakemake.output.png, snakemake.output.pdf)
log(f"wrote {snakemake.output.png} ({len(snakemake.input)} materials)")
