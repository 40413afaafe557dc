"""Snakemake adapter: the reference's properties -- with the mock calculator in this job
(phononft.reference.reference_in_process), or from the VASP answers of every step
(phononft.reference.reference_from_answers)."""
from pathlib import Path

from phononft.io import read_extxyz
from phononft.label import calculator_from_config
from phononft.logs import rule_logger
from phononft.reference import reference_from_answers, reference_in_process

log = rule_logger(snakemake.log[0])
i, cfg = snakemake.input, snakemake.params.settings
structure = read_extxyz(i.structure)[0]
out_dir = Path(snakemake.output.metrics).parent
precomputed = getattr(i, "precomputed", None)
if cfg["labeller"]["type"] == "vasp":
    answers = [list(getattr(i, f"step{k}")) for k in range(3)]
    reference_from_answers(structure, cfg, answers, out_dir, precomputed_path=precomputed, log=log)
else:
    calc = calculator_from_config(cfg["labeller"][cfg["labeller"]["type"]])
    reference_in_process(structure, calc, cfg, out_dir, precomputed_path=precomputed, log=log)
