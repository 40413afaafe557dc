"""Snakemake adapter: the reference phonons.

precomputed (reference_phonopy): read, not recomputed (phononft.reference.precomputed_reference);
VASP labeller: from the VASP-labelled displaced supercells (phononft.reference.vasp_reference);
mock labeller: relaxation + phonons with the calculator itself (phononft.evaluate.evaluate_reference).
"""
from pathlib import Path

from phononft.logs import rule_logger

log = rule_logger(snakemake.log[0])
i = snakemake.input
out_dir = Path(snakemake.output.metrics).parent
cfg = snakemake.params.settings
if hasattr(i, "precomputed"):
    from phononft.reference import precomputed_reference

    metrics = precomputed_reference(i.precomputed, cfg, out_dir, log=log)
elif hasattr(i, "displacements"):
    from phononft.reference import vasp_reference

    metrics = vasp_reference(i.displacements, list(i.labelled), cfg, out_dir,
                             perfect=i.perfect[0] if len(i.perfect) else None, log=log)
else:
    from phononft.evaluate import evaluate_reference
    from phononft.io import read_extxyz
    from phononft.label import calculator_from_config

    structure = read_extxyz(i.structure)[0]
    calc = calculator_from_config(cfg["labeller"]["mock"])
    metrics = evaluate_reference(structure, calc, cfg, out_dir, log=log)
log(f"reference: min {metrics['min_frequency']:.3f} THz, max {metrics['max_frequency']:.3f} THz")
