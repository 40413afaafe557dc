rule label:
    input:
        "results/{material}/rattled/{split}.extxyz",
    output:
        "results/{material}/labelled/{split}.extxyz",
    params:
        labeller=config["labeller"],
    log:
        "results/logs/label/{material}_{split}.log",
    benchmark:
        "results/benchmarks/label/{material}_{split}.tsv"
    conda:
        "../envs/phonons.yaml"
    script:
        "../scripts/label.py"
