"""Snakemake adapter: VASP answers the tasks of one job of a step of the reference's computation, each in its
own directory (phononft.reference.answer_tasks)."""
from pathlib import Path

from phononft.io import read_extxyz
from phononft.logs import rule_logger
from phononft.reference import answer_tasks
from phononft.vasp.jobs import batch_indices

log = rule_logger(snakemake.log[0])
p = snakemake.params
tasks = read_extxyz(snakemake.input.tasks)
indices = batch_indices(int(snakemake.wildcards.job), p.structures_per_job, len(tasks))
log(f"{snakemake.input.tasks}: tasks {indices.start}..{indices.stop - 1}")
answer_tasks(tasks, indices, Path(snakemake.output[0]).parent, snakemake.output[0], command=p.command,
             settings=p.settings, phonon_gamma_only=p.gamma_only, log=log)
