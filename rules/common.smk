# Shared set-up: make the package importable, validate the config (defaults filled in from the schema, the
# only place that holds them), check what can be checked before any job, constrain wildcards.
import json
import os
import sys

sys.path.insert(0, os.path.join(workflow.basedir, "src"))

from phononft import layout, strategies
from phononft.checks import check_inputs, force_sets_beside
from phononft.config import (
    ConfigError,
    evaluate_settings,
    finetune_settings,
    job_runtimes,
    labeller_settings,
    model_runs,
    reference_settings,
    relax_settings,
    resolve_material_paths,
    strategy_params,
    validate_config,
)
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
# (zero_shot, evaluate_zero_shot).  Which strategies train: the strategy registry (phononft.strategies).
TRAINED_STRATEGIES = [s for s in config["strategies"] if strategies.get(s).trained]
# (selection, budget, seed) of one job's models
TRAINED_RUNS = [(sel, b, s) for sel in config["selections"] for b in config["budgets"] for s in SEEDS]
ZERO_SHOT_RUNS = [("random", 0, s) for s in SEEDS]
# structures per split: each seed's candidate pool (pool_factor x the largest budget when a selection picks from
# it, else the largest budget), each training series (the largest budget: budgets are its prefixes), valid, test
SELECTIONS = config["selections"]
POOL_SIZE = max(config["budgets"]) * (config["selection"]["pool_factor"] if set(SELECTIONS) - {"random"} else 1)
N_STRUCTURES = {"train": max(config["budgets"]), "valid": config["rattle"]["n_valid"],
                "test": config["rattle"]["n_test"]}
TRAIN_SPLITS = {layout.train_split(sel, seed): (sel, seed) for sel in SELECTIONS for seed in SEEDS}
FIRST_TRAIN_SPLIT = next(iter(TRAIN_SPLITS))


def n_structures(split):
    """Structures of a rattle or label split: a pool (train_s<seed>), a training series, valid or test."""
    return POOL_SIZE if split.startswith("train_s") else N_STRUCTURES[layout.split_kind(split)]


wildcard_constraints:
    material="|".join(map(re.escape, MATERIALS)) if MATERIALS else "[A-Za-z0-9_.-]+",
    strategy="|".join(config["strategies"]),
    budget=r"\d+",
    seed=r"\d+",
    split=r"train_s\d+|train_[a-z]+_s\d+|valid|test",
    selection="|".join(SELECTIONS),


# ---- cluster resources: wall time from the work a job does, growing with the attempt, capped at the partition's
# limit (checked before any job: phononft.config.check_runtimes); GPUs only where training runs on one
MAX_RUNTIME = config["cluster"]["max_runtime"]
RUNTIMES = {rule: minutes for rule, (minutes, _) in job_runtimes(config).items()}
TRAINING_GPUS = config["finetune"]["gpus"] if config["finetune"]["device"] != "cpu" else 0


def runtime(minutes):
    """A `runtime` resource: ``minutes`` on the first attempt, that many times more on each retry, at most the
    partition's limit."""
    return lambda wildcards, attempt: min(minutes * attempt, MAX_RUNTIME)


def material_spec(wildcards):
    """What a material's structure depends on: its own entry of `materials` (never the whole config)."""
    return config["materials"][wildcards.material]


def all_evaluation_jobs():
    return [layout.job("evaluate", m, s) for m in MATERIALS for s in config["strategies"]]


def all_model_metrics():
    return [layout.evaluation_of(run, "metrics.json") for run in model_runs(config)]


def reference_metrics():
    return [layout.reference(m, "metrics.json") for m in MATERIALS]


def print_claims():
    """Called by onsuccess: the study's claims checked on this run (rule claims), the last lines of the console."""
    path = layout.summary("claims.csv")
    if os.path.isfile(path):
        import pandas as pd

        from phononft.claims import report

        for line in report(pd.read_csv(path)):
            print(f"phononft: {line}", file=sys.stderr)


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
from phononft.checks import CACHE_DIR
from phononft.dataset import DataError, material_plan, split_params

