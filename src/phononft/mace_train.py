"""Running mace-torch's own trainer (``mace_run_train``) and reading what it leaves behind.

:class:`MaceRunner` is the study recipe's tool for the strategies that mace_run_train trains (their
:meth:`~phononft.strategies.base.Strategy.mace_options`): it maps the shared training options to mace's
(:func:`shared_options`), runs :func:`run_mace_train`, turns its model into the strategy's output and records
the optimiser steps mace took (one ``opt`` row of its metrics log per step: multihead's repeated fine-tuning
data show up here).

Reproducibility: the trainer runs in a child process started by :func:`run_mace_train` through a short
launcher (:data:`LAUNCHER`, ``python -c``) that fixes torch's thread count and turns on
``torch.use_deterministic_algorithms`` before calling ``mace.cli.run_train.main``.  Without the flag, the
CPU backward of advanced indexing (``x[idx]``, MACE's message passing) -- ``index_put_(accumulate=True)``
-- adds floats from several threads atomically, in an order that changes from run to run: with more than
one thread, two runs of the same config gave different weights.  With it, results are bit-identical from
run to run for a given thread count.  The child's hash seed is pinned too (``PYTHONHASHSEED``).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, Iterable

from .io import ENERGY_KEY, FORCES_KEY, STRESS_KEY


def resolve_device(device: str = "auto") -> str:
    """``auto`` -> ``cuda`` when a GPU is visible, else ``cpu``."""
    if device != "auto":
        return device
    import torch  # heavy: this module is imported at DAG build time (by the strategy registry)

    return "cuda" if torch.cuda.is_available() else "cpu"


def _store_true_flags() -> set[str]:
    """Options of mace_run_train that are bare switches (``--ema``), read from its own parser."""
    from mace.tools import build_default_arg_parser  # heavy (torch, e3nn): see resolve_device

    parser = build_default_arg_parser()
    return {a.dest for a in parser._actions if isinstance(a, argparse._StoreTrueAction)}


def cli_args(options: dict) -> list[str]:
    """``{"lr": 0.01, "ema": True}`` -> ``["--lr=0.01", "--ema"]`` (``None``/``False`` switches dropped)."""
    switches = _store_true_flags()
    args = []
    for key, value in options.items():
        if value is None:
            continue
        if key in switches:
            if value:
                args.append(f"--{key}")
            continue
        if isinstance(value, (list, tuple)):
            value = json.dumps(list(value))
        elif isinstance(value, dict):
            value = json.dumps(value)
        args.append(f"--{key}={value}")
    return args


def base_options(name: str, workdir: Path, train_file: Path, valid_file: Path | None, *, seed: int,
                 device: str, dtype: str) -> dict:
    workdir = Path(workdir).resolve()  # mace_run_train runs inside workdir: every path absolute
    train_file = Path(train_file).resolve()
    valid_file = None if valid_file is None else Path(valid_file).resolve()
    return {
        "name": name,
        "seed": seed,
        "device": resolve_device(device),
        "default_dtype": dtype,
        "work_dir": str(workdir),
        "model_dir": str(workdir),
        "log_dir": str(workdir / "logs"),
        "checkpoints_dir": str(workdir / "checkpoints"),
        "results_dir": str(workdir / "results"),
        "train_file": str(train_file),
        "valid_file": None if valid_file is None else str(valid_file),
        "energy_key": ENERGY_KEY,
        "forces_key": FORCES_KEY,
        "stress_key": STRESS_KEY,
        "save_cpu": True,
        "restart_latest": False,
    }


#: The child's program: fixed thread count and deterministic torch algorithms, then mace_run_train's own
#: ``main`` (it parses ``sys.argv[1:]``, the options).  ``warn_only``: an operation without a deterministic
#: implementation (none met on CPU; some CUDA ones) warns in the training log instead of failing.
LAUNCHER = (
    "import os, sys, torch; "
    "torch.set_num_threads(int(os.environ['OMP_NUM_THREADS'])); "
    "torch.use_deterministic_algorithms(os.environ.get('PHONONFT_DETERMINISTIC') == '1', warn_only=True); "
    "sys.argv[0] = 'mace_run_train'; "
    "from mace.cli.run_train import main; main()"
)


def child_environment(threads: int, deterministic: bool = True, hash_seed: int = 0) -> dict:
    """Environment of the ``mace_run_train`` child: ``threads`` for OpenMP/MKL, hash seed, determinism."""
    env = dict(os.environ, TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD="1", PYTHONUNBUFFERED="1",
               OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads), PYTHONHASHSEED=str(hash_seed),
               PHONONFT_DETERMINISTIC="1" if deterministic else "0")
    if deterministic:
        env.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # deterministic cuBLAS (CUDA runs only)
    return env


def run_mace_train(options: dict, workdir: Path, *, log: Callable[[str], None] = print,
                   threads: int | None = None, deterministic: bool = True) -> dict:
    """Run ``mace_run_train`` with ``options``; stream its output to ``log``; return a summary.

    ``threads``: torch's thread count in the trainer (default: this process's, ``torch.get_num_threads()``,
    which follows ``OMP_NUM_THREADS`` and Snakemake's ``threads``); always set explicitly in the child.
    ``deterministic``: ``torch.use_deterministic_algorithms`` in the child (see the module docstring).
    Results are reproducible for a given thread count; other counts may round differently.

    The summary holds wall time, the per-epoch metrics MACE logged, the trainable/total parameter counts
    it reported, the thread count and the path of the saved model.  Raises ``RuntimeError`` with the tail
    of the output if training fails or produces a non-finite loss.
    """
    import torch  # heavy (see resolve_device); only to read this process's thread count

    workdir = Path(workdir)
    if workdir.exists():
        shutil.rmtree(workdir)  # a previous, killed attempt: start clean
    workdir.mkdir(parents=True)
    threads = int(threads or torch.get_num_threads())
    cmd = [sys.executable, "-c", LAUNCHER, *cli_args(options)]
    env = child_environment(threads, deterministic)
    log(f"$ mace_run_train {' '.join(cmd[3:])}  (threads {threads}, deterministic {deterministic})")
    t0 = time.perf_counter()
    tail: list[str] = []
    with subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
                          cwd=workdir) as proc:
        assert proc.stdout is not None
        for line in proc.stdout:
            line = line.rstrip()
            tail = (tail + [line])[-40:]
            if _interesting(line):
                log(line)
        # reap the child ourselves to read its own resource usage (peak RSS of this training only)
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - t0
    peak_mb = usage.ru_maxrss / 1024  # Linux: kB
    if proc.returncode != 0:
        raise RuntimeError(f"mace_run_train failed (exit {proc.returncode}) in {workdir}:\n" + "\n".join(tail))
    model = workdir / f"{options['name']}.model"
    if not model.is_file():
        raise RuntimeError(f"mace_run_train wrote no model in {workdir}:\n" + "\n".join(tail))
    epochs = read_epoch_metrics(workdir / "results", options["name"], options.get("seed", 0))
    for row in epochs:
        if row.get("loss") is not None and not _finite(row["loss"]):
            raise RuntimeError(f"non-finite loss at epoch {row.get('epoch')} in {workdir}")
    counts = parameter_counts_from_log(workdir / "logs", options["name"], options.get("seed", 0))
    return {"wall_time_s": wall, "epochs": epochs, "model": str(model), "peak_memory_mb": peak_mb,
            "cpu_seconds": usage.ru_utime + usage.ru_stime, "threads": threads, "deterministic": deterministic,
            **counts}


def _finite(x) -> bool:
    try:
        return float(x) == float(x) and abs(float(x)) != float("inf")
    except (TypeError, ValueError):
        return False


def _interesting(line: str) -> bool:
    keys = ("Epoch", "epoch", "Error", "error", "Traceback", "Total number", "trainable", "Saving",
            "Loaded", "Using", "Number of", "Loss", "loss", "RMSE", "MAE", "Warning")
    return any(k in line for k in keys)


def read_epoch_metrics(results_dir: Path, name: str, seed: int) -> list[dict]:
    """Per-epoch rows that MACE's MetricsLogger wrote (JSON lines), training and validation."""
    path = Path(results_dir) / f"{name}_run-{seed}_train.txt"
    rows = []
    if path.is_file():
        for line in path.read_text().splitlines():
            line = line.strip()
            if line:
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError:
                    continue
    return rows


