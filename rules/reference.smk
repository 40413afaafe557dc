# Reference: the reference's properties through the same property code as every model (phononft.properties):
# relaxation, phonons + EOS + elastic tensor, imaginary modes (energy surface, relaxations along them).
# mock labeller: computed in the job.  vasp: every calculation is a VASP job (reference_vasp, grouped by
# labeller.vasp.structures_per_job, each structure in its own directory): the computation is replayed step by
# step -- step 0 relaxes (twice, as the benchmark did), checkpoint reference_tasks plans steps 1 and 2 from the
# answers before them -- and rule reference finishes it.  A precomputed reference (reference_phonopy) keeps its
# cell and phonons; every other property is computed with the labeller.
rule reference:
    input:
        unpack(reference_inputs),
    output:
        metrics=layout.reference("{material}", "metrics.json"),
        phonopy=layout.reference("{material}", "phonopy.yaml"),
        bands=layout.reference("{material}", "bands.json"),
        thermal=layout.reference("{material}", "thermal.json"),
        surface=layout.reference("{material}", "surface.json"),
        modes=layout.reference("{material}", "modes.json"),
    params:
        settings=REFERENCE_SETTINGS,
    resources:
        runtime=runtime(config["evaluate"]["runtime"]),
    log:
        layout.log("reference", "{material}"),
    benchmark:
        layout.benchmark("reference", "{material}")
    conda:
        "../envs/phonons.yaml"
    script:
        "../scripts/reference.py"


# The reference's relaxed unit cell: rattled structures and every model start from it.
rule reference_relax:
    input:
        unpack(reference_relax_inputs),
    output:
        layout.reference("{material}", "relaxed.extxyz"),
    params:
        settings=RELAX_SETTINGS,
    log:
        layout.log("reference", "{material}_relax"),
    conda:
        "../envs/phonons.yaml"
    script:
        "../scripts/reference_relax.py"


# The tasks of step {step} of the reference's computation, planned from the answers of the steps before it;
# their number (and so the VASP jobs that answer them) is known only then: a checkpoint.
checkpoint reference_tasks:
    input:
        unpack(reference_tasks_inputs),
    output:
        tasks=layout.reference("{material}", "vasp/step{step}/tasks.extxyz"),
        summary=layout.reference("{material}", "vasp/step{step}/tasks.json"),
    wildcard_constraints:
        step="[012]",
    params:
        # step 0 (the relaxation) depends on the relaxation's settings only, later steps on all of them
        settings=lambda w: RELAX_SETTINGS if w.step == "0" else REFERENCE_SETTINGS,
    log:
        layout.log("reference", "{material}_step{step}_tasks"),
    conda:
        "../envs/phonons.yaml"
    script:
        "../scripts/reference_tasks.py"


# VASP answers tasks [job * structures_per_job, ...) of a step, each in its own directory
# reference/vasp/step{step}/{index}/ (kept: a rerun reuses a finished calculation).
rule reference_vasp:
    input:
        tasks=layout.reference("{material}", "vasp/step{step}/tasks.extxyz"),
    output:
        layout.reference("{material}", "vasp/step{step}/job{job}.extxyz"),
    wildcard_constraints:
        step="[012]",
        job=r"\d+",
    params:
        command=VASP.get("command"),  # required (and checked) for labeller type vasp only
        settings=VASP_SETTINGS,
        structures_per_job=STRUCTURES_PER_JOB,
        gamma_only=VASP["phonon_gamma_only"],
    threads: VASP_RESOURCES["threads"]
    resources:
        mem_mb=VASP_RESOURCES["mem_mb"],
        runtime=runtime(RUNTIMES["reference_vasp"]),
        tasks=VASP_RESOURCES["tasks"],
        cpus_per_task=VASP_RESOURCES["cpus_per_task"],
    log:
        layout.log("reference", "{material}/vasp_step{step}_{job}"),
    benchmark:
        layout.benchmark("reference", "{material}/vasp_step{step}_{job}")
    conda:
        "../envs/phonons.yaml"
    script:
        "../scripts/reference_vasp.py"
