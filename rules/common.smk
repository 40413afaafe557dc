# Shared set-up: make the package importable, validate the config (defaults filled in from the schema, the
# only place that holds them), check what can be checked before any job, constrain wildcards.
import json
import os
import sys

sys.path.insert(0, os.path.join(workflow.basedir, "src"))

from phononft import layout
from phononft.checks import check_inputs, force_sets_beside
from phononft.config import ConfigError, model_runs, resolve_material_paths, strategy_params, validate_config
from phononft.locks import clear_stale_locks

# a run killed with SIGKILL leaves Snakemake's lock behind: resume with the same command
if workflow.is_main_process and clear_stale_locks("."):
    print("phononft: removed a stale lock left by a killed run (no Snakemake process works here)", file=sys.stderr)

try:
    validate_config(config)
    # relative file / reference_phonopy paths: the working directory's, else the repository root's
    resolve_material_paths(config["materials"], workflow.basedir)
    if workflow.is_main_process:  # structure files, precomputed references, elements of the foundation file
        check_inputs(config)
except ConfigError as exc:
    raise WorkflowError(str(exc)) from None

MATERIALS = list(config["materials"])
SEEDS = config["seeds"]
# One finetune (evaluate) job covers every budget and seed of a material x strategy, and its output is that
# folder (a directory output): the paper matrix (8772 models, ~60,000 files) stays a DAG of ~2,500 jobs and
# ~5,000 files that Snakemake builds in seconds, still hundreds of jobs wide, and a job's start-up (imports,
# foundation, CUDA) serves many models.  The zero-shot "pretrained" models (budget 0) get rules of their own
# (zero_shot, evaluate_zero_shot).
TRAINED_STRATEGIES = [s for s in config["strategies"] if s != "pretrained"]
TRAINED_RUNS = [(b, s) for b in config["budgets"] for s in SEEDS]  # (budget, seed) of one job's models
ZERO_SHOT_RUNS = [(0, s) for s in SEEDS]
# structures per split: the training series is as long as the largest budget (budgets are its prefixes)
N_STRUCTURES = {"train": max(config["budgets"]), "valid": config["rattle"]["n_valid"],
                "test": config["rattle"]["n_test"]}


wildcard_constraints:
    material="|".join(map(re.escape, MATERIALS)) if MATERIALS else "[A-Za-z0-9_.-]+",
    strategy="|".join(config["strategies"]),
    budget=r"\d+",
    seed=r"\d+",
    split="train|valid|test",


def material_spec(wildcards):
    """What a material's structure depends on: its own entry of `materials` (never the whole config)."""
    return config["materials"][wildcards.material]


def all_evaluation_jobs():
    return [layout.job("evaluate", m, s) for m in MATERIALS for s in config["strategies"]]


def all_model_metrics():
    return [layout.evaluation(*run, "metrics.json") for run in model_runs(config)]


def reference_metrics():
    return [layout.reference(m, "metrics.json") for m in MATERIALS]


def partial_summary_on_error():
    """Called by onerror: a tidy table and figures of what finished, failed models marked missing."""
    from phononft.figures.registry import draw_partial_figures
    from phononft.summary import write_partial_table

    try:
        table = write_partial_table(model_runs(config))
        if table is not None:
            draw_partial_figures(table, config)
    except Exception as exc:  # never mask the original failure
        print(f"phononft: no partial summary ({exc})", file=sys.stderr)
        return
    if table is not None:
        print(f"phononft: some jobs failed; what finished is in {table} (failed entries marked 'missing') "
              f"and {os.path.dirname(layout.figure('x', partial=True))}/", file=sys.stderr)


