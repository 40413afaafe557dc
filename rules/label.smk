# Labelling: energies, forces and stresses of every rattled structure.
# mock: one job per split with an ASE calculator.  vasp: one job per `structures_per_job` structures (rule
# label_vasp, so that a cluster runs them in parallel), each structure in its own job directory, gathered per
# split by rule label.  The number of structures of each
# split is known from the config, so the DAG needs no checkpoint.


include: "label_common.smk"


rule label:
    input:
        unpack(label_inputs),
    output:
        "results/{material}/labelled/{split}.extxyz",
    params:
        labeller=config["labeller"],
    log:
        "results/logs/label/{material}_{split}.log",
    benchmark:
        "results/benchmarks/label/{material}_{split}.tsv"
    conda:
        "../envs/phonons.yaml"
    script:
        "../scripts/label.py"


rule label_vasp:
    input:
        rattled="results/{material}/rattled/{split}.extxyz",
    output:
        # job {job} labels structures [job * structures_per_job, ...), each in its own directory
        # results/{material}/labelled/vasp/{split}/{index}/, kept: a rerun reuses a finished calculation
        # (phononft.vasp.run_vasp) instead of repeating it
        "results/{material}/labelled/vasp/{split}/job{job}.extxyz",
    wildcard_constraints:
        job=r"\d+",
    params:
        command=VASP.get("command", ""),
        settings=vasp_settings(),
        structures_per_job=STRUCTURES_PER_JOB,
    threads: VASP_RESOURCES.get("threads", 1)
    resources:
        mem_mb=VASP_RESOURCES.get("mem_mb", 4000),
        runtime=VASP_RESOURCES.get("runtime", 120) * STRUCTURES_PER_JOB,
        tasks=VASP_RESOURCES.get("tasks", 1),
        cpus_per_task=VASP_RESOURCES.get("cpus_per_task", 1),
    log:
        "results/logs/label_vasp/{material}/{split}_{job}.log",
    benchmark:
        "results/benchmarks/label_vasp/{material}/{split}_{job}.tsv"
    conda:
        "../envs/phonons.yaml"
    script:
        "../scripts/label_vasp.py"


# Reference phonons with the VASP labeller (materials without reference_phonopy): the structure is taken
# as relaxed; phonopy's displaced supercells (index 1..n) and the undisplaced one (index 0, whose residual
# forces are subtracted) are labelled as one VASP job each and gathered by rule evaluate_reference.
checkpoint reference_displacements:
    input:
        structure="results/{material}/structure.extxyz",
    output:
        disp="results/{material}/eval/reference/vasp/phonopy_disp.yaml",
        summary="results/{material}/eval/reference/vasp/displacements.json",
    params:
        phonons=config["phonons"],  # only these: another seed or budget must not redo the reference
    log:
        "results/logs/label_reference/{material}_displacements.log",
    conda:
        "../envs/phonons.yaml"
    script:
        "../scripts/label_reference_displacements.py"


rule label_reference_vasp:
    input:
        disp="results/{material}/eval/reference/vasp/phonopy_disp.yaml",
    output:
        "results/{material}/eval/reference/vasp/{index}/labelled.extxyz",
    wildcard_constraints:
        index=r"\d+",
    params:
        command=VASP.get("command", ""),
        settings=vasp_settings(),
        gamma_only=VASP.get("phonon_gamma_only", True),
    threads: VASP_RESOURCES.get("threads", 1)
    resources:
        mem_mb=VASP_RESOURCES.get("mem_mb", 4000),
        runtime=VASP_RESOURCES.get("runtime", 120),
        tasks=VASP_RESOURCES.get("tasks", 1),
        cpus_per_task=VASP_RESOURCES.get("cpus_per_task", 1),
    log:
        "results/logs/label_reference/{material}/{index}.log",
    benchmark:
        "results/benchmarks/label_reference/{material}/{index}.tsv"
    conda:
        "../envs/phonons.yaml"
    script:
        "../scripts/label_reference_vasp.py"
