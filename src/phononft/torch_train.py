"""The in-process trainer: one recipe, every strategy; the strategy only says what is trained.

Every trained strategy of the matched recipe trains here, and so do the study recipe's strategies whose tool
it is (``l2sp``; ``equitrain`` with ``engine: peft``).  A strategy's :meth:`~phononft.strategies.base.Strategy.adapt`
turns a copy of the foundation into an :class:`Adapted` (which tensors train, any penalty, decay or replay
head, how to get a plain MACE model back); :class:`Trainer` does the rest, identically for all:

* optimiser: AdamW with AMSGrad and mace's parameter groups (``mace.tools.scripts_utils.get_params_options``:
  ``weight_decay`` on the interaction linears and products), gradient norm clipped at 10;
* loss: ``loss`` (mace's ``UniversalLoss`` by default, or weighted Huber), Huber delta 0.01, weights
  ``energy_weight`` / ``forces_weight`` / ``stress_weight``;
* an exponential moving average of the trained tensors (``ema_decay``), validated and saved;
* schedule: ReduceLROnPlateau on the validation loss (``lr_factor``, ``scheduler_patience``);
* budget: ``max_num_epochs`` epochs of ceil(N / batch) optimiser steps (the last batch of an epoch may be
  smaller); with ``early_stopping`` (the study recipe) training stops after ``patience`` epochs without a lower
  validation loss, without it (matched) every epoch runs, so every strategy takes the same number of steps;
* the saved model: the (averaged) weights of the epoch with the lowest validation loss, a plain MACE model of
  the foundation's class (adapters merged by the strategy).

That is mace_run_train's own recipe (its defaults: AMSGrad, groups, clipping, plateau 0.8 / 50 epochs, EMA,
best-validation checkpoint) in one process: ``naive`` here and through mace_run_train reach the same validation
error (tests/test_finetune.py).  Data are mace's (``config_from_atoms_list``, ``AtomicData``, its data loader),
loaded once per :class:`Trainer` and reused for every learning rate of a grid; the foundation's E0s are kept.
"""

from __future__ import annotations

import contextlib
import copy
import math
import random
import time
from argparse import Namespace
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import ase.io
import numpy as np

# importing mace sets TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD, needed to unpickle e3nn constants with torch>=2.6
import mace  # noqa: F401  (import order matters)
import torch
from mace import data as mdata
from mace.modules import loss as mloss
from mace.tools import AtomicNumberTable, torch_geometric
from mace.tools.scripts_utils import get_params_options
from mace.tools.torch_geometric.batch import Batch
from mace.tools.torch_tools import set_seeds
from mace.tools.train import evaluate
from torch_ema import ExponentialMovingAverage

from . import strategies
from .io import ENERGY_KEY, FORCES_KEY, STRESS_KEY
from .mace_train import LR_FACTORS_NONE, resolve_device
from .strategies.base import Job
from .torch_runtime import (NonFiniteLossError, default_dtype, deterministic_torch, load_model, peak_memory_mb,
                            save_model_atomic)

#: Fixed parts of the recipe (mace_run_train's defaults).
HUBER_DELTA = 0.01
MAX_GRAD_NORM = 10.0
VALID_BATCH_SIZE = 10
OUTPUT_ARGS = {"energy": True, "forces": True, "virials": False, "stress": True}


