"""The results layout: every path the workflow reads or writes, in one place.

Rules (``rules/*.smk``), scripts, the summary and the figures ask this module for paths; none spells a
folder itself.  Paths are relative to the working directory (Snakemake's ``--directory``) and are plain
strings, so that a rule can pass wildcards through them: ``layout.rattled("{material}", "{split}")`` is
the pattern ``results/{material}/rattle/{split}.extxyz``.

One stage, one name: each stage's results live in a folder named after it (``rules/<stage>.smk``,
``scripts/<stage>*.py``, ``phononft.<stage>``, ``results/<material>/<stage>/``, ``results/logs/<stage>/``,
``results/benchmarks/<stage>/``)::

    results/
      foundation/                       model.model, pretrain_{train,valid}.extxyz, train.json
      <material>/
        structures/                     structure.extxyz (the unit cell), structure.json (its summary)
        rattle/train_s<seed>.extxyz     the candidate pool of each seed; valid.extxyz, test.extxyz
        selection/<selection>_s<seed>.extxyz  the training series: pool structures in the selection's order
        label/train_<selection>_s<seed>.extxyz, valid.extxyz, test.extxyz  (labelled; + label/vasp/<split>/<i>/)
        replay/replay.extxyz            pretraining structures multihead fine-tuning replays
        reference/                      the reference's phonons and properties (+ reference/vasp/...)
        finetune/<strategy>/[<selection>/]n<N>/s<seed>/   model.model, train.json (selection random: no level)
        evaluate/<strategy>/[<selection>/]n<N>/s<seed>/   metrics.json, phonopy.yaml, bands.json, ...
        .finished/<stage>/<strategy>/n<N>/s<seed>/  kept copies of finished models (phononft.reuse)
      replay/general.extxyz             the general set (forgetting)
      summary/metrics.csv               the tidy table
      figures/<name>.{png,pdf}
      logs/<stage>/..., benchmarks/<stage>/...
"""

from __future__ import annotations

import re
from pathlib import Path

RESULTS = "results"
SPLITS = ("train", "valid", "test")
#: Files of one evaluated model (evaluate/<strategy>/n<N>/s<seed>/) and of the reference.
EVALUATION_FILES = ("metrics.json", "phonopy.yaml", "bands.json", "thermal.json", "surface.json")
MODEL_FILES = ("model.model", "train.json")


def material_dir(material: str) -> str:
    return f"{RESULTS}/{material}"


# ---- structures, rattle, label -------------------------------------------------------------------
def structure(material: str, ext: str = "extxyz") -> str:
    """The material's unit cell (``extxyz``) or its summary (``json``)."""
    return f"{RESULTS}/{material}/structures/structure.{ext}"


def pool_split(seed) -> str:
    """The rattle split of seed ``seed``'s candidate pool (every seed draws its own rattled series)."""
    return f"train_s{seed}"


def train_split(selection: str, seed) -> str:
    """The label split of a training series: the pool of ``seed`` in the order ``selection`` picks it."""
    return f"train_{selection}_s{seed}"


def split_kind(split: str) -> str:
    """``train`` for a training pool or series, else the split itself (``valid``, ``test``)."""
    return "train" if split.startswith("train") else split


def rattled(material: str, split: str) -> str:
    """A rattled split: ``pool_split(seed)`` (the candidate pool of a seed), ``valid`` or ``test``."""
    return f"{RESULTS}/{material}/rattle/{split}.extxyz"


def selected(material: str, selection: str, seed) -> str:
    """The training series of (selection, seed): pool structures in the order the selection picks them."""
    return f"{RESULTS}/{material}/selection/{selection}_s{seed}.extxyz"


def ranking(material: str, selection: str, seed) -> str:
    """The selection's record beside its series (:func:`selected`): the ranking of the pool (and, for
    uncertainty, the committee's disagreements per round)."""
    return f"{RESULTS}/{material}/selection/{selection}_s{seed}.json"


def material_of(path: str) -> str:
    """The material of a path under ``results/<material>/...``."""
    parts = Path(path).parts
    if RESULTS not in parts[:-1]:
        raise ValueError(f"not a path under {RESULTS}/<material>/: {path}")
    return parts[parts.index(RESULTS) + 1]


def labelled(material: str, split: str) -> str:
    """A labelled split: ``train_split(selection, seed)``, ``valid`` or ``test``."""
    return f"{RESULTS}/{material}/label/{split}.extxyz"


def vasp_label_batch(material: str, split: str, job) -> str:
    """Output of VASP labelling job ``job`` of a split; each structure has its own directory beside it."""
    return f"{RESULTS}/{material}/label/vasp/{split}/job{job}.extxyz"


# ---- foundation ----------------------------------------------------------------------------------
def foundation(name: str = "model.model") -> str:
    """``model.model``, ``pretrain_train.extxyz``, ``pretrain_valid.extxyz``, ``train.json``."""
    return f"{RESULTS}/foundation/{name}"


