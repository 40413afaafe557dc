# Summary: every model's and reference's metrics.json in one tidy table (one row per material x strategy x
# budget x seed x metric, with units), labelling cost included.
rule summary:
    input:
        models=all_evaluation_jobs(),
        references=reference_metrics(),
    output:
        layout.summary(),
    params:
        runs=model_runs(config),
        metrics=all_model_metrics(),
        budgets=config["budgets"],
        label_jobs=label_benchmarks(),
    log:
        layout.log("summary", "summary"),
    conda:
        "../envs/plots.yaml"
    script:
        "../scripts/summary.py"
