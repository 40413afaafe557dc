"""Snakemake adapter: reference phonons with the labeller (phononft.evaluate)."""
from pathlib import Path

from phononft.evaluate import evaluate_reference
from phononft.io import read_extxyz
from phononft.label import calculator_from_config
from phononft.runlog import rule_logger

log = rule_logger(snakemake.log[0])
structure = read_extxyz(snakemake.input.structure)[0]
calc = calculator_from_config(snakemake.params.labeller["mock"])
metrics = evaluate_reference(structure, calc, snakemake.params.settings, Path(snakemake.output.metrics).parent, log=log)
log(f"reference: min {metrics['min_frequency']:.3f} THz, max {metrics['max_frequency']:.3f} THz")
