# Shared set-up: make the package importable, validate the config, constrain wildcards, list targets.
import os
import sys

sys.path.insert(0, os.path.join(workflow.basedir, "src"))

from phononft.config import ConfigError, figure_choice, model_runs, strategy_params, validate_config

from phononft.locks import clear_stale_locks

# a run killed with SIGKILL leaves Snakemake's lock behind: resume with the same command
if workflow.is_main_process and clear_stale_locks("."):
    print("phononft: removed a stale lock left by a killed run (no Snakemake process works here)", file=sys.stderr)

try:
    validate_config(config)
except ConfigError as exc:
    raise WorkflowError(str(exc)) from None

MATERIALS = list(config["materials"])
SPLITS = ["train", "valid", "test"]
SEEDS = config["seeds"]
# One finetune (evaluate_model) job covers every budget and seed of a material x strategy, and its output is
# that folder (a directory output): the paper matrix (8772 models, ~60,000 files) stays a DAG of ~2,500 jobs
# and ~5,000 files that Snakemake builds in seconds, still hundreds of jobs wide (more than the GPUs of any
# cluster share), and a job's start-up (imports, foundation, CUDA) serves many models.  The zero-shot "pretrained" models (budget 0) get rules of their own (zero_shot, evaluate_zero_shot).
TRAINED_STRATEGIES = [s for s in config["strategies"] if s != "pretrained"]
TRAINED_RUNS = [(b, s) for b in config["budgets"] for s in SEEDS]  # (budget, seed) of one job's models
ZERO_SHOT_RUNS = [(0, s) for s in SEEDS]


wildcard_constraints:
    material="|".join(map(re.escape, MATERIALS)) if MATERIALS else "[A-Za-z0-9_.-]+",
    strategy="|".join(config["strategies"]),
    budget=r"\d+",
    seed=r"\d+",
    split="train|valid|test",


def job_dir(stage, material, strategy):
    """Folder of one finetune/evaluate job (a Snakemake directory output): results/{material}/<stage>/<strategy>,
    holding n<budget>/s<seed>/ of every model of the job."""
    return f"results/{material}/{stage}/{strategy}"


def model_dir(material, strategy, budget, seed):
    return f"results/{material}/models/{strategy}/n{budget}/s{seed}"


def eval_dir(material, strategy, budget, seed):
    return f"results/{material}/eval/{strategy}/n{budget}/s{seed}"


def all_model_metrics():
    return [f"{eval_dir(*run)}/metrics.json" for run in model_runs(config)]


def all_eval_jobs():
    return [job_dir("eval", m, s) for m in MATERIALS for s in config["strategies"]]


def reference_metrics():
    return [f"results/{m}/eval/reference/metrics.json" for m in MATERIALS]


def foundation_replay():
    """Replay data of multihead fine-tuning: the configured file or the demo's own pretraining set."""
    if config["foundation"].get("model"):
        return config["foundation"].get("replay") or []
    return "results/foundation/pretrain_train.extxyz"


def eval_jobs(material):
    """The evaluation folders (one job each) of a figure's models (rules/figures.smk)."""
    return [job_dir("eval", material, s) for s in config["strategies"]]


def figure_model_files(material, name):
    """``name`` (bands.json, surface.json) of each figure model: every strategy at the figure budget and seed."""
    # FIGURE_CHOICE, FIGURE_SEED: rules/figures.smk
    return [f"{eval_dir(material, s, b, FIGURE_SEED)}/{name}" for s, b in FIGURE_CHOICE["models"]]


def figure_targets():
    """Every figure of the study (rules/figures.smk), PNG and PDF."""
    names = [
        "fig01_overview",
        "fig02_dataset",
        "fig03_property_deviation",
        "fig04_band_section",
        "fig05_imaginary_modes",
        "fig06_cost",
        "fig07_element_heatmap",
        "fig08_validation_errors",
        "fig09_thermal_deviation",
        "fig10_band_grid",
        "fig11_validation_per_material",
        "budget_curves",
    ]
    return expand("results/figures/{name}.{ext}", name=names, ext=["png", "pdf"])


def partial_summary_on_error():
    """Called by onerror: a tidy table and figure of what finished, failed models marked missing."""
    from phononft.aggregate import write_partial_summary

    try:
        out = write_partial_summary(model_runs(config))
    except Exception as exc:  # never mask the original failure
        print(f"phononft: no partial summary ({exc})", file=sys.stderr)
        return
    if out is not None:
        print(f"phononft: some jobs failed; what finished is in {out} (failed entries marked 'missing') "
              "and results/figures/partial/", file=sys.stderr)
