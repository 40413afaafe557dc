# Figures of the study, drawn by phononft.figures from results files only (never recomputing physics):
# the tidy table results/summary/metrics.csv, results/{material}/structure.json and the per-model
# results/{material}/eval/{reference | strategy/n{budget}/s{seed}}/bands.json | surface.json.
# Which material / budget / seed a figure shows: config key `figures` (config/schema.yaml); unset keys
# fall back to the first material, the largest budget and the first seed.  A figure's input is the
# evaluation job (folder results/{material}/eval/{strategy}) of each model it draws; the file it reads
# there is a param.
import glob

from phononft.config import figure_choice

FIGURE_OPTIONS = config["figures"]
try:
    FIGURE_CHOICE = figure_choice(config)  # the models of the band / surface figures: phononft.config
except ConfigError as exc:
    raise WorkflowError(str(exc)) from None
FIGURE_BUDGET, FIGURE_SEED = FIGURE_CHOICE["budget"], FIGURE_CHOICE["seed"]
FIGURE_BAND_MATERIAL = FIGURE_CHOICE["band_material"]
FIGURE_IMAGINARY_MATERIAL = FIGURE_CHOICE["imaginary_material"]
FIGURE_TABLE = layout.summary()


# the HTML report: snakemake --report results/report.html
report: "../report/workflow.rst"


localrules:
    rulegraph,


# The workflow's own rule graph (fig01): `snakemake --rulegraph` on this Snakefile with the run's
# resolved configuration, in a child process with --nolock (the running parent holds the lock of the
# same working directory); a local job, so that the child is the Snakemake interpreter itself.
rule rulegraph:
    input:
        workflow.main_snakefile,
        sorted(glob.glob(os.path.join(workflow.basedir, "rules", "*.smk"))),
    output:
        "results/figures/rulegraph.dot",
    log:
        "results/logs/figures/rulegraph.log",
    run:
        from phononft.figures import write_rulegraph

        write_rulegraph(workflow.main_snakefile, config, output[0], log=log[0])


rule fig01_overview:
    input:
        "results/figures/rulegraph.dot",
    output:
        png=report("results/figures/fig01_overview.png", caption="../report/fig01.rst", category="Figures"),
        pdf="results/figures/fig01_overview.pdf",
    params:
        strategies=config["strategies"],
    log:
        "results/logs/figures/fig01_overview.log",
    conda:
        "../envs/plots.yaml"
    script:
        "../scripts/figure_01_overview.py"


rule fig02_dataset:
    input:
        [layout.structure(m, "json") for m in MATERIALS],
    output:
        png=report("results/figures/fig02_dataset.png", caption="../report/fig02.rst", category="Figures"),
        pdf="results/figures/fig02_dataset.pdf",
    log:
        "results/logs/figures/fig02_dataset.log",
    conda:
        "../envs/plots.yaml"
    script:
        "../scripts/figure_02_dataset.py"


rule fig03_property_deviation:
    input:
        FIGURE_TABLE,
    output:
        png=report(
            "results/figures/fig03_property_deviation.png",
            caption="../report/fig03.rst",
            category="Figures",
        ),
        pdf="results/figures/fig03_property_deviation.pdf",
    params:
        budget=FIGURE_BUDGET,
    log:
        "results/logs/figures/fig03_property_deviation.log",
    conda:
        "../envs/plots.yaml"
    script:
        "../scripts/figure_03_property_deviation.py"


rule fig04_band_section:
    input:
        reference=layout.reference(FIGURE_BAND_MATERIAL, "bands.json"),
        models=eval_jobs(FIGURE_BAND_MATERIAL),
    output:
        png=report("results/figures/fig04_band_section.png", caption="../report/fig04.rst", category="Figures"),
        pdf="results/figures/fig04_band_section.pdf",
    params:
        material=FIGURE_BAND_MATERIAL,
        model_bands=figure_model_files(FIGURE_BAND_MATERIAL, "bands.json"),
        strategies=config["strategies"],
        budget=FIGURE_BUDGET,
        seed=FIGURE_SEED,
        segments=FIGURE_OPTIONS["band_segments"],
    log:
        "results/logs/figures/fig04_band_section.log",
    conda:
        "../envs/plots.yaml"
    script:
        "../scripts/figure_04_band_section.py"


