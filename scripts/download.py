"""Snakemake adapter: download one known input file (phononft.download.download)."""
from phononft.download import download
from phononft.logs import rule_logger

log = rule_logger(snakemake.log[0])
download(snakemake.params.url, snakemake.output[0], log=log)
