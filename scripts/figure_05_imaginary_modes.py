"""Snakemake adapter: fig05, imaginary modes and the energy surface along them (phononft.figures)."""
from phononft.figures import fig05_imaginary_modes, model_label
from phononft.logs import rule_logger

log = rule_logger(snakemake.log[0])
p, i = snakemake.params, snakemake.input
labels = [model_label(s, p.budget) for s in p.strategies]
fig05_imaginary_modes(i.reference_bands, dict(zip(labels, p.model_bands)), i.reference_surface,
                      dict(zip(labels, p.model_surfaces)), snakemake.output.png, snakemake.output.pdf,
                      material=p.material)
log(f"wrote {snakemake.output.png} ({p.material}, N = {p.budget}, seed {p.seed})")