def parameter_counts_from_log(log_dir: Path, name: str, seed: int) -> dict:
    """Total parameter count that MACE prints (``Total number of parameters: N``)."""
    out: dict = {}
    for path in sorted(Path(log_dir).glob(f"{name}_run-{seed}*.log")):
        m = re.findall(r"Total number of parameters:\s*(\d+)", path.read_text())
        if m:
            out["total_parameters_reported"] = int(m[-1])
    return out


def learning_rate_from_log(log_dir: Path, name: str, seed: int) -> float | None:
    """The learning rate mace_run_train trained with (its log line ``Learning rate: X, weight decay: Y``)."""
    for path in sorted(Path(log_dir).glob(f"{name}_run-{seed}*.log")):
        m = re.findall(r"Learning rate: ([-+0-9.eE]+), weight decay", path.read_text())
        if m:
            return float(m[-1])
    return None


def summarize_epochs(rows: Iterable[dict], head: str = "Default") -> dict:
    """Validation loss and force MAE per epoch of ``head`` (the fine-tuned one) from MACE's metric rows,
    training loss per epoch, the optimiser steps (one ``opt`` row each) and the lowest validation loss."""
    rows = list(rows)
    valid = [r for r in rows if r.get("mode") == "eval" and r.get("head", head) == head]
    train = [r for r in rows if r.get("mode") == "opt"]
    curve = [{"epoch": r.get("epoch"), "loss": r.get("loss"), "mae_f": r.get("mae_f"),
              "rmse_f": r.get("rmse_f"), "mae_e_per_atom": r.get("mae_e_per_atom")} for r in valid]
    train_curve: dict = {}
    for r in train:
        train_curve.setdefault(r.get("epoch"), []).append(r.get("loss"))
    losses = [r["loss"] for r in curve if r["epoch"] is not None and _finite(r["loss"])]
    return {"valid_curve": curve,
            "train_loss": [{"epoch": e, "loss": sum(v) / len(v)} for e, v in train_curve.items()
                           if v and all(_finite(x) for x in v)],
            "optimizer_steps": len(train), "best_valid_loss": min(losses) if losses else None}


