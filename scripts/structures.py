"""Snakemake adapter: load and standardise one material (phononft.structures)."""
from phononft.io import write_extxyz, write_json
from phononft.logs import rule_logger
from phononft.structures import prepare_structure

log = rule_logger(snakemake.log[0])
s = snakemake.params.settings
atoms, info = prepare_structure(snakemake.wildcards.material, snakemake.params.spec,
                                symprec=s["symprec"], min_distance=s["min_distance"])
log(f"{info['formula']}: {info['spacegroup']}, {info['natoms_primitive']} atoms per primitive cell")
write_extxyz(snakemake.output.structure, [atoms])
write_json(snakemake.output.summary, info)
