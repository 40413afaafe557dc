"""Snakemake adapter: fig01, the workflow's rule graph beside the strategies (phononft.figures.overview)."""
from phononft.figures.overview import fig01_overview
from phononft.logs import rule_logger

log = rule_logger(snakemake.log[0])
fig01_overview(snakemake.input.rulegraph, snakemake.output.png, snakemake.output.pdf,
               strategies=snakemake.params.strategies)
log(f"wrote {snakemake.output.png}")
