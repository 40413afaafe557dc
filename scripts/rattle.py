"""Snakemake adapter: rattled supercells of one split (phononft.rattle)."""
from phononft.io import read_extxyz, write_extxyz
from phononft.rattle import make_split
from phononft.runlog import rule_logger

log = rule_logger(snakemake.log[0])
s = dict(snakemake.params.settings)
split, material = snakemake.wildcards.split, snakemake.wildcards.material
unit = read_extxyz(snakemake.input.structure)[0]
images = make_split(unit, split, snakemake.params.n, seed=s.pop("seed"), what=f"material {material!r}",
                    **{k: v for k, v in s.items() if k not in ("n_valid", "n_test")})
log(f"{len(images)} rattled {split} supercells of {len(images[0])} atoms")
write_extxyz(snakemake.output[0], images)