@dataclass
class Adapted:
    """What a strategy trains: ``module`` (called like a MACE model), ``core`` (the MACE module whose blocks
    give mace's parameter groups), ``finalize()`` (the plain MACE model to save), and optionally a
    ``penalty()`` added to the loss, a ``before_step(optimizer)`` hook, a replay head (``replay_module``, its
    loss weight and structures per epoch) with its own tensors (``extra_params``), a ``weight_decay`` replacing
    the option's, and ``record`` (written to train.json)."""

    module: torch.nn.Module
    core: torch.nn.Module
    finalize: Callable[[], torch.nn.Module]
    penalty: Callable[[], torch.Tensor] | None = None
    before_step: Callable[[torch.optim.Optimizer], None] | None = None
    replay_module: torch.nn.Module | None = None
    replay_weight: float = 0.0
    replay_samples: int = 0
    extra_params: list = field(default_factory=list)
    weight_decay: float | None = None
    record: dict = field(default_factory=dict)

    @classmethod
    def everything(cls, model: torch.nn.Module) -> "Adapted":
        """Every weight of ``model`` trains."""
        for p in model.parameters():
            p.requires_grad_(True)
        return cls(module=model, core=model, finalize=lambda: model)

    def to(self, device) -> None:
        for part in (self.module, self.replay_module, self.penalty, self.before_step):
            if isinstance(part, torch.nn.Module):
                part.to(device)


@dataclass
class Context:
    """What :meth:`~phononft.strategies.base.Strategy.adapt` may use: the training data (mace configurations
    and graphs), the foundation's z table and heads, a seeded generator, the replay graphs (or None)."""

    train_configs: list
    train_set: list
    z_table: object
    heads: list
    generator: torch.Generator
    replay_set: list | None = None

    def loader(self, *, shuffle: bool = False, batch_size: int = VALID_BATCH_SIZE):
        return torch_geometric.dataloader.DataLoader(self.train_set, batch_size=batch_size, shuffle=shuffle)


def shared_trunk(model: torch.nn.Module, own: tuple[str, ...] = ("readouts",)) -> torch.nn.Module:
    """A second head of ``model``: every submodule, parameter and buffer shared, except the submodules named in
    ``own``, which are copies (MACE's multihead models differ between heads in their readouts only)."""
    twin = copy.copy(model)
    twin._parameters, twin._buffers, twin._modules = (dict(model._parameters), dict(model._buffers),
                                                      dict(model._modules))
    for name in own:
        twin._modules[name] = copy.deepcopy(model._modules[name])
    return twin


def _pick_head(model: torch.nn.Module) -> tuple[list[str], str]:
    heads = list(getattr(model, "heads", None) or ["Default"])
    return heads, "Default" if "Default" in heads else heads[-1]


def load_configs(path: str | Path, model: torch.nn.Module, head: str) -> list:
    """extxyz -> mace configurations (labels REF_energy / REF_forces / REF_stress), elements checked."""
    atoms_list = ase.io.read(str(path), index=":")
    if not atoms_list:
        raise ValueError(f"{path}: no structures")
    unknown = sorted({int(z) for a in atoms_list for z in a.numbers} - {int(z) for z in model.atomic_numbers})
    if unknown:
        raise ValueError(f"{path}: elements {unknown} are unknown to the foundation "
                         f"({[int(z) for z in model.atomic_numbers]})")
    keyspec = mdata.KeySpecification(info_keys={"energy": ENERGY_KEY, "stress": STRESS_KEY},
                                     arrays_keys={"forces": FORCES_KEY})
    return mdata.config_from_atoms_list(atoms_list, key_specification=keyspec, head_name=head)


def graphs(configs: list, model: torch.nn.Module, heads: list[str]) -> list:
    """mace configurations -> ``AtomicData`` graphs with the model's z table and cutoff."""
    z_table = AtomicNumberTable([int(z) for z in model.atomic_numbers])
    return [mdata.AtomicData.from_config(c, z_table=z_table, cutoff=float(model.r_max), heads=heads) for c in configs]


def load_dataset(path: str | Path, model: torch.nn.Module, heads: list[str], head: str) -> list:
    """extxyz -> mace ``AtomicData`` graphs with the model's z table and cutoff."""
    return graphs(load_configs(path, model, head), model, heads)


def make_loss(opts: dict) -> torch.nn.Module:
    weights = {k: opts[k] for k in ("energy_weight", "forces_weight", "stress_weight")}
    if opts["loss"] == "universal":
        return mloss.UniversalLoss(huber_delta=HUBER_DELTA, **weights)
    if opts["loss"] == "huber":
        return mloss.WeightedHuberEnergyForcesStressLoss(huber_delta=HUBER_DELTA, **weights)
    raise ValueError(f"loss must be universal or huber, got {opts['loss']!r}")


