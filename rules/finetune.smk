# Fine-tuning: one job trains every budget x seed of a material x strategy into its folder
# results/{material}/models/{strategy}/n{budget}/s{seed}/ (rules/common.smk says why); a model finished by an
# earlier, failed run of the job is reused, not retrained (results/{material}/.finished/, phononft.runlog).
rule finetune:
    input:
        foundation="results/foundation/model.model",
        train="results/{material}/labelled/train.extxyz",
        valid="results/{material}/labelled/valid.extxyz",
        replay=lambda w: foundation_replay() if w.strategy == "multihead" else [],
    output:
        directory("results/{material}/models/{strategy}"),
    wildcard_constraints:
        strategy="|".join(TRAINED_STRATEGIES) or "(?!)",
    params:
        settings=lambda w: strategy_params(config, w.strategy),
        runs=TRAINED_RUNS,
        device=config["finetune"]["device"],
        dtype=config["finetune"]["dtype"],
    threads: 1
    resources:
        gpu=config["finetune"].get("gpus", 0),
        runtime=config["finetune"].get("runtime", 60) * len(TRAINED_RUNS),
    log:
        "results/logs/finetune/{material}/{strategy}.log",
    benchmark:
        "results/benchmarks/finetune/{material}/{strategy}.tsv"
    conda:
        "../envs/mlip.yaml"
    script:
        "../scripts/finetune.py"


# zero-shot: the foundation itself (a hard link to it, per seed), no training, no GPU
use rule finetune as zero_shot with:
    input:
        foundation="results/foundation/model.model",
        train="results/{material}/labelled/train.extxyz",
        valid="results/{material}/labelled/valid.extxyz",
        replay=[],
    output:
        directory("results/{material}/models/pretrained"),
    params:
        settings=strategy_params(config, "pretrained"),
        runs=ZERO_SHOT_RUNS,
        device=config["finetune"]["device"],
        dtype=config["finetune"]["dtype"],
    resources:
        gpu=0,
        runtime=10,
    log:
        "results/logs/finetune/{material}/pretrained.log",
    benchmark:
        "results/benchmarks/finetune/{material}/pretrained.tsv"
