rule finetune:
    input:
        foundation="results/foundation/model.model",
        train="results/{material}/labelled/train.extxyz",
        valid="results/{material}/labelled/valid.extxyz",
        replay=lambda w: foundation_replay() if w.strategy == "multihead" else [],
    output:
        model="results/{material}/models/{strategy}/n{budget}/s{seed}/model.model",
        record="results/{material}/models/{strategy}/n{budget}/s{seed}/train.json",
    params:
        settings=lambda w: strategy_params(config, w.strategy),
        device=config["finetune"]["device"],
        dtype=config["finetune"]["dtype"],
        workdir=lambda w: f"results/{w.material}/models/{w.strategy}/n{w.budget}/s{w.seed}/work",
    threads: 1
    resources:
        gpu=lambda w: 0 if w.strategy == "pretrained" else config["finetune"].get("gpus", 0),
        runtime=60,
    log:
        "results/logs/finetune/{material}/{strategy}_n{budget}_s{seed}.log",
    benchmark:
        "results/benchmarks/finetune/{material}/{strategy}_n{budget}_s{seed}.tsv"
    conda:
        "../envs/mlip.yaml"
    script:
        "../scripts/finetune.py"