LABELLER = config["labeller"]["type"]
VASP = config["labeller"]["vasp"]
VASP_RESOURCES = VASP["resources"]
LABEL_SETTINGS = labeller_settings(config)  # what labels depend on (never the resources of the jobs)
VASP_SETTINGS = {k: v for k, v in LABEL_SETTINGS.items() if k != "type"}  # phononft.vasp.run_vasp keywords
# VASP: the structures of a split go to jobs of `structures_per_job` (default 1; the paper matrix uses more,
# so that it stays a DAG of a few thousand jobs); each structure keeps its own job directory
STRUCTURES_PER_JOB = VASP["structures_per_job"]
# Own data (materials.<m>.data, phononft.dataset): each such material's split, planned from the files' cached
# summaries (already checked by check_inputs): which of the user's structures each split holds, and how many
# rattled structures labelled by the labeller follow them (data.mix; data.valid_test: labeller)
DATA_PLANS = {}
for _material, _spec in config["materials"].items():
    if "data" in _spec:
        try:
            DATA_PLANS[_material] = material_plan(_spec["data"], n_train=N_STRUCTURES["train"],
                                                  rattle=config["rattle"], cache_dir=CACHE_DIR)
        except DataError as exc:
            raise WorkflowError(f"material {_material!r}: {exc}") from None


def rattled_needed(material, split):
    """Rattled structures of a split that the labeller labels: all of them without own data, else the plan's."""
    plan = DATA_PLANS.get(material)
    return n_structures(split) if plan is None else plan["splits"][layout.split_kind(split)]["rattled"]


def label_source(wildcards):
    """The unlabelled structures of a label split: a training series (the seed's pool itself for random
    selection, else the selection's series) or the valid / test split."""
    m, split = wildcards.material, wildcards.split
    if split not in TRAIN_SPLITS:
        return layout.rattled(m, split)
    selection, seed = TRAIN_SPLITS[split]
    return layout.rattled(m, layout.pool_split(seed)) if selection == "random" else layout.selected(m, selection, seed)


