# phononft: fine-tuning MACE foundation models for phonon and thermal properties.
# A thin entry point: configuration, the rule files of each stage (one per stage, in the order of the data
# flow), and the final target.  Where each stage lives: CONTRIBUTING.md.
import os

from snakemake.utils import min_version

min_version("9.0")


# The demo configuration, unless --configfile names another one (which then replaces it entirely:
# merging would mix the demo's materials into another matrix).
if not workflow.config_settings.configfiles:

    configfile: os.path.join(workflow.basedir, "config", "config.yaml")


include: "rules/common.smk"
include: "rules/download.smk"
include: "rules/structures.smk"
include: "rules/rattle.smk"
include: "rules/selection.smk"
include: "rules/label.smk"
include: "rules/foundation.smk"
include: "rules/replay.smk"
include: "rules/finetune.smk"
include: "rules/reference.smk"
include: "rules/evaluate.smk"
include: "rules/summary.smk"
include: "rules/figures.smk"


rule all:
    input:
        layout.summary(),
        layout.summary("recommendation.csv"),
        layout.summary("claims.csv"),
        figure_targets(),
    default_target: True


onsuccess:
    print_claims()


onerror:
    partial_summary_on_error()