# ---- label ---------------------------------------------------------------------------------------------
LABELLER = config["labeller"]["type"]
VASP = config["labeller"]["vasp"]
VASP_RESOURCES = VASP["resources"]
# what labels depend on (never the resources of the jobs): the calculator, or VASP's input settings
LABEL_SETTINGS = (
    {"type": "vasp"} if LABELLER == "vasp" else {"type": LABELLER, "mock": config["labeller"]["mock"]}
)
VASP_SETTINGS = {k: VASP[k] for k in ("incar", "kpoint_density", "potcar", "retries", "timeout")}
# VASP: the structures of a split go to jobs of `structures_per_job` (default 1; the paper matrix uses more,
# so that it stays a DAG of a few thousand jobs); each structure keeps its own job directory
STRUCTURES_PER_JOB = VASP["structures_per_job"]
VASP_LABEL_JOBS = {split: range(-(-n // STRUCTURES_PER_JOB)) for split, n in N_STRUCTURES.items()}


def label_inputs(wildcards):
    rattled = layout.rattled(wildcards.material, wildcards.split)
    if LABELLER != "vasp":
        return {"rattled": rattled}
    jobs = VASP_LABEL_JOBS[wildcards.split]
    return {"rattled": rattled,
            "labelled": [layout.vasp_label_batch(wildcards.material, wildcards.split, k) for k in jobs]}


def label_benchmarks():
    """Per material, the benchmark files of the jobs that labelled its training series (VASP: the label_vasp
    jobs; mock: the label job)."""
    if LABELLER == "vasp":
        return {m: [layout.benchmark("label_vasp", f"{m}/train_{k}") for k in VASP_LABEL_JOBS["train"]]
                for m in MATERIALS}
    return {m: [layout.benchmark("label", f"{m}_train")] for m in MATERIALS}


# ---- reference -----------------------------------------------------------------------------------------
# what the reference depends on: the labeller's settings, the phonon and evaluation settings (never another
# seed, budget or strategy)
REFERENCE_SETTINGS = {
    "labeller": LABEL_SETTINGS,
    "phonons": config["phonons"],
    "evaluate": {k: v for k, v in config["evaluate"].items() if k not in ("device", "dtype")},  # models' only
}


def reference_inputs(wildcards):
    """The reference's inputs: a precomputed phonopy file, VASP-labelled displacements, or the structure."""
    spec = config["materials"][wildcards.material]
    if "reference_phonopy" in spec:
        force_sets = force_sets_beside(spec["reference_phonopy"])
        return {"precomputed": spec["reference_phonopy"], "force_sets": [str(force_sets)] if force_sets else []}
    if LABELLER == "vasp":
        disp = checkpoints.reference_displacements.get(material=wildcards.material).output
        with open(disp.summary) as fh:
            n = json.load(fh)["n_displacements"]
        labelled = [layout.reference(wildcards.material, f"vasp/{k}/labelled.extxyz") for k in range(1, n + 1)]
        perfect = layout.reference(wildcards.material, "vasp/0/labelled.extxyz")
        return {"displacements": disp.disp, "labelled": labelled,
                "perfect": [perfect] if VASP["subtract_residual_forces"] else []}
    return {"structure": layout.structure(wildcards.material)}


# ---- finetune ------------------------------------------------------------------------------------------
def replay_data(wildcards):
    """Replay data of multihead fine-tuning: the configured file or the demo foundation's own pretraining set."""
    if wildcards.strategy != "multihead":
        return []
    if config["foundation"]["model"]:
        return config["foundation"]["replay"] or []
    return layout.foundation("pretrain_train.extxyz")


# ---- figures -------------------------------------------------------------------------------------------
# Every figure is an entry of phononft.figures.registry.FIGURES: what it reads and which options it takes.
from phononft.figures.registry import FIGURES, figure_files, option_values, rule_inputs, rule_params

try:
    FIGURE_OPTIONS = option_values(config)  # {config key: value} of every option a figure takes
except ConfigError as exc:
    raise WorkflowError(str(exc)) from None


def figure_inputs(name):
    """A figure rule's named inputs: what the figure reads (the table, structure summaries, rule graph, bands)."""
    return rule_inputs(FIGURES[name], FIGURE_OPTIONS, MATERIALS)


def figure_params(name):
    """A figure rule's params: exactly the options its figure takes (a changed option reruns it, no other)."""
    return rule_params(FIGURES[name], FIGURE_OPTIONS)


def figure_outputs(name):
    """A figure rule's outputs: results/figures/<name>.png (in the report, caption report/<name>.rst) and .pdf."""
    png, pdf = FIGURES[name].outputs()
    return {"png": report(png, caption=f"../{FIGURES[name].caption}", category="Figures"), "pdf": pdf}


def figure_targets():
    """Every figure of the study, PNG and PDF."""
    return figure_files()
