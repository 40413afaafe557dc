"""Snakemake adapter: the tidy metrics table (phononft.summary)."""
from phononft.summary import collect, write_table
from phononft.logs import rule_logger

log = rule_logger(snakemake.log[0])
runs = [tuple(r) for r in snakemake.params.runs]
series = max(snakemake.params.budgets)
label_jobs = snakemake.params.label_jobs  # benchmark files of the jobs that labelled the training series
benchmarks = {r: {"label": (label_jobs[r[0]], r[2] / series)} for r in runs}  # the share budget N uses
df = collect(list(snakemake.params.metrics), list(snakemake.input.references), runs, benchmarks)
write_table(df, snakemake.output[0])
log(f"{len(df)} rows, {df['metric'].nunique()} metrics, {(df['status'] == 'missing').sum()} missing")
