"""Snakemake adapter: fig04, a section of one material's band structure, reference vs models."""
from phononft.figures import fig04_band_section, model_label
from phononft.logs import rule_logger

log = rule_logger(snakemake.log[0])
p = snakemake.params
labels = [model_label(s, p.budget) for s in p.strategies]
fig04_band_section(snakemake.input.reference, dict(zip(labels, p.model_bands)),
                   snakemake.output.png, snakemake.output.pdf, segments=tuple(p.segments),
                   material=p.material)
log(f"wrote {snakemake.output.png} ({p.material}, N = {p.budget}, seed {p.seed})")