class Trainer:
    """The in-process trainer of one model (``job``) of ``strategy`` with options ``opts``; data loaded once,
    :meth:`fit` trains with one learning rate (called once per value of an lr grid)."""

    def __init__(self, strategy, job, opts: dict, *, early_stopping: bool):
        self.strategy, self.job, self.opts, self.early_stopping = strategy, job, dict(opts), early_stopping
        self.torch_dtype = {"float64": torch.float64, "float32": torch.float32}[job.dtype]
        self.dev = torch.device(resolve_device(job.device))
        with default_dtype(self.torch_dtype):
            self.foundation = load_model(job.foundation).to(dtype=self.torch_dtype)
            self.heads, self.head = _pick_head(self.foundation)
            self.train_configs = load_configs(job.train_file, self.foundation, self.head)
            self.train_set = graphs(self.train_configs, self.foundation, self.heads)
            self.valid_set = load_dataset(job.valid_file, self.foundation, self.heads, self.head)
            self.replay_set = None
            if strategy.needs_replay and job.replay_file is not None:
                self.replay_set = load_dataset(job.replay_file, self.foundation, self.heads, self.head)
        self.z_table = AtomicNumberTable([int(z) for z in self.foundation.atomic_numbers])
        self.batch_size = min(int(opts["batch_size"]), len(self.train_set))

    def _optimizer(self, adapted: Adapted, lr: float) -> torch.optim.Optimizer:
        decay = self.opts["weight_decay"] if adapted.weight_decay is None else adapted.weight_decay
        options = get_params_options(Namespace(lr=lr, weight_decay=decay, amsgrad=True, beta=0.9, freeze=None,
                                               lr_params_factors=LR_FACTORS_NONE), adapted.core)
        groups = options["params"] + [{"name": "extra", "params": adapted.extra_params, "weight_decay": 0.0}]
        seen: set[int] = set()
        for g in groups:  # trained tensors only, each in one group
            g["params"] = [p for p in g["params"] if p.requires_grad and id(p) not in seen and not seen.add(id(p))]
        options["params"] = [g for g in groups if g["params"]]
        return torch.optim.AdamW(**options)

    def fit(self, lr: float, out_model: str | Path) -> dict:
        """Train with learning rate ``lr``; save the plain model to ``out_model`` atomically; return the record.
        Raises :class:`NonFiniteLossError` (nothing written) when a loss becomes NaN/inf."""
        job, opts, log, dev, name = self.job, self.opts, self.job.log, self.dev, self.strategy.name
        if dev.type == "cuda":
            torch.cuda.reset_peak_memory_stats(dev)
        t_start = time.perf_counter()
        with default_dtype(self.torch_dtype), deterministic_torch(job.threads):
            random.seed(job.seed)
            set_seeds(job.seed)
            generator = torch.Generator().manual_seed(job.seed)
            model = copy.deepcopy(self.foundation).to(dev)
            ctx = Context(self.train_configs, self.train_set, self.z_table, self.heads, generator, self.replay_set)
            adapted = self.strategy.adapt(model, opts, ctx)
            adapted.to(dev)
            optimizer = self._optimizer(adapted, lr)
            params = [p for g in optimizer.param_groups for p in g["params"]]
            scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, mode="min", factor=opts["lr_factor"],
                                                                   patience=opts["scheduler_patience"])
            ema = ExponentialMovingAverage(params, decay=opts["ema_decay"]) if opts["ema_decay"] else None
            loss_fn = make_loss(opts).to(dev)
            loader = torch_geometric.dataloader.DataLoader(self.train_set, batch_size=self.batch_size, shuffle=True,
                                                           drop_last=False, generator=generator)
            valid_loader = torch_geometric.dataloader.DataLoader(self.valid_set, batch_size=VALID_BATCH_SIZE)
            replay_draw = torch.Generator().manual_seed(job.seed + 1)
            averaged = (lambda: ema.average_parameters()) if ema is not None else contextlib.nullcontext
            trained = [(n, p) for n, p in adapted.module.named_parameters() if p.requires_grad]
            n_trainable = sum(p.numel() for p in params)
            n_total = n_trainable + sum(p.numel() for p in {id(p): p for p in adapted.module.parameters()
                                                           if not p.requires_grad}.values())

            def validate() -> dict:
                adapted.module.eval()
                with averaged():
                    loss, aux = evaluate(adapted.module, loss_fn, valid_loader, OUTPUT_ARGS, dev)
                _check_finite(float(loss), "validation loss")
                return {"loss": float(loss), "mae_f": _metric(aux, "mae_f"),
                        "mae_e_per_atom": _metric(aux, "mae_e_per_atom")}

            def snapshot() -> dict:
                with averaged():
                    return {n: p.detach().clone() for n, p in trained}

            initial = validate()
            log(f"[{name}] lr {lr:g}: initial valid_loss {initial['loss']:.6g} valid_mae_f {_mev(initial['mae_f'])}; "
                f"trainable {n_trainable} of {n_total}")
            history, best = [], {"loss": math.inf, "epoch": 0, "state": snapshot()}
            for epoch in range(1, opts["max_num_epochs"] + 1):
                t0 = time.perf_counter()
                adapted.module.train()
                replay = self._replay_chunks(adapted, len(loader), replay_draw)
                total, n_graphs = 0.0, 0
                for k, batch in enumerate(loader):
                    loss = self._step(adapted, loss_fn, batch, replay[k], optimizer, params, ema)
                    _check_finite(loss, f"training loss (epoch {epoch})")
                    total, n_graphs = total + loss * batch.num_graphs, n_graphs + batch.num_graphs
                val = validate()
                scheduler.step(val["loss"])
                row = {"epoch": epoch, "train_loss": total / n_graphs, "valid_loss": val["loss"],
                       "valid_mae_f": val["mae_f"], "valid_mae_e_per_atom": val["mae_e_per_atom"],
                       "lr": optimizer.param_groups[0]["lr"], "seconds": time.perf_counter() - t0}
                if adapted.penalty is not None:
                    row["penalty"] = float(adapted.penalty().detach())
                history.append(row)
                log(f"[{name}] epoch {epoch:4d} train_loss {row['train_loss']:.6g} valid_loss {val['loss']:.6g} "
                    f"valid_mae_f {_mev(val['mae_f'])} {row['seconds']:.2f} s")
                if val["loss"] < best["loss"]:
                    best = {"loss": val["loss"], "epoch": epoch, "state": snapshot()}
                elif self.early_stopping and epoch - best["epoch"] >= opts["patience"]:
                    log(f"[{name}] early stop: no improvement for {opts['patience']} epochs")
                    break
            with torch.no_grad():
                named = dict(trained)
                for key, value in best["state"].items():
                    named[key].copy_(value)
            final = adapted.finalize().to("cpu").eval()
            for p in final.parameters():
                p.requires_grad_(True)
            if not all(torch.isfinite(p).all() for p in final.parameters()):
                raise NonFiniteLossError("non-finite weights in the trained model; nothing saved")
            if type(final) is not type(self.foundation):
                raise RuntimeError(f"trained model is {type(final)}, not the foundation's {type(self.foundation)}")
            save_model_atomic(final, out_model)
        peak_mb, peak_kind = peak_memory_mb(dev)
        epochs_run = len(history)
        return {
            "strategy": name, "tool": "in-process", "early_stopping": self.early_stopping, "seed": job.seed,
            "device": str(dev), "dtype": job.dtype, "threads": job.threads or torch.get_num_threads(),
            "deterministic": True, "learning_rate": lr, "epochs_run": epochs_run,
            "steps_per_epoch": len(loader), "optimizer_steps": len(loader) * epochs_run, "batch_size": self.batch_size,
            "best_epoch": best["epoch"], "best_valid_loss": best["loss"], "initial_valid": initial,
            "history": history, "wall_time_s": time.perf_counter() - t_start,
            "seconds_per_epoch": sum(r["seconds"] for r in history) / epochs_run if epochs_run else None,
            "peak_memory_mb": peak_mb, "peak_memory_kind": peak_kind, "trainable_parameters": n_trainable,
            "total_parameters": n_total, "foundation_parameters": sum(p.numel() for p in self.foundation.parameters()),
            "n_train": len(self.train_set), "n_valid": len(self.valid_set), "head": self.head,
            "settings": {**opts, "huber_delta": HUBER_DELTA, "max_grad_norm": MAX_GRAD_NORM, "optimizer": "adamw",
                         "amsgrad": True, "scheduler": "ReduceLROnPlateau(valid loss)"},
            "out_model": str(out_model), **adapted.record,
        }

    def _replay_chunks(self, adapted: Adapted, steps: int, draw: torch.Generator) -> list:
        """One replay batch (or None) per optimiser step of an epoch: a fresh sample of ``replay_samples``
        structures of the replay set, split evenly over the steps."""
        if adapted.replay_module is None:
            return [None] * steps
        pick = torch.randperm(len(self.replay_set), generator=draw)[:adapted.replay_samples]
        return [Batch.from_data_list([self.replay_set[int(i)] for i in chunk]) if len(chunk) else None
                for chunk in torch.tensor_split(pick, steps)]

    def _step(self, adapted: Adapted, loss_fn, batch, replay, optimizer, params, ema) -> float:
        """One optimiser step (as ``mace.tools.train.take_step``, plus the strategy's penalty, replay and hook)."""
        optimizer.zero_grad(set_to_none=True)

        def loss_of(module, data):
            data = data.to(self.dev)
            out = module(data.to_dict(), training=True, compute_force=True, compute_virials=False,
                         compute_stress=True)
            return loss_fn(pred=out, ref=data)

        loss = loss_of(adapted.module, batch)
        if replay is not None:
            loss = loss + adapted.replay_weight * loss_of(adapted.replay_module, replay)
        if adapted.penalty is not None:
            loss = loss + adapted.penalty()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, max_norm=MAX_GRAD_NORM)
        if adapted.before_step is not None:
            adapted.before_step(optimizer)
        optimizer.step()
        if ema is not None:
            ema.update()
        return float(loss.detach())


