"""Snakemake adapter: fig05, imaginary modes and the energy surface along them (phononft.figures.bands)."""
from phononft import layout
from phononft.figures.bandfiles import eval_files
from phononft.figures.bands import fig05_imaginary_modes
from phononft.logs import rule_logger

log = rule_logger(snakemake.log[0])
p, i = snakemake.params, snakemake.input
models = dict(budget=p.budget, seed=p.seed, strategies=p.strategies)
fig05_imaginary_modes(i.reference_bands, eval_files(layout.RESULTS, p.material, filename="bands.json", **models),
                      i.reference_surface, eval_files(layout.RESULTS, p.material, filename="surface.json", **models),
                      snakemake.output.png, snakemake.output.pdf, material=p.material)
log(f"wrote {snakemake.output.png} ({p.material}, N = {p.budget}, seed {p.seed})")
