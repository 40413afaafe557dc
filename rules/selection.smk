# Selection: which structures of a seed's candidate pool are labelled for training, in which order (a nested
# ranking: budget N trains on the first N).  random needs no job: its series is the pool's first N.  fps ranks
# by farthest-point sampling on the foundation's descriptors; uncertainty picks in rounds at the budget
# boundaries the structures a committee of cheap fine-tunes disagrees on most (labelling in the job: in-process
# labellers only).  Only the selected structures are labelled (rules/label.smk).
rule selection:
    input:
        unpack(selection_inputs),
    output:
        series=layout.selected("{material}", "{selection}", "{seed}"),
        ranking=layout.ranking("{material}", "{selection}", "{seed}"),
    wildcard_constraints:
        selection="|".join(s for s in SELECTIONS if s != "random") or "(?!)",
        seed=r"\d+",
    params:
        settings=config["selection"],
        budgets=config["budgets"],
        labeller=lambda w: LABEL_SETTINGS if w.selection == "uncertainty" else None,
        dtype=config["finetune"]["dtype"],
    threads: 1
    log:
        layout.log("selection", "{material}_{selection}_s{seed}"),
    benchmark:
        layout.benchmark("selection", "{material}_{selection}_s{seed}")
    conda:
        "../envs/mlip.yaml"
    script:
        "../scripts/selection.py"
