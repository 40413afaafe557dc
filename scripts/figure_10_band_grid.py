"""Snakemake adapter: fig10, one material's full band structure, one panel per model, with its band RMSE."""
from phononft.figures import fig10_band_grid, load_table, model_label
from phononft.logs import rule_logger

log = rule_logger(snakemake.log[0])
p = snakemake.params
df = load_table(snakemake.input.table)
rmse = df[(df.material == p.material) & (df.metric == "rmse") & (df.seed == p.seed)]
labels, notes = [model_label(s, p.budget) for s in p.strategies], {}
for s, label in zip(p.strategies, labels):
    v = rmse.loc[(rmse.strategy == s) & (rmse.budget == (0 if s == "pretrained" else p.budget)), "value"]
    if len(v) and v.notna().all():
        notes[label] = f"RMSE {float(v.iloc[0]):.3f} THz"
fig10_band_grid(snakemake.input.reference, dict(zip(labels, p.model_bands)), snakemake.output.png,
                snakemake.output.pdf, material=p.material, annotations=notes)
log(f"wrote {snakemake.output.png} ({p.material}, N = {p.budget}, seed {p.seed})")
