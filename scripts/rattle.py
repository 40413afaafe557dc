"""Snakemake adapter: rattled supercells of one split (phononft.rattle.make_split)."""
from phononft.io import read_extxyz, write_extxyz
from phononft.logs import rule_logger
from phononft.rattle import make_split

log = rule_logger(snakemake.log[0])
settings = dict(snakemake.params.settings)
split, material = snakemake.wildcards.split, snakemake.wildcards.material
unit = read_extxyz(snakemake.input.structure)[0]
images = make_split(unit, split, snakemake.params.n, seed=settings.pop("seed"), what=f"material {material!r}",
                    **settings)
log(f"{len(images)} rattled {split} supercells of {len(images[0])} atoms")
write_extxyz(snakemake.output[0], images)
