rule evaluate_reference:
    input:
        unpack(reference_inputs),
    output:
        metrics="results/{material}/eval/reference/metrics.json",
        phonopy="results/{material}/eval/reference/phonopy.yaml",
        bands="results/{material}/eval/reference/bands.json",
        thermal="results/{material}/eval/reference/thermal.json",
        surface="results/{material}/eval/reference/surface.json",
        modes="results/{material}/eval/reference/modes.json",
    params:
        labeller=config["labeller"],
        settings=config,
    log:
        "results/logs/evaluate/{material}_reference.log",
    benchmark:
        "results/benchmarks/evaluate/{material}_reference.tsv"
    conda:
        "../envs/phonons.yaml"
    script:
        "../scripts/evaluate_reference.py"


rule evaluate_model:
    input:
        structure="results/{material}/structure.extxyz",
        model="results/{material}/models/{strategy}/n{budget}/s{seed}/model.model",
        record="results/{material}/models/{strategy}/n{budget}/s{seed}/train.json",
        reference="results/{material}/eval/reference/phonopy.yaml",
        modes="results/{material}/eval/reference/modes.json",
        test="results/{material}/labelled/test.extxyz",
    output:
        metrics="results/{material}/eval/{strategy}/n{budget}/s{seed}/metrics.json",
        phonopy="results/{material}/eval/{strategy}/n{budget}/s{seed}/phonopy.yaml",
        bands="results/{material}/eval/{strategy}/n{budget}/s{seed}/bands.json",
        thermal="results/{material}/eval/{strategy}/n{budget}/s{seed}/thermal.json",
        surface="results/{material}/eval/{strategy}/n{budget}/s{seed}/surface.json",
    params:
        settings=config,
    threads: 1
    log:
        "results/logs/evaluate/{material}/{strategy}_n{budget}_s{seed}.log",
    benchmark:
        "results/benchmarks/evaluate/{material}/{strategy}_n{budget}_s{seed}.tsv"
    conda:
        "../envs/mlip.yaml"
    script:
        "../scripts/evaluate_model.py"