rule fig05_imaginary_modes:
    input:
        reference_bands=layout.reference(FIGURE_IMAGINARY_MATERIAL, "bands.json"),
        reference_surface=layout.reference(FIGURE_IMAGINARY_MATERIAL, "surface.json"),
        models=eval_jobs(FIGURE_IMAGINARY_MATERIAL),
    output:
        png=report(
            "results/figures/fig05_imaginary_modes.png", caption="../report/fig05.rst", category="Figures"
        ),
        pdf="results/figures/fig05_imaginary_modes.pdf",
    params:
        material=FIGURE_IMAGINARY_MATERIAL,
        model_bands=figure_model_files(FIGURE_IMAGINARY_MATERIAL, "bands.json"),
        model_surfaces=figure_model_files(FIGURE_IMAGINARY_MATERIAL, "surface.json"),
        strategies=config["strategies"],
        budget=FIGURE_BUDGET,
        seed=FIGURE_SEED,
    log:
        "results/logs/figures/fig05_imaginary_modes.log",
    conda:
        "../envs/plots.yaml"
    script:
        "../scripts/figure_05_imaginary_modes.py"


rule fig06_cost:
    input:
        FIGURE_TABLE,
    output:
        png=report("results/figures/fig06_cost.png", caption="../report/fig06.rst", category="Figures"),
        pdf="results/figures/fig06_cost.pdf",
    params:
        metric=FIGURE_OPTIONS["cost_metric"],
        target=FIGURE_OPTIONS["cost_target"],
    log:
        "results/logs/figures/fig06_cost.log",
    conda:
        "../envs/plots.yaml"
    script:
        "../scripts/figure_06_cost.py"


rule fig07_element_heatmap:
    input:
        [layout.structure(m, "json") for m in MATERIALS],
    output:
        png=report(
            "results/figures/fig07_element_heatmap.png", caption="../report/fig07.rst", category="Figures"
        ),
        pdf="results/figures/fig07_element_heatmap.pdf",
    log:
        "results/logs/figures/fig07_element_heatmap.log",
    conda:
        "../envs/plots.yaml"
    script:
        "../scripts/figure_07_element_heatmap.py"


rule fig08_validation_errors:
    input:
        FIGURE_TABLE,
    output:
        png=report(
            "results/figures/fig08_validation_errors.png", caption="../report/fig08.rst", category="Figures"
        ),
        pdf="results/figures/fig08_validation_errors.pdf",
    log:
        "results/logs/figures/fig08_validation_errors.log",
    conda:
        "../envs/plots.yaml"
    script:
        "../scripts/figure_08_validation_errors.py"


rule fig09_thermal_deviation:
    input:
        FIGURE_TABLE,
    output:
        png=report(
            "results/figures/fig09_thermal_deviation.png", caption="../report/fig09.rst", category="Figures"
        ),
        pdf="results/figures/fig09_thermal_deviation.pdf",
    log:
        "results/logs/figures/fig09_thermal_deviation.log",
    conda:
        "../envs/plots.yaml"
    script:
        "../scripts/figure_09_thermal_deviation.py"


rule fig10_band_grid:
    input:
        table=FIGURE_TABLE,
        reference=layout.reference(FIGURE_BAND_MATERIAL, "bands.json"),
        models=eval_jobs(FIGURE_BAND_MATERIAL),
    output:
        png=report("results/figures/fig10_band_grid.png", caption="../report/fig10.rst", category="Figures"),
        pdf="results/figures/fig10_band_grid.pdf",
    params:
        material=FIGURE_BAND_MATERIAL,
        model_bands=figure_model_files(FIGURE_BAND_MATERIAL, "bands.json"),
        strategies=config["strategies"],
        budget=FIGURE_BUDGET,
        seed=FIGURE_SEED,
    log:
        "results/logs/figures/fig10_band_grid.log",
    conda:
        "../envs/plots.yaml"
    script:
        "../scripts/figure_10_band_grid.py"


rule fig11_validation_per_material:
    input:
        FIGURE_TABLE,
    output:
        png=report(
            "results/figures/fig11_validation_per_material.png",
            caption="../report/fig11.rst",
            category="Figures",
        ),
        pdf="results/figures/fig11_validation_per_material.pdf",
    params:
        budget=FIGURE_BUDGET,
    log:
        "results/logs/figures/fig11_validation_per_material.log",
    conda:
        "../envs/plots.yaml"
    script:
        "../scripts/figure_11_validation_per_material.py"


rule figure_budget_curves:
    input:
        FIGURE_TABLE,
    output:
        png=report("results/figures/budget_curves.png", caption="../report/budget_curves.rst", category="Figures"),
        pdf="results/figures/budget_curves.pdf",
    log:
        "results/logs/figures/budget_curves.log",
    conda:
        "../envs/plots.yaml"
    script:
        "../scripts/figure_budget_curves.py"


# Every figure: `snakemake figures` (then `snakemake --report results/report.html`).
rule figures:
    input:
        figure_targets(),
