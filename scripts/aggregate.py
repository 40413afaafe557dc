"""Snakemake adapter: the tidy metrics table (phononft.aggregate)."""
from phononft.aggregate import collect, write_table
from phononft.runlog import rule_logger

log = rule_logger(snakemake.log[0])
runs = [tuple(r) for r in snakemake.params.runs]
series = max(snakemake.params.budgets)
benchmarks = {  # labelling: the share of the training series this budget uses
    r: {"finetune": f"results/benchmarks/finetune/{r[0]}/{r[1]}_n{r[2]}_s{r[3]}.tsv",
        "evaluate": f"results/benchmarks/evaluate/{r[0]}/{r[1]}_n{r[2]}_s{r[3]}.tsv",
        "label": (f"results/benchmarks/label/{r[0]}_train.tsv", r[2] / series)}
    for r in runs
}
df = collect(list(snakemake.input.models), list(snakemake.input.references), runs, benchmarks)
write_table(df, snakemake.output[0])
log(f"{len(df)} rows, {df['metric'].nunique()} metrics, {(df['status'] == 'missing').sum()} missing")