# ---- the study recipe's mace_run_train strategies ---------------------------------------------------------
#: mace's ``--lr_params_factors`` with every block at factor 1 (no per-block learning-rate scaling)
LR_FACTORS_NONE = json.dumps({f"{b}_lr_factor": 1.0 for b in ("embedding", "interactions", "products", "readouts")})
#: shared training options (phononft.strategies.base.TRAINING) -> mace_run_train options of the same meaning
_SHARED = ("max_num_epochs", "patience", "lr", "energy_weight", "forces_weight", "stress_weight", "loss",
           "ema_decay", "weight_decay", "lr_factor", "scheduler_patience")


def shared_options(opts: dict, budget: int) -> dict:
    """mace_run_train options of the shared training options; AdamW (with mace's AMSGrad); the batch at most
    the budget (mace drops incomplete batches: a larger one would leave nothing to train on)."""
    out = {k: opts[k] for k in _SHARED}
    out.update(optimizer="adamw", ema=opts["ema_decay"] is not None, batch_size=min(int(opts["batch_size"]), budget))
    return out


def foundation_options(foundation: Path, *, multihead: bool = False) -> dict:
    """Fine-tuning from ``foundation``: its E0s, every element it knows (frozen blocks stay bit-identical and
    the model keeps the foundation's chemistry), multihead fine-tuning only when asked (mace's default is on)."""
    return {"foundation_model": str(Path(foundation).resolve()), "E0s": "foundation",
            "multiheads_finetuning": multihead, "foundation_model_elements": True}