# ---- replay --------------------------------------------------------------------------------------------
def replay(material: str) -> str:
    """The pretraining structures multihead fine-tuning of ``material`` replays (selected once)."""
    return f"{RESULTS}/{material}/replay/replay.extxyz"


def general() -> str:
    """The general set on which every model's forgetting is measured."""
    return f"{RESULTS}/replay/general.extxyz"


# ---- reference -----------------------------------------------------------------------------------
def reference(material: str, name: str | None = None) -> str:
    """The reference's folder, or a file in it (``metrics.json``, ``phonopy.yaml``, ``bands.json``, ...)."""
    folder = f"{RESULTS}/{material}/reference"
    return folder if name is None else f"{folder}/{name}"


# ---- finetune and evaluate: one job per material x strategy ---------------------------------------
def job(stage: str, material: str, strategy: str) -> str:
    """Folder of one ``finetune`` or ``evaluate`` job (a directory output) holding every model of a
    material x strategy as ``n<budget>/s<seed>/``."""
    if stage not in ("finetune", "evaluate"):
        raise ValueError(f"stage must be finetune or evaluate, not {stage!r}")
    return f"{RESULTS}/{material}/{stage}/{strategy}"


def run_name(budget, seed, selection: str = "random") -> str:
    """``n<budget>/s<seed>``, under ``<selection>/`` for a selection other than random."""
    return f"n{budget}/s{seed}" if selection == "random" else f"{selection}/n{budget}/s{seed}"


def model(material: str, strategy: str, budget, seed, name: str | None = None, *, selection: str = "random") -> str:
    """A trained model's folder (or a file in it: ``model.model``, ``train.json``)."""
    folder = f"{job('finetune', material, strategy)}/{run_name(budget, seed, selection)}"
    return folder if name is None else f"{folder}/{name}"


def evaluation(material: str, strategy: str, budget, seed, name: str | None = None, *,
               selection: str = "random") -> str:
    """A model's evaluation folder (or a file in it: ``metrics.json``, ``bands.json``, ...)."""
    folder = f"{job('evaluate', material, strategy)}/{run_name(budget, seed, selection)}"
    return folder if name is None else f"{folder}/{name}"


def evaluation_of(run, name: str | None = None) -> str:
    """:func:`evaluation` of a :class:`phononft.config.Run` (material, strategy, budget, seed, selection)."""
    return evaluation(run.material, run.strategy, run.budget, run.seed, name, selection=run.selection)


def run_folders(job_dir: str | Path, budget, seed, selection: str = "random") -> tuple[Path, Path]:
    """One model of a finetune/evaluate job: its folder (:func:`run_name`) inside the job's folder
    ``results/<m>/<stage>/<strategy>``, and the folder where :func:`phononft.reuse.reuse_or_run` keeps it,
    ``results/<m>/.finished/<stage>/<strategy>/<run>`` (outside the job's directory output)."""
    job_dir = Path(job_dir)
    run = Path(run_name(budget, seed, selection))
    return job_dir / run, job_dir.parent.parent / ".finished" / job_dir.parent.name / job_dir.name / run


_EVALUATION = re.compile(rf"{RESULTS}/(?P<material>[^/]+)/evaluate/(?P<strategy>[^/]+)/"
                         r"(?:(?P<selection>[a-z]+)/)?n(?P<budget>\d+)/s(?P<seed>\d+)/metrics\.json$")
_REFERENCE = re.compile(rf"{RESULTS}/(?P<material>[^/]+)/reference/metrics\.json$")


def parse_evaluation(path: str | Path) -> dict | None:
    """``{"material", "strategy", "selection", "budget", "seed"}`` of a model's metrics.json path (``None``
    otherwise)."""
    m = _EVALUATION.search(Path(path).as_posix())
    if not m:
        return None
    return {"material": m["material"], "strategy": m["strategy"], "selection": m["selection"] or "random",
            "budget": int(m["budget"]), "seed": int(m["seed"])}


def parse_reference(path: str | Path) -> str | None:
    """The material of a reference's metrics.json path (``None`` otherwise)."""
    m = _REFERENCE.search(Path(path).as_posix())
    return m["material"] if m else None


# ---- summary, figures, logs, benchmarks ----------------------------------------------------------
def summary(name: str = "metrics.csv") -> str:
    return f"{RESULTS}/summary/{name}"


def figure(name: str, ext: str = "png", *, partial: bool = False) -> str:
    return f"{RESULTS}/figures/{'partial/' if partial else ''}{name}.{ext}"


def log(stage: str, name: str) -> str:
    """``results/logs/<stage>/<name>.log`` (``name`` may hold wildcards and sub-folders)."""
    return f"{RESULTS}/logs/{stage}/{name}.log"


def benchmark(stage: str, name: str) -> str:
    """``results/benchmarks/<stage>/<name>.tsv`` (Snakemake's ``benchmark:`` files)."""
    return f"{RESULTS}/benchmarks/{stage}/{name}.tsv"
