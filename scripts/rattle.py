"""Snakemake adapter: rattled supercells of a seed's pool or of a split (phononft.rattle.make_pool, make_split)."""
from phononft.io import read_extxyz, write_extxyz
from phononft.logs import rule_logger
from phononft.rattle import make_pool, make_split, train_seed

log = rule_logger(snakemake.log[0])
settings = dict(snakemake.params.settings)
split, material = snakemake.wildcards.split, snakemake.wildcards.material
unit = read_extxyz(snakemake.input.structure)[0]
seed, cell_strain = settings.pop("seed"), settings.pop("cell_strain", 0.0)  # pools only
if split.startswith("train_s"):  # the candidate pool of one seed (each seed draws its own series)
    images = make_pool(unit, snakemake.params.n, seed=train_seed(seed, int(split.removeprefix("train_s"))),
                       cell_strain=cell_strain, what=f"material {material!r}", **settings)
else:
    images = make_split(unit, split, snakemake.params.n, seed=seed, what=f"material {material!r}", **settings)
log(f"{len(images)} rattled {split} supercells of {len(images[0])} atoms")
write_extxyz(snakemake.output[0], images)
