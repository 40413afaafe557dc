# Figures of the study, drawn by phononft.figures from results files only (never recomputing physics).
# One rule per figure of phononft.figures.registry.FIGURES, named as the figure: rule fig04_band_section runs
# scripts/fig04_band_section.py (phononft.figures.bands.fig04_band_section), writes
# results/figures/fig04_band_section.{png,pdf} and results/logs/figures/fig04_band_section.log, and its report
# caption is report/fig04_band_section.rst.  Its inputs (what the figure reads: the tidy table, the structure
# summaries, the rule graph, the bands / surfaces of the figure material) and params (exactly the options the
# figure takes) come from the registry (rules/common.smk: figure_inputs, figure_params, figure_outputs).
# Which material / budget / seed a figure shows: config key `figures` (config/schema.yaml); unset keys
# fall back to the first material, the largest budget and the first seed (phononft.config.figure_choice).
import glob


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
        layout.figure("rulegraph", "dot"),
    log:
        layout.log("figures", "rulegraph"),
    run:
        from phononft.figures.rulegraph import write_rulegraph

        write_rulegraph(workflow.main_snakefile, config, output[0], log=log[0])


rule fig01_overview:
    input:
        **figure_inputs("fig01_overview"),
    output:
        **figure_outputs("fig01_overview"),
    params:
        **figure_params("fig01_overview"),
    log:
        layout.log("figures", "fig01_overview"),
    conda:
        "../envs/plots.yaml"
    script:
        "../scripts/fig01_overview.py"


rule fig02_dataset:
    input:
        **figure_inputs("fig02_dataset"),
    output:
        **figure_outputs("fig02_dataset"),
    params:
        **figure_params("fig02_dataset"),
    log:
        layout.log("figures", "fig02_dataset"),
    conda:
        "../envs/plots.yaml"
    script:
        "../scripts/fig02_dataset.py"


rule fig03_property_deviation:
    input:
        **figure_inputs("fig03_property_deviation"),
    output:
        **figure_outputs("fig03_property_deviation"),
    params:
        **figure_params("fig03_property_deviation"),
    log:
        layout.log("figures", "fig03_property_deviation"),
    conda:
        "../envs/plots.yaml"
    script:
        "../scripts/fig03_property_deviation.py"


rule fig04_band_section:
    input:
        **figure_inputs("fig04_band_section"),
    output:
        **figure_outputs("fig04_band_section"),
    params:
        **figure_params("fig04_band_section"),
    log:
        layout.log("figures", "fig04_band_section"),
    conda:
        "../envs/plots.yaml"
    script:
        "../scripts/fig04_band_section.py"


rule fig05_imaginary_modes:
    input:
        **figure_inputs("fig05_imaginary_modes"),
    output:
        **figure_outputs("fig05_imaginary_modes"),
    params:
        **figure_params("fig05_imaginary_modes"),
    log:
        layout.log("figures", "fig05_imaginary_modes"),
    conda:
        "../envs/plots.yaml"
    script:
        "../scripts/fig05_imaginary_modes.py"


rule fig06_cost:
    input:
        **figure_inputs("fig06_cost"),
    output:
        **figure_outputs("fig06_cost"),
    params:
        **figure_params("fig06_cost"),
    log:
        layout.log("figures", "fig06_cost"),
    conda:
        "../envs/plots.yaml"
    script:
        "../scripts/fig06_cost.py"


rule fig07_element_heatmap:
    input:
        **figure_inputs("fig07_element_heatmap"),
    output:
        **figure_outputs("fig07_element_heatmap"),
    params:
        **figure_params("fig07_element_heatmap"),
    log:
        layout.log("figures", "fig07_element_heatmap"),
    conda:
        "../envs/plots.yaml"
    script:
        "../scripts/fig07_element_heatmap.py"


rule fig08_validation_errors:
    input:
        **figure_inputs("fig08_validation_errors"),
    output:
        **figure_outputs("fig08_validation_errors"),
    params:
        **figure_params("fig08_validation_errors"),
    log:
        layout.log("figures", "fig08_validation_errors"),
    conda:
        "../envs/plots.yaml"
    script:
        "../scripts/fig08_validation_errors.py"


rule fig09_thermal_deviation:
    input:
        **figure_inputs("fig09_thermal_deviation"),
    output:
        **figure_outputs("fig09_thermal_deviation"),
    params:
        **figure_params("fig09_thermal_deviation"),
    log:
        layout.log("figures", "fig09_thermal_deviation"),
    conda:
        "../envs/plots.yaml"
    script:
        "../scripts/fig09_thermal_deviation.py"


rule fig10_band_grid:
    input:
        **figure_inputs("fig10_band_grid"),
    output:
        **figure_outputs("fig10_band_grid"),
    params:
        **figure_params("fig10_band_grid"),
    log:
        layout.log("figures", "fig10_band_grid"),
    conda:
        "../envs/plots.yaml"
    script:
        "../scripts/fig10_band_grid.py"


rule fig11_validation_per_material:
    input:
        **figure_inputs("fig11_validation_per_material"),
    output:
        **figure_outputs("fig11_validation_per_material"),
    params:
        **figure_params("fig11_validation_per_material"),
    log:
        layout.log("figures", "fig11_validation_per_material"),
    conda:
        "../envs/plots.yaml"
    script:
        "../scripts/fig11_validation_per_material.py"


rule fig12_selection:
    input:
        **figure_inputs("fig12_selection"),
    output:
        **figure_outputs("fig12_selection"),
    params:
        **figure_params("fig12_selection"),
    log:
        layout.log("figures", "fig12_selection"),
    conda:
        "../envs/plots.yaml"
    script:
        "../scripts/fig12_selection.py"


rule fig13_budget_curves:
    input:
        **figure_inputs("fig13_budget_curves"),
    output:
        **figure_outputs("fig13_budget_curves"),
    params:
        **figure_params("fig13_budget_curves"),
    log:
        layout.log("figures", "fig13_budget_curves"),
    conda:
        "../envs/plots.yaml"
    script:
        "../scripts/fig13_budget_curves.py"


# Every figure: `snakemake figures` (then `snakemake --report results/report.html`).
rule figures:
    input:
        figure_targets(),

