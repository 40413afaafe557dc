"""Snakemake adapter: reference labels of one split.

Rattled structures (phononft.label.label_rattled): mock labels them with the ASE calculator; vasp gathers the
results of the VASP jobs (rule label_vasp) in series order.  A material with own data (params.data): the
user's structures of this split, then the rattled ones its plan asks for (phononft.dataset.assemble_split).
"""
from phononft.dataset import assemble_split
from phononft.io import read_extxyz, write_extxyz
from phononft.label import label_rattled
from phononft.logs import rule_logger

log = rule_logger(snakemake.log[0])
material, split = snakemake.wildcards.material, snakemake.wildcards.split
data = snakemake.params.data  # None: no own data, the split is every rattled structure, labelled
rattled = []
if hasattr(snakemake.input, "rattled"):
    images = read_extxyz(snakemake.input.rattled)[: snakemake.params.n]  # a pool may hold more than the series
    results = [a for f in getattr(snakemake.input, "labelled", []) for a in read_extxyz(f)]
    rattled = label_rattled(images, snakemake.params.labeller, vasp_results=results,
                            what=f"material {material!r}, split {split}", log=log)
write_extxyz(snakemake.output[0], rattled if data is None else assemble_split(data, split, rattled, log))
