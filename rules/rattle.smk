# Rattle: Monte Carlo rattled supercells of each split (hiphive), seeded and nested: the training series is
# as long as the largest budget, and every budget trains on its first N structures.
RATTLE_SETTINGS = {k: v for k, v in config["rattle"].items() if k not in ("n_valid", "n_test")}


rule rattle:
    input:
        structure=layout.reference("{material}", "relaxed.extxyz"),  # the reference's relaxed cell
    output:
        layout.rattled("{material}", "{split}"),
    params:
        settings=RATTLE_SETTINGS,
        n=lambda w: N_STRUCTURES[w.split],
    log:
        layout.log("rattle", "{material}_{split}"),
    conda:
        "../envs/phonons.yaml"
    script:
        "../scripts/rattle.py"
