"""Snakemake adapter: the tidy metrics table (phononft.summary)."""
from phononft.config import Run
from phononft.layout import train_split
from phononft.logs import rule_logger
from phononft.summary import collect, write_table

log = rule_logger(snakemake.log[0])
runs = [Run(*r) for r in snakemake.params.runs]
series = max(snakemake.params.budgets)
label_jobs = snakemake.params.label_jobs  # benchmark files of the jobs that labelled each training series
benchmarks = {r: {"label": (label_jobs[f"{r.material}/{train_split(r.selection, r.seed)}"], r.budget / series)}
              for r in runs}  # the share of its series budget N uses
df = collect(list(snakemake.params.metrics), list(snakemake.input.references), runs, benchmarks)
write_table(df, snakemake.output[0])
log(f"{len(df)} rows, {df['metric'].nunique()} metrics, {(df['status'] == 'missing').sum()} missing")
