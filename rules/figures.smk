# Figures of the study, drawn by phononft.figures from results files only (never recomputing physics).
# Every figure is one entry of phononft.figures.registry.FIGURES, which says what it reads (the tidy table,
# the structure summaries, the rule graph, the bands / surfaces of the figure material) and which config
# options it takes; one rule per entry below, named as the figure: rule fig04_band_section runs
# scripts/fig04_band_section.py (phononft.figures.bands.fig04_band_section) and writes
# results/figures/fig04_band_section.{png,pdf}, its log results/logs/figures/fig04_band_section.log and its
# caption report/fig04_band_section.rst.  A rule's params are exactly the options its figure depends on.
# Which material / budget / seed a figure shows: config key `figures` (config/schema.yaml); unset keys
# fall back to the first material, the largest budget and the first seed (phononft.config.figure_choice).
import glob

from phononft.figures.registry import FIGURES, option_values, rule_inputs, rule_params

try:
    FIGURE_OPTIONS = option_values(config)  # {config key: value} of every option a figure takes
except ConfigError as exc:
    raise WorkflowError(str(exc)) from None


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


for _figure in FIGURES.values():

    rule:
        name:
            f"{_figure.name}"
        input:
            **rule_inputs(_figure, FIGURE_OPTIONS, MATERIALS),
        output:
            png=report(layout.figure(_figure.name, "png"), caption=f"../{_figure.caption}", category="Figures"),
            pdf=layout.figure(_figure.name, "pdf"),
        params:
            **rule_params(_figure, FIGURE_OPTIONS),
        log:
            layout.log("figures", _figure.name),
        conda:
            "../envs/plots.yaml"
        script:
            f"../{_figure.script}"


# Every figure: `snakemake figures` (then `snakemake --report results/report.html`).
rule figures:
    input:
        figure_targets(),
