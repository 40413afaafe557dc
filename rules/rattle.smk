rule rattle:
    input:
        structure="results/{material}/structure.extxyz",
    output:
        "results/{material}/rattled/{split}.extxyz",
    params:
        settings=config["rattle"],
        n=lambda w: {
            "train": max(config["budgets"]),
            "valid": config["rattle"]["n_valid"],
            "test": config["rattle"]["n_test"],
        }[w.split],
    log:
        "results/logs/rattle/{material}_{split}.log",
    conda:
        "../envs/phonons.yaml"
    script:
        "../scripts/rattle.py"
