"""Snakemake adapter: reference labels of one split with the mock labeller (phononft.label)."""
from phononft.io import read_extxyz, write_extxyz
from phononft.label import calculator_from_config, check_elements, label_structures
from phononft.runlog import rule_logger

log = rule_logger(snakemake.log[0])
cfg = snakemake.params.labeller
images = read_extxyz(snakemake.input[0])
calc = calculator_from_config(cfg["mock"])
check_elements(calc, images[0].get_chemical_symbols(), f"material {snakemake.wildcards.material!r}")
write_extxyz(snakemake.output[0], label_structures(images, calc, source=cfg["mock"]["calculator"], log=log))