def train_in_process(strategy: str, foundation: str | Path, train_file: str | Path, valid_file: str | Path,
                     out_model: str | Path, *, seed: int = 0, device: str = "auto", dtype: str = "float64",
                     options: dict | None = None, recipe: str = "matched", lr: float | None = None,
                     replay_file: str | Path | None = None, threads: int | None = None,
                     log: Callable[[str], None] = print) -> dict:
    """Train one model of ``strategy`` with the in-process trainer (options over the strategy's defaults;
    ``recipe`` study: early stopping, matched: every epoch), learning rate ``lr`` (default: the option)."""
    strat = strategies.get(strategy)
    opts = {**strat.defaults(), **strat.resolve(options)}
    job = Job(Path(foundation), Path(train_file), Path(valid_file), 0, seed, Path(out_model).parent, device, dtype,
              None if replay_file is None else Path(replay_file), threads, log)
    return Trainer(strat, job, opts, early_stopping=recipe == "study").fit(opts["lr"] if lr is None else lr,
                                                                            out_model)


def _metric(aux, key: str) -> float | None:
    value = aux.get(key)
    return float(value) if isinstance(value, (int, float, np.floating)) else None


def _mev(value: float | None) -> str:
    return "n/a" if value is None else f"{1000 * value:.2f} meV/A"


def _check_finite(value: float, what: str) -> None:
    if not np.isfinite(value):
        raise NonFiniteLossError(f"{what} is {value}; refusing to save a model")
