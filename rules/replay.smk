# Replay: per material, the pretraining structures multihead fine-tuning replays (made only of the material's
# elements, at most num_samples_pt, farthest-point sampling on the foundation's descriptors, as mace-torch's
# fine-tuning selection does), and the general set on which every model's forgetting is measured.
rule replay:
    input:
        pretraining=pretraining_data(),
        train=layout.labelled("{material}", FIRST_TRAIN_SPLIT),  # the material's elements
        foundation=layout.foundation(),
    output:
        layout.replay("{material}"),
    params:
        num_samples=REPLAY_SAMPLES,
        seed=config["foundation"]["general_seed"],
        dtype=config["evaluate"]["dtype"],
    log:
        layout.log("replay", "{material}"),
    benchmark:
        layout.benchmark("replay", "{material}")
    conda:
        "../envs/mlip.yaml"
    script:
        "../scripts/replay.py"


rule replay_general:
    input:
        unpack(general_inputs),
    output:
        layout.general(),
    params:
        n_samples=config["foundation"]["general_samples"],
        seed=config["foundation"]["general_seed"],
    log:
        layout.log("replay", "general"),
    conda:
        "../envs/phonons.yaml"
    script:
        "../scripts/replay_general.py"
