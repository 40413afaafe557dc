rule figure_budget_curves:
    input:
        "results/summary/metrics.csv",
    output:
        png=report("results/figures/budget_curves.png", caption="../report/budget_curves.rst", category="Figures"),
        pdf="results/figures/budget_curves.pdf",
    log:
        "results/logs/figures/budget_curves.log",
    conda:
        "../envs/plots.yaml"
    script:
        "../scripts/figure_budget_curves.py"


rule figures:
    input:
        figure_targets(),
