# Reference: the reference's phonons and properties, through the same property code as every model.
# precomputed (a material's reference_phonopy): read, not recomputed.  vasp labeller: phonopy's displaced
# supercells labelled as one VASP job each (checkpoint reference_displacements: their number depends on the
# structure's symmetry; rule reference_vasp), gathered by rule reference.  mock labeller: computed in the job.
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
    log:
        layout.log("reference", "{material}"),
    benchmark:
        layout.benchmark("reference", "{material}")
    conda:
        "../envs/phonons.yaml"
    script:
        "../scripts/reference.py"


# The VASP reference: phonopy's displaced supercells (index 1..n) and the undisplaced one (index 0, whose
# residual forces are subtracted), one VASP job each.
checkpoint reference_displacements:
    input:
        structure=layout.structure("{material}"),
    output:
        disp=layout.reference("{material}", "vasp/phonopy_disp.yaml"),
        summary=layout.reference("{material}", "vasp/displacements.json"),
    params:
        phonons=config["phonons"],
    log:
        layout.log("reference", "{material}_displacements"),
    conda:
        "../envs/phonons.yaml"
    script:
        "../scripts/reference_displacements.py"


rule reference_vasp:
    input:
        disp=layout.reference("{material}", "vasp/phonopy_disp.yaml"),
    output:
        layout.reference("{material}", "vasp/{index}/labelled.extxyz"),
    wildcard_constraints:
        index=r"\d+",
    params:
        command=VASP.get("command"),  # required (and checked) for labeller type vasp only
        settings=VASP_SETTINGS,
        gamma_only=VASP["phonon_gamma_only"],
    threads: VASP_RESOURCES["threads"]
    resources:
        mem_mb=VASP_RESOURCES["mem_mb"],
        runtime=VASP_RESOURCES["runtime"],
        tasks=VASP_RESOURCES["tasks"],
        cpus_per_task=VASP_RESOURCES["cpus_per_task"],
    log:
        layout.log("reference", "{material}/vasp_{index}"),
    benchmark:
        layout.benchmark("reference", "{material}/vasp_{index}")
    conda:
        "../envs/phonons.yaml"
    script:
        "../scripts/reference_vasp.py"
