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


# One job evaluates every budget x seed of a material x strategy into its folder
# results/{material}/eval/{strategy}/n{budget}/s{seed}/ (metrics.json, phonopy.yaml, bands.json, thermal.json,
# surface.json); rules/common.smk says why.  The zero-shot models have a rule of their own.
rule evaluate_model:
    input:
        structure="results/{material}/structure.extxyz",
        models="results/{material}/models/{strategy}",
        reference="results/{material}/eval/reference/phonopy.yaml",
        modes="results/{material}/eval/reference/modes.json",
        test="results/{material}/labelled/test.extxyz",
    output:
        directory("results/{material}/eval/{strategy}"),
    wildcard_constraints:
        strategy="|".join(TRAINED_STRATEGIES) or "(?!)",
    params:
        settings=config,
        runs=TRAINED_RUNS,
    threads: 1
    log:
        "results/logs/evaluate/{material}/{strategy}.log",
    benchmark:
        "results/benchmarks/evaluate/{material}/{strategy}.tsv"
    conda:
        "../envs/mlip.yaml"
    script:
        "../scripts/evaluate_model.py"


use rule evaluate_model as evaluate_zero_shot with:
    input:
        structure="results/{material}/structure.extxyz",
        models="results/{material}/models/pretrained",
        reference="results/{material}/eval/reference/phonopy.yaml",
        modes="results/{material}/eval/reference/modes.json",
        test="results/{material}/labelled/test.extxyz",
    output:
        directory("results/{material}/eval/pretrained"),
    params:
        settings=config,
        runs=ZERO_SHOT_RUNS,
    log:
        "results/logs/evaluate/{material}/pretrained.log",
    benchmark:
        "results/benchmarks/evaluate/{material}/pretrained.tsv"
