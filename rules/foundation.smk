if config["foundation"].get("model"):

    rule foundation:
        input:
            config["foundation"]["model"],
        output:
            "results/foundation/model.model",
        log:
            "results/logs/foundation/foundation.log",
        conda:
            "../envs/mlip.yaml"
        script:
            "../scripts/foundation_copy.py"

else:

    rule foundation:
        output:
            model="results/foundation/model.model",
            replay="results/foundation/pretrain_train.extxyz",
            valid="results/foundation/pretrain_valid.extxyz",
            record="results/foundation/train.json",
        params:
            settings=config["foundation"],
            dtype=config["finetune"]["dtype"],
            device=config["finetune"]["device"],
        threads: 2
        resources:
            gpu=config["finetune"].get("gpus", 0),
            runtime=120,
        log:
            "results/logs/foundation/foundation.log",
        benchmark:
            "results/benchmarks/foundation/foundation.tsv"
        conda:
            "../envs/mlip.yaml"
        script:
            "../scripts/foundation.py"
