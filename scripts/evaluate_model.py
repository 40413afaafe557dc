"""Snakemake adapter: one model against the reference (phononft.evaluate)."""
from pathlib import Path

import torch

from phononft.evaluate import evaluate_model
from phononft.io import read_extxyz, read_json
from phononft.runlog import rule_logger

log = rule_logger(snakemake.log[0])
torch.set_num_threads(snakemake.threads)
i = snakemake.input
evaluate_model(Path(i.model), read_extxyz(i.structure)[0], Path(i.reference), Path(i.test),
               snakemake.params.settings, Path(snakemake.output.metrics).parent,
               train_log=read_json(i.record), reference_modes=read_json(i.modes), log=log)
