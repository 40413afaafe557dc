"""Snakemake adapter: how many structures each material needs (phononft.recommend.recommendation), printed."""
import numpy as np

from phononft.figures.data import load_table
from phononft.io import read_json
from phononft.layout import material_of
from phononft.logs import announce, rule_logger
from phononft.recommend import recommendation
from phononft.summary import write_table

log = rule_logger(snakemake.log[0])
p, i = snakemake.params, snakemake.input
per_seed = {}  # material -> the first-round committee's median force disagreement (eV/Å) of each seed's pool
for path in i.rankings:
    d = read_json(path)["median_disagreement"]
    if d is not None:
        per_seed.setdefault(material_of(path), []).append(d)
disagreements = {m: float(np.median(v)) for m, v in per_seed.items()}
for m, v in per_seed.items():
    log(f"{m}: committee disagreement per seed {', '.join(f'{x:.4f}' for x in v)} eV/Å, median {disagreements[m]:.4f}")
table, fit = recommendation(load_table(i.table, selection=None), p.target, p.metric, disagreements or None)
write_table(table, snakemake.output[0])
best = table[table.strategy == "best"]
for row in best.itertuples():
    need = "never" if row.budget_needed != row.budget_needed else f"N = {int(row.budget_needed)}"
    announce(f"{row.material} ({row.selection}): {p.metric} < {p.target} needs {need} (best strategy)")
announce(f"prediction from committee disagreement: {fit['reason']}")
for row in best[best.selection == "random"].itertuples():
    if row.predicted_budget == row.predicted_budget:  # not NaN
        measured = (f"leave-one-out, measured {row.budget_needed:g}" if row.material in fit.get("loo", {})
                    else "not in the fit: no measured N")
        announce(f"{row.material}: predicted N = {row.predicted_budget:.1f} [{row.predicted_low:.1f}-"
                 f"{row.predicted_high:.1f}] from disagreement {row.disagreement:.4f} eV/Å ({measured})")
log(f"wrote {snakemake.output[0]}")
