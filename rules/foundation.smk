# Foundation: the pretrained model every strategy starts from: a local MACE model file (foundation.model,
# e.g. MACE-MP-0b3), or the embedded demo foundation pretrained by the workflow on a softer reference.
if config["foundation"]["model"]:

    rule foundation:
        input:
            config["foundation"]["model"],
        output:
            layout.foundation(),
        log:
            layout.log("foundation", "foundation"),
        conda:
            "../envs/mlip.yaml"
        script:
            "../scripts/foundation_copy.py"

else:

    rule foundation:
        output:
            model=layout.foundation(),
            replay=layout.foundation("pretrain_train.extxyz"),
            valid=layout.foundation("pretrain_valid.extxyz"),
            record=layout.foundation("train.json"),
        params:
            settings=config["foundation"]["pretrain"],
            dtype=config["finetune"]["dtype"],
            device=config["finetune"]["device"],
        # one thread: in float32 the pretrained bits depend on the thread count (measured 2026-12-02: 1 and 2
        # threads give different models), so any --cores gives the same foundation
        threads: 1
        resources:
            gpu=TRAINING_GPUS,
            runtime=runtime(RUNTIMES["foundation"]),
        log:
            layout.log("foundation", "foundation"),
        benchmark:
            layout.benchmark("foundation", "foundation")
        conda:
            "../envs/mlip.yaml"
        script:
            "../scripts/foundation.py"
