"""Snakemake adapter: phonopy displacements of a material's structure for VASP labelling (phononft.reference)."""
from phononft.io import read_extxyz
from phononft.reference import write_displacements
from phononft.logs import rule_logger

log = rule_logger(snakemake.log[0])
structure = read_extxyz(snakemake.input.structure)[0]
log("the structure is taken as relaxed: it is not re-relaxed with VASP")
write_displacements(structure, {"phonons": snakemake.params.phonons}, snakemake.output.disp, snakemake.output.summary,
                    log=log)
