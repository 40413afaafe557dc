# Evaluate: one job evaluates every budget x seed of a material x strategy against the reference into its
# folder evaluate/<strategy>/n<N>/s<seed>/ (metrics.json, phonopy.yaml, bands.json, thermal.json,
# surface.json); rules/common.smk says why.  The zero-shot models have a rule of their own.
# What an evaluation depends on: the phonon and evaluation settings (never the figures or other materials).
EVALUATE_SETTINGS = evaluate_settings(config)


rule evaluate:
    input:
        structure=layout.reference("{material}", "relaxed.extxyz"),
        models=layout.job("finetune", "{material}", "{strategy}"),
        reference=layout.reference("{material}", "phonopy.yaml"),
        modes=layout.reference("{material}", "modes.json"),
        test=layout.labelled("{material}", "test"),
        general=general_file(),
    output:
        directory(layout.job("evaluate", "{material}", "{strategy}")),
    wildcard_constraints:
        strategy="|".join(TRAINED_STRATEGIES) or "(?!)",
    params:
        settings=EVALUATE_SETTINGS,
        runs=TRAINED_RUNS,
    threads: 1
    resources:
        runtime=runtime(RUNTIMES["evaluate"]),
    log:
        layout.log("evaluate", "{material}/{strategy}"),
    benchmark:
        layout.benchmark("evaluate", "{material}/{strategy}")
    conda:
        "../envs/mlip.yaml"
    script:
        "../scripts/evaluate.py"


use rule evaluate as evaluate_zero_shot with:
    input:
        structure=layout.reference("{material}", "relaxed.extxyz"),
        models=layout.job("finetune", "{material}", "pretrained"),
        reference=layout.reference("{material}", "phonopy.yaml"),
        modes=layout.reference("{material}", "modes.json"),
        test=layout.labelled("{material}", "test"),
        general=general_file(),
    output:
        directory(layout.job("evaluate", "{material}", "pretrained")),
    params:
        settings=EVALUATE_SETTINGS,
        runs=ZERO_SHOT_RUNS,
    resources:
        runtime=runtime(config["evaluate"]["runtime"] * len(ZERO_SHOT_RUNS)),
    log:
        layout.log("evaluate", "{material}/pretrained"),
    benchmark:
        layout.benchmark("evaluate", "{material}/pretrained")
