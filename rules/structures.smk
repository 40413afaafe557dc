rule structures:
    output:
        structure="results/{material}/structure.extxyz",
        summary="results/{material}/structure.json",
    params:
        spec=lambda w: config["materials"][w.material],
        settings=config["structures"],
    log:
        "results/logs/structures/{material}.log",
    conda:
        "../envs/phonons.yaml"
    script:
        "../scripts/structures.py"
