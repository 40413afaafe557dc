"""Snakemake adapter: fig13_budget_curves, band RMSE and force MAE versus the budget (phononft.figures.budget)."""
from phononft.figures.budget import fig13_budget_curves
from phononft.logs import rule_logger

log = rule_logger(snakemake.log[0])
fig13_budget_curves(snakemake.input.table, snakemake.output.png, snakemake.output.pdf)
log(f"wrote {snakemake.output.png}")
