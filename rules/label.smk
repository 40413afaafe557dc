# Label: energies, forces and stresses of every rattled structure.
# mock: one job per split with an ASE calculator.  vasp: one job per `structures_per_job` structures (rule
# label_vasp, so that a cluster runs them in parallel), each structure in its own job directory, gathered per
# split by rule label.  The number of structures of each split is known from the config: no checkpoint.
# Own data (materials.<m>.data): the split holds the user's labelled structures (phononft.dataset), followed by
# rattled ones labelled as above only where the plan asks for them (data.mix, data.valid_test: labeller); the
# number of structures is known from the files' cached summaries.
rule label:
    input:
        unpack(label_inputs),
    output:
        layout.labelled("{material}", "{split}"),
    params:
        labeller=label_settings,
        data=data_split,
        n=lambda w: rattled_needed(w.material, w.split),
    log:
        layout.log("label", "{material}_{split}"),
    benchmark:
        layout.benchmark("label", "{material}_{split}")
    conda:
        "../envs/phonons.yaml"
    script:
        "../scripts/label.py"


rule label_vasp:
    input:
        rattled=label_source,
    output:
        # job {job} labels structures [job * structures_per_job, ...), each in its own directory
        # label/vasp/{split}/{index}/, kept: a rerun reuses a finished calculation (phononft.vasp)
        layout.vasp_label_batch("{material}", "{split}", "{job}"),
    wildcard_constraints:
        job=r"\d+",
    params:
        command=VASP.get("command"),  # required (and checked) for labeller type vasp only
        settings=VASP_SETTINGS,
        structures_per_job=STRUCTURES_PER_JOB,
    threads: VASP_RESOURCES["threads"]
    resources:
        mem_mb=VASP_RESOURCES["mem_mb"],
        runtime=runtime(RUNTIMES["label_vasp"]),
        tasks=VASP_RESOURCES["tasks"],
        cpus_per_task=VASP_RESOURCES["cpus_per_task"],
    log:
        layout.log("label", "{material}/vasp_{split}_{job}"),
    benchmark:
        layout.benchmark("label", "{material}/vasp_{split}_{job}")
    conda:
        "../envs/phonons.yaml"
    script:
        "../scripts/label_vasp.py"
