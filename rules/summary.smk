# Summary: every model's and reference's metrics.json in one tidy table (one row per material x strategy x
# budget x seed x metric, with units), labelling cost included.
rule summary:
    input:
        models=all_evaluation_jobs(),
        references=reference_metrics(),
    output:
        layout.summary(),
    params:
        runs=[tuple(run) for run in model_runs(config)],
        metrics=all_model_metrics(),
        budgets=config["budgets"],
        label_jobs=label_benchmarks(),
    log:
        layout.log("summary", "summary"),
    conda:
        "../envs/plots.yaml"
    script:
        "../scripts/summary.py"


# How many structures do I need?  Per material x strategy x selection, the smallest N reaching the target
# (figures.cost_metric < figures.cost_target), and a prediction of it from the committee disagreement of the
# uncertainty selection (its first round's committee, median over the seeds' pools), checked leave-one-out
# against the measured materials (phononft.recommend).
rule recommendation:
    input:
        table=layout.summary(),
        rankings=[layout.ranking(m, "uncertainty", seed) for m in MATERIALS for seed in SEEDS]
        if "uncertainty" in SELECTIONS else [],
    output:
        layout.summary("recommendation.csv"),
    params:
        metric=config["figures"]["cost_metric"],
        target=config["figures"]["cost_target"],
    log:
        layout.log("summary", "recommendation"),
    conda:
        "../envs/plots.yaml"
    script:
        "../scripts/recommendation.py"


# The study's headline claims checked on this run (phononft.claims), printed at the end of the run: at N = 10
# (else the largest budget) every fine-tuning strategy beats zero-shot, the best beats scratch, and zero-shot
# lies in MACE-MP-0b3's benchmark range.
rule claims:
    input:
        table=layout.summary(),
    output:
        layout.summary("claims.csv"),
    params:
        budget=10 if 10 in config["budgets"] else max(config["budgets"]),
    log:
        layout.log("summary", "claims"),
    conda:
        "../envs/plots.yaml"
    script:
        "../scripts/claims.py"
