"""Snakemake adapter: use a local foundation model file (phononft.foundation.use_existing)."""
from phononft.foundation import use_existing
from phononft.runlog import rule_logger

log = rule_logger(snakemake.log[0])
use_existing(snakemake.input[0], snakemake.output[0])
log(f"foundation model: {snakemake.input[0]}")
