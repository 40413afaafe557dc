"""Snakemake adapter: reference labels of one split.

mock: label every structure with the ASE calculator (phononft.label).  vasp: gather the results
of the VASP jobs (rule label_vasp) in series order (phononft.vasp.jobs.gather_labelled).
"""
from phononft.io import read_extxyz, write_extxyz
from phononft.label import calculator_from_config, check_elements, label_structures
from phononft.logs import rule_logger

log = rule_logger(snakemake.log[0])
cfg = snakemake.params.labeller
images = read_extxyz(snakemake.input.rattled)
if cfg["type"] == "vasp":
    from phononft.vasp.jobs import gather_labelled

    labelled = gather_labelled(images, [a for f in snakemake.input.labelled for a in read_extxyz(f)],
                               what=f"material {snakemake.wildcards.material!r}, split {snakemake.wildcards.split}")
    log(f"gathered {len(labelled)} VASP-labelled structures")
    write_extxyz(snakemake.output[0], labelled)
else:
    calc = calculator_from_config(cfg["mock"])
    check_elements(calc, images[0].get_chemical_symbols(), f"material {snakemake.wildcards.material!r}")
    write_extxyz(snakemake.output[0], label_structures(images, calc, source=cfg["mock"]["calculator"], log=log))
