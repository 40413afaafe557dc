# Rattle: Monte Carlo rattled supercells (hiphive), seeded: each seed's candidate pool of training structures
# (train_s<seed>; the random selection's series is its first N, every budget trains on a prefix), and the
# valid and test splits, the same for every seed.
RATTLE_SETTINGS = {k: v for k, v in config["rattle"].items() if k not in ("n_valid", "n_test")}
# valid and test are never cell-strained: an edit of cell_strain re-rattles the training pools only
SPLIT_SETTINGS = {k: v for k, v in RATTLE_SETTINGS.items() if k != "cell_strain"}


rule rattle:
    input:
        structure=layout.reference("{material}", "relaxed.extxyz"),  # the reference's relaxed cell
    output:
        layout.rattled("{material}", "{split}"),
    params:
        settings=lambda w: RATTLE_SETTINGS if w.split.startswith("train_s") else SPLIT_SETTINGS,
        n=lambda w: n_structures(w.split),
    wildcard_constraints:
        split=r"train_s\d+|valid|test",
    log:
        layout.log("rattle", "{material}_{split}"),
    conda:
        "../envs/phonons.yaml"
    script:
        "../scripts/rattle.py"
