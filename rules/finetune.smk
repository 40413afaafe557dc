# Finetune: one job trains every selection x budget x seed of a material x strategy into its folder
# finetune/<strategy>/[<selection>/]n<N>/s<seed>/ (rules/common.smk says why); budget N trains on the first N of
# the training series of its selection and seed; a model finished by an earlier, failed run of
# the job is reused, not retrained (results/<material>/.finished/, phononft.reuse).
# What a model depends on: its strategy's options, the recipe and the lr grid (phononft.config.finetune_settings),
# dtype and device (never another strategy's options).
rule finetune:
    input:
        unpack(training_inputs),
    output:
        directory(layout.job("finetune", "{material}", "{strategy}")),
    wildcard_constraints:
        strategy="|".join(TRAINED_STRATEGIES) or "(?!)",
    params:
        settings=lambda w: finetune_settings(config, w.strategy),
        runs=TRAINED_RUNS,
        device=config["finetune"]["device"],
        dtype=config["finetune"]["dtype"],
    threads: 1
    resources:
        gpu=TRAINING_GPUS,
        runtime=runtime(RUNTIMES["finetune"]),
    log:
        layout.log("finetune", "{material}/{strategy}"),
    benchmark:
        layout.benchmark("finetune", "{material}/{strategy}")
    conda:
        "../envs/mlip.yaml"
    script:
        "../scripts/finetune.py"


# zero-shot: the foundation itself (a hard link to it, per seed), no training, no GPU
use rule finetune as zero_shot with:
    input:
        unpack(training_inputs),
    output:
        directory(layout.job("finetune", "{material}", "pretrained")),
    params:
        settings=finetune_settings(config, "pretrained"),
        runs=ZERO_SHOT_RUNS,
        device=config["finetune"]["device"],
        dtype=config["finetune"]["dtype"],
    resources:
        gpu=0,
        runtime=runtime(10),
    log:
        layout.log("finetune", "{material}/pretrained"),
    benchmark:
        layout.benchmark("finetune", "{material}/pretrained")
