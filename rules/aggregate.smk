rule aggregate:
    input:
        models=all_eval_jobs(),
        references=reference_metrics(),
    output:
        "results/summary/metrics.csv",
    params:
        runs=model_runs(config),
        metrics=all_model_metrics(),
        budgets=config["budgets"],
        label_jobs=label_benchmarks(),
    log:
        "results/logs/aggregate/aggregate.log",
    conda:
        "../envs/plots.yaml"
    script:
        "../scripts/aggregate.py"
