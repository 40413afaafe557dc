rule aggregate:
    input:
        models=all_model_metrics(),
        references=reference_metrics(),
    output:
        "results/summary/metrics.csv",
    params:
        runs=model_runs(config),
        budgets=config["budgets"],
    log:
        "results/logs/aggregate/aggregate.log",
    conda:
        "../envs/plots.yaml"
    script:
        "../scripts/aggregate.py"