def architecture_of(model) -> dict:
    """mace_run_train architecture options reproducing ``model``'s hyperparameters."""
    from mace.tools.scripts_utils import extract_config_mace_model  # heavy (torch, e3nn): see resolve_device

    cfg = extract_config_mace_model(model)
    hidden = str(cfg["hidden_irreps"])
    correlation = cfg["correlation"][0] if isinstance(cfg["correlation"], list) else cfg["correlation"]
    return {"r_max": float(cfg["r_max"]), "num_channels": int(hidden.split("x")[0]),
            "max_L": max(int(term.split("x")[1][0]) for term in hidden.split("+")),
            "num_interactions": int(cfg["num_interactions"]), "correlation": int(correlation),
            "num_radial_basis": int(cfg["num_bessel"]), "num_cutoff_basis": int(cfg["num_polynomial_cutoff"]),
            "max_ell": int(cfg["max_ell"])}


def extract_head(model_file: Path, head: str, out_file: Path) -> None:
    """Keep only ``head`` of a multihead MACE model (mace's ``remove_pt_head``), atomically."""
    import torch  # heavy (torch, mace, below too): see resolve_device
    from mace.tools.scripts_utils import remove_pt_head  # heavy

    from .torch_runtime import load_model, save_model_atomic  # heavy

    model = load_model(model_file)
    torch.set_default_dtype(next(model.parameters()).dtype)
    save_model_atomic(remove_pt_head(model, head), out_file)


class MaceRunner:
    """``fit(lr, out_model)``: one mace_run_train training of ``strategy`` (study recipe)."""

    def __init__(self, strategy, job, opts: dict):
        self.strategy, self.job, self.opts = strategy, job, opts
        self.n_run = 0

    def fit(self, lr: float, out_model: Path) -> dict:
        from .torch_runtime import NonFiniteLossError  # heavy (torch, mace): see resolve_device

        job = self.job
        workdir = job.workdir / ("mace" if self.n_run == 0 else f"mace-{self.n_run}")
        self.n_run += 1
        opts = base_options("model", workdir, job.train_file, job.valid_file, seed=job.seed, device=job.device,
                            dtype=job.dtype)
        opts.update({"compute_stress": True, "model": "ScaleShiftMACE"})
        opts.update(shared_options(self.opts, job.budget))
        opts.update(self.strategy.mace_options(job, self.opts))
        opts["lr"] = lr
        try:
            summary = run_mace_train(opts, workdir, log=job.log, threads=job.threads)
        except RuntimeError as exc:
            if "non-finite" in str(exc):
                raise NonFiniteLossError(str(exc)) from exc
            raise
        self.strategy.finish_mace(Path(summary["model"]), out_model)
        curves = summarize_epochs(summary["epochs"])
        epochs = len(curves["train_loss"])
        used = learning_rate_from_log(workdir / "logs", opts["name"], job.seed)  # multihead may override it
        return {"tool": "mace_run_train", "learning_rate": lr if used is None else used, "epochs_run": epochs,
                "optimizer_steps": curves["optimizer_steps"], "best_valid_loss": curves["best_valid_loss"],
                "wall_time_s": summary["wall_time_s"], "seconds_per_epoch": summary["wall_time_s"] / max(epochs, 1),
                "peak_memory_mb": summary["peak_memory_mb"],
                "peak_memory_kind": "max RSS of the mace_run_train process", "cpu_seconds": summary["cpu_seconds"],
                "valid_curve": curves["valid_curve"], "train_loss": curves["train_loss"], "mace_options": opts,
                **self.strategy.count_parameters(job.foundation, out_model, self.opts)}