def vasp_label_jobs(material, split):
    """The label_vasp jobs covering the rattled structures a split needs (a job labels structures_per_job)."""
    return range(-(-rattled_needed(material, split) // STRUCTURES_PER_JOB))


def label_inputs(wildcards):
    """The user's data files (own data), the rattled split and its VASP results (when the split needs them)."""
    m, split = wildcards.material, wildcards.split
    inputs = {"data": [path for path, _ in DATA_PLANS[m]["files"]]} if m in DATA_PLANS else {}
    if rattled_needed(m, split):
        inputs["rattled"] = label_source(wildcards)
        if LABELLER == "vasp":
            inputs["labelled"] = [layout.vasp_label_batch(m, split, k) for k in vasp_label_jobs(m, split)]
    return inputs


def label_settings(wildcards):
    """The labeller's settings, when the split has rattled structures (None: not a parameter of the job)."""
    return LABEL_SETTINGS if rattled_needed(wildcards.material, wildcards.split) else None


def data_split(wildcards):
    """Own data: the files, reading settings and the split's indices (phononft.dataset.split_params); None
    without own data (then not a parameter of the job)."""
    plan = DATA_PLANS.get(wildcards.material)
    return None if plan is None else split_params(plan, layout.split_kind(wildcards.split))


def label_benchmarks():
    """Per training series ("<material>/<split>"), the benchmark files of the jobs that labelled it (VASP: the
    label_vasp jobs; mock: the label job).  Own data: their labelling cost is unknown and not counted; VASP:
    the jobs of the rattled structures that fill the series (data.mix), else the label job (reading files)."""
    out = {}
    for m in MATERIALS:
        for split in TRAIN_SPLITS:
            jobs = vasp_label_jobs(m, split) if LABELLER == "vasp" else []
            out[f"{m}/{split}"] = ([layout.benchmark("label", f"{m}/vasp_{split}_{k}") for k in jobs] if jobs
                                   else [layout.benchmark("label", f"{m}_{split}")])
    return out


# ---- selection -----------------------------------------------------------------------------------------
def selection_inputs(wildcards):
    """The seed's pool; the foundation (its descriptors, the committee's start); the valid split (uncertainty)."""
    inputs = {"pool": layout.rattled(wildcards.material, layout.pool_split(wildcards.seed)),
              "foundation": layout.foundation()}
    if wildcards.selection == "uncertainty":
        inputs["valid"] = layout.labelled(wildcards.material, "valid")
    return inputs


# ---- reference -----------------------------------------------------------------------------------------
REFERENCE_SETTINGS = reference_settings(config)  # labeller, phonon and evaluate settings only
RELAX_SETTINGS = relax_settings(config)  # the relaxed cell: labeller and relaxation settings only


def precomputed(wildcards):
    """A material's precomputed reference phonons (reference_phonopy, and a FORCE_SETS beside it), if any."""
    path = config["materials"][wildcards.material].get("reference_phonopy")  # optional key: no default
    if not path:
        return {}
    force_sets = force_sets_beside(path)
    return {"precomputed": path, "force_sets": [str(force_sets)] if force_sets else []}


def reference_answers(material, step):
    """The VASP job outputs answering step `step` of a material's reference computation (phononft.reference):
    step 0 (the relaxation) has one task, none for a precomputed reference; steps 1 (phonons, EOS, elastic)
    and 2 (imaginary modes) are planned by checkpoint reference_tasks, their number read from it."""
    if int(step) == 0:
        n = 0 if "reference_phonopy" in config["materials"][material] else 1
    else:
        out = checkpoints.reference_tasks.get(material=material, step=step).output
        with open(out.summary) as fh:
            n = json.load(fh)["n_tasks"]
    return [layout.reference(material, f"vasp/step{step}/job{j}.extxyz") for j in range(-(-n // STRUCTURES_PER_JOB))]


def reference_tasks_inputs(wildcards):
    """The structure and the answers of the steps before `step`."""
    steps = {f"step{k}": reference_answers(wildcards.material, k) for k in range(int(wildcards.step))}
    return {"structure": layout.structure(wildcards.material), **precomputed(wildcards), **steps}


def reference_relax_inputs(wildcards):
    """The structure (mock: relaxed in the job), or VASP's answer to the relaxation."""
    inputs = {"structure": layout.structure(wildcards.material), **precomputed(wildcards)}
    if LABELLER == "vasp":
        inputs["step0"] = reference_answers(wildcards.material, 0)
    return inputs


def reference_inputs(wildcards):
    """The structure and, with VASP, the answers of every step of the reference's computation."""
    inputs = {"structure": layout.structure(wildcards.material), **precomputed(wildcards)}
    if LABELLER == "vasp":
        inputs.update({f"step{k}": reference_answers(wildcards.material, k) for k in range(3)})
    return inputs


# ---- finetune ------------------------------------------------------------------------------------------
REPLAY_STRATEGIES = [s for s in config["strategies"] if strategies.get(s).needs_replay]


def training_inputs(wildcards):
    """The foundation, the valid split, every training series of the job's models (named by their split,
    train_<selection>_s<seed>) and, for a replaying strategy, the replay data."""
    strategy = getattr(wildcards, "strategy", "pretrained")  # rule zero_shot has no strategy wildcard
    series = TRAIN_SPLITS if strategies.get(strategy).trained else {FIRST_TRAIN_SPLIT: None}
    return {"foundation": layout.foundation(), "valid": layout.labelled(wildcards.material, "valid"),
            "replay": layout.replay(wildcards.material) if strategy in REPLAY_STRATEGIES else [],
            **{split: layout.labelled(wildcards.material, split) for split in series}}


def replay_data(wildcards):
    """Replay data of the strategies that replay pretraining data (multihead): the material's subset of the
    pretraining data (rules/replay.smk)."""
    return layout.replay(wildcards.material) if wildcards.strategy in REPLAY_STRATEGIES else []


# ---- replay --------------------------------------------------------------------------------------------
# size of the replay set: the largest num_samples_pt of the strategies that replay (multihead's option)
REPLAY_SAMPLES = max([strategy_params(config, s)["num_samples_pt"] for s in REPLAY_STRATEGIES] or [1])
# the general set of the forgetting errors: the demo foundation's validation split, or a sample of the given
# foundation's pretraining data; none when a foundation model file comes without its data
HAS_GENERAL_SET = not config["foundation"]["model"] or bool(config["foundation"]["replay"])


def general_file():
    return layout.general() if HAS_GENERAL_SET else []


def pretraining_data():
    """The foundation's pretraining data: the configured file, or the demo foundation's own training set."""
    if config["foundation"]["model"]:
        return config["foundation"]["replay"] or []
    return layout.foundation("pretrain_train.extxyz")


def general_inputs(wildcards):
    """The demo foundation's validation split, or the configured pretraining data to sample from."""
    if config["foundation"]["model"]:
        return {"pretraining": config["foundation"]["replay"]}
    return {"valid": layout.foundation("pretrain_valid.extxyz")}


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
