"""Snakemake adapter: label the structures of one job with VASP, each in its own job directory
(phononft.vasp.jobs)."""
from pathlib import Path

from phononft.io import read_extxyz
from phononft.logs import rule_logger
from phononft.vasp.jobs import batch_indices, label_batch

log = rule_logger(snakemake.log[0])
images = read_extxyz(snakemake.input.rattled)
indices = batch_indices(int(snakemake.wildcards.job), snakemake.params.structures_per_job, len(images))
log(f"{snakemake.input.rattled}: structures {indices.start}..{indices.stop - 1}")
label_batch(images, indices, Path(snakemake.output[0]).parent, snakemake.output[0],
            command=snakemake.params.command, settings=snakemake.params.settings, log=log)
