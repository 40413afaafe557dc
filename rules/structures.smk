# Structures: load and standardise each material's unit cell (a file, an ASE builder spec, explicit atoms,
# a Materials Project id or a precomputed reference's unit cell).
rule structures:
    output:
        structure=layout.structure("{material}"),
        summary=layout.structure("{material}", "json"),
    params:
        spec=material_spec,
        settings=config["structures"],
    log:
        layout.log("structures", "{material}"),
    conda:
        "../envs/phonons.yaml"
    script:
        "../scripts/structures.py"
