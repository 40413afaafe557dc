"""Finetune stage: one model per material x strategy x budget x seed.

What each strategy trains, its options and how it trains are the strategy objects' (:mod:`phononft.strategies`);
this module runs one of them on one budget: the first N training structures, the recipe
(``finetune.recipe``: ``study``, each strategy through its own tool; ``matched``, all through the in-process
trainer of :mod:`phononft.torch_train`), and the learning rate: the strategy's ``lr``, or, with an lr grid
(``finetune.lr_grid``), the value of the grid whose model reaches the lowest validation loss (every value is
trained on the training structures and judged on the validation split, never on the test split; a value whose
training diverges counts as the worst).

Every output is a plain single-head MACE model that ``mace.calculators.MACECalculator`` loads, plus a JSON
training log (train.json): recipe, tool, learning rate (and the grid with each value's validation loss),
optimiser steps, epochs, losses, wall time, seconds per epoch, trainable and total parameters, device, peak
memory.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Callable, Sequence

from ase.data import chemical_symbols

from . import strategies
from .config import section_defaults
from .io import copy_atomic, read_extxyz, write_extxyz, write_json
from .logs import cpu_seconds
from .mace_train import resolve_device
from .strategies.base import Job
from .torch_runtime import NonFiniteLossError, load_model


def write_budget_subset(train_file: Path, budget: int, out_file: Path) -> int:
    """The first ``budget`` structures of the training series (nested budgets)."""
    images = read_extxyz(train_file)
    if budget > len(images):
        raise ValueError(f"budget {budget} exceeds the {len(images)} labelled training structures in {train_file}")
    write_extxyz(out_file, images[:budget])
    return budget


def check_foundation_elements(foundation: Path, train_file: Path) -> None:
    """Fail early, naming the elements, if the training structures hold elements the foundation lacks."""
    model = load_model(foundation)
    known = {int(z) for z in model.atomic_numbers}
    present = {int(z) for atoms in read_extxyz(train_file) for z in atoms.numbers}
    missing = sorted(present - known)
    if missing:
        raise ValueError(
            f"{train_file}: element(s) {', '.join(chemical_symbols[z] for z in missing)} unknown to the foundation "
            f"model {foundation} (it knows {', '.join(chemical_symbols[z] for z in sorted(known))})")


def default_recipe() -> str:
    """The schema's default of ``finetune.recipe`` (the one place it lives)."""
    return section_defaults("finetune")["recipe"]


def finetune(strategy: str, foundation: Path, train_file: Path, valid_file: Path, budget: int, seed: int,
             out_model: Path, out_log: Path, workdir: Path, options: dict, *, recipe: str | None = None,
             lr_grid: Sequence[float] = (), device: str = "auto", dtype: str = "float64",
             replay_file: Path | None = None, threads: int | None = None,
             log: Callable[[str], None] = print) -> dict:
    """Train one model; write ``out_model`` and ``out_log`` (JSON) atomically; return the log dict.

    ``options``: the strategy's options (:func:`phononft.config.strategy_params`; missing ones take the
    strategy's defaults, unknown ones are refused); ``recipe``: study or matched (None: the schema's default);
    ``lr_grid``: learning rates to choose from on the validation split (empty: the ``lr`` option).  A finetune
    rule's params (:func:`phononft.config.finetune_settings`) are these three keywords."""
    strat = strategies.get(strategy)
    opts = strat.resolve(options)
    recipe = recipe or default_recipe()
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    out_model, out_log = Path(out_model), Path(out_log)
    t0, c0 = time.perf_counter(), cpu_seconds()
    if strat.trained and strat.needs_foundation_elements:
        check_foundation_elements(Path(foundation), Path(train_file))
    record: dict = {"strategy": strategy, "budget": budget, "seed": seed, "dtype": dtype,
                    "device": resolve_device(device), "params": opts}
    job = Job(Path(foundation), Path(train_file), Path(valid_file), budget, seed, workdir, device, dtype,
              None if replay_file is None else Path(replay_file), threads, log)
    if not strat.trained:
        record.update(strat.make(job, out_model))
    else:
        job.train_file = workdir / f"train_n{budget}.extxyz"
        write_budget_subset(Path(train_file), budget, job.train_file)
        record.update(recipe=recipe, tool="in-process" if recipe == "matched" else strat.study_tool(opts))
        record.update(train_with_grid(strat.runner(job, opts, recipe), [float(x) for x in lr_grid] or [opts["lr"]],
                                      out_model, workdir, log))
        record["strategy"] = strategy
    record["total_wall_time_s"] = time.perf_counter() - t0
    record["total_cpu_seconds"] = cpu_seconds() - c0  # this process's threads + any training subprocess
    write_json(out_log, record)
    return record


def train_with_grid(runner, grid: list[float], out_model: Path, workdir: Path, log: Callable[[str], None]) -> dict:
    """``runner.fit`` with every learning rate of ``grid``; the model of the lowest validation loss becomes
    ``out_model``.  A single value trains straight into ``out_model``.  Returns that run's record, with
    ``lr_grid`` (each value's validation loss, epochs and steps) and ``lr_choice`` when there was a choice."""
    if len(grid) == 1:
        return runner.fit(grid[0], out_model)
    trials = []
    for i, lr in enumerate(grid):
        candidate = workdir / f"lr{i}" / out_model.name
        candidate.parent.mkdir(parents=True, exist_ok=True)
        try:
            rec = runner.fit(lr, candidate)
        except NonFiniteLossError as exc:  # a diverging learning rate is a grid result, not a failure
            log(f"lr {lr:g}: {exc}")
            trials.append({"lr": lr, "best_valid_loss": None, "diverged": True})
            continue
        trials.append({"lr": lr, "best_valid_loss": rec["best_valid_loss"], "epochs_run": rec["epochs_run"],
                       "optimizer_steps": rec["optimizer_steps"], "record": rec, "model": candidate})
        log(f"lr {lr:g}: best validation loss {rec['best_valid_loss']:.6g}")
    done = [t for t in trials if t.get("best_valid_loss") is not None]
    if not done:
        raise NonFiniteLossError(f"every learning rate of the grid {grid} diverged; nothing saved")
    best = min(done, key=lambda t: t["best_valid_loss"])
    copy_atomic(best["model"], out_model)
    for t in done:
        shutil.rmtree(t["model"].parent, ignore_errors=True)
    log(f"lr grid {grid}: chose {best['lr']:g} (lowest validation loss)")
    return {**best["record"], "out_model": str(out_model), "lr_choice": best["lr"],
            "lr_grid": [{k: v for k, v in t.items() if k not in ("record", "model")} for t in trials]}
