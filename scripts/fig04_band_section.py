"""Snakemake adapter: fig04, a section of one material's band structure, reference vs models
(phononft.figures.bands)."""
from phononft import layout
from phononft.figures.bandfiles import eval_files
from phononft.figures.bands import fig04_band_section
from phononft.logs import rule_logger

log = rule_logger(snakemake.log[0])
p = snakemake.params
models = eval_files(layout.RESULTS, p.material, budget=p.budget, seed=p.seed, strategies=p.strategies)
fig04_band_section(snakemake.input.reference_bands, models, snakemake.output.png, snakemake.output.pdf,
                   segments=tuple(p.segments), material=p.material)
log(f"wrote {snakemake.output.png} ({p.material}, N = {p.budget}, seed {p.seed})")
