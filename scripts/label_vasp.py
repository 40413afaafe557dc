"""Snakemake adapter: label one rattled structure with VASP in its own job directory (phononft.vasp_jobs)."""
from phononft.io import read_extxyz
from phononft.runlog import rule_logger
from phononft.vasp_jobs import label_one

log = rule_logger(snakemake.log[0])
index = int(snakemake.wildcards.index)
images = read_extxyz(snakemake.input.rattled)
if index >= len(images):
    raise IndexError(f"{snakemake.input.rattled} holds {len(images)} structures, no index {index}")
label_one(images[index], snakemake.output[0], command=snakemake.params.command, settings=snakemake.params.settings,
          log=log)
