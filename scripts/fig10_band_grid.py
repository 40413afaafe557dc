"""Snakemake adapter: fig10, one material's full band structure, one panel per model, with its band RMSE
(phononft.figures.bands)."""
from phononft import layout
from phononft.figures.bandfiles import eval_files
from phononft.figures.bands import fig10_band_grid, rmse_notes
from phononft.logs import rule_logger

log = rule_logger(snakemake.log[0])
p = snakemake.params
models = eval_files(layout.RESULTS, p.material, budget=p.budget, seed=p.seed, strategies=p.strategies)
fig10_band_grid(snakemake.input.reference_bands, models, snakemake.output.png, snakemake.output.pdf,
                material=p.material,
                annotations=rmse_notes(snakemake.input.table, p.material, p.strategies, p.budget, p.seed))
log(f"wrote {snakemake.output.png} ({p.material}, N = {p.budget}, seed {p.seed})")
