"""Snakemake adapter: band RMSE and force MAE versus budget (phononft.figures)."""
from phononft.figures import budget_curves, load_table
from phononft.logs import rule_logger

log = rule_logger(snakemake.log[0])
budget_curves(load_table(snakemake.input[0]), out_png=snakemake.output.png, out_pdf=snakemake.output.pdf)
log(f"wrote {snakemake.output.png}")
