# phononft: fine-tuning MACE foundation models for phonon and thermal properties.
# A thin entry point: configuration, validation, the rule files of each stage, and the final target.
import os

from snakemake.utils import min_version

min_version("9.0")


# The demo configuration, unless --configfile names another one (which then replaces it entirely:
# merging would mix the demo's materials into another matrix).
if not workflow.config_settings.configfiles:

    configfile: os.path.join(workflow.basedir, "config", "config.yaml")


include: "rules/common.smk"
include: "rules/structures.smk"
include: "rules/rattle.smk"
include: "rules/label.smk"
include: "rules/foundation.smk"
include: "rules/finetune.smk"
include: "rules/evaluate.smk"
include: "rules/aggregate.smk"
include: "rules/resources.smk"
include: "rules/figures.smk"


rule all:
    input:
        "results/summary/metrics.csv",
        figure_targets(),
    default_target: True


onerror:
    partial_summary_on_error()
