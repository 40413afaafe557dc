"""Snakemake adapter: use a local foundation model file (phononft.foundation.copy_foundation)."""
from phononft.foundation import copy_foundation
from phononft.logs import rule_logger

log = rule_logger(snakemake.log[0])
copy_foundation(snakemake.input[0], snakemake.output[0])
log(f"foundation model: {snakemake.input[0]}")
