"""In-process fine-tuning of a MACE foundation model for the strategies no CLI tool offers.

* ``equitrain``: Equitrain-style LoRA through peft (:mod:`phononft.peft_lora`), merged before saving;
* ``l2sp``: full fine-tuning plus an L2-SP penalty toward the pretrained weights (:mod:`phononft.l2sp`).

Data, loss, optimisation step and evaluation are mace-torch's own (``mace.data`` configurations and
``AtomicData``, ``mace.modules.loss`` weighted Huber / MSE loss, ``mace.tools.train.take_step`` and
``mace.tools.train.evaluate``); only the short epoch loop with early stopping lives here.  The
foundation's E0s (atomic energies) are kept as they are.

Entry point: :func:`train_in_process`.

Reproducibility: one seed drives every random draw (torch, numpy, Python, the LoRA initialisation and the
data loader's shuffling, each through its own generator where torch allows); training runs with
``torch.use_deterministic_algorithms`` (:func:`deterministic_torch`), without which the CPU backward of
``x[idx]`` adds floats atomically from several threads in a run-dependent order, and without TorchScript's
optimising executor, whose warm-up made a model depend on what the process had trained before.  Results
are bit-identical from run to run for a given thread count.
"""

from __future__ import annotations

import contextlib
import math
import os
import random
import resource
import tempfile
import time
from pathlib import Path
from typing import Callable

import numpy as np

# importing mace sets TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD, needed to unpickle e3nn constants with torch>=2.6
import mace  # noqa: F401  (import order matters)
import torch

STRATEGIES = ("equitrain", "l2sp")

#: Defaults.  Sources: Equitrain's argparser (AdamW, Huber loss with delta 0.01, gradient clipping 10,
#: ReduceLROnPlateau factor 0.5 / patience 2, EMA off, no weight decay, lr 1e-2) and its LoRA helpers
#: (rank fraction 0.25, min rank 1, alpha None -> scale 1); energy/forces/stress weights 10/100/100 and
#: lr 5e-3 for full fine-tuning from the design notes (what worked for naive fine-tuning).
COMMON_DEFAULTS = {
    "max_epochs": 100,
    "patience": 10,          # early stopping on the validation loss
    "batch_size": 4,
    "valid_batch_size": 16,
    "loss": "huber",         # "huber" (mace WeightedHuberEnergyForcesStressLoss) or "mse"
    "huber_delta": 0.01,
    "energy_weight": 10.0,
    "forces_weight": 100.0,
    "stress_weight": 100.0,
    "weight_decay": 0.0,
    "max_grad_norm": 10.0,
    "ema_decay": None,       # e.g. 0.99 to evaluate/save an exponential moving average
    "scheduler_factor": 0.5,
    "scheduler_patience": 2,
    "head": None,            # head of a multi-head foundation to fine-tune (default: "Default" / the last)
    "energy_key": "REF_energy",
    "forces_key": "REF_forces",
    "stress_key": "REF_stress",
}
STRATEGY_DEFAULTS = {
    "equitrain": {"lr": 1e-2, "rank_fraction": 0.25, "alpha": None, "min_rank": 1},
    "l2sp": {"lr": 5e-3, "l2sp_lambda": 1e-3},
}


class NonFiniteLossError(FloatingPointError):
    """Raised when a training or validation loss becomes NaN/inf; nothing is saved then."""


def default_hyper(strategy: str) -> dict:
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown strategy {strategy!r}; expected one of {STRATEGIES}")
    return {**COMMON_DEFAULTS, **STRATEGY_DEFAULTS[strategy]}


def resolve_device(device: str) -> torch.device:
    from .mace_train import resolve_device as device_name

    return torch.device(device_name(device))


@contextlib.contextmanager
def _default_dtype(dtype: torch.dtype):
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        yield
    finally:
        torch.set_default_dtype(previous)


@contextlib.contextmanager
def deterministic_torch(threads: int | None = None, enabled: bool = True):
    """Deterministic torch while training, everything restored on exit:

    * ``torch.use_deterministic_algorithms`` (``warn_only``: an operation without a deterministic
      implementation warns rather than fails);
    * TorchScript's graph executor without its optimising passes (``torch.jit.optimized_execution``):
      e3nn's scripted tensor products otherwise round differently in a process's first two calls
      (profiling runs) than in later ones, so a model trained second in a process differed from the same
      model trained first.  (A plan optimised *before* entering stays in use: train inside this.)
    * if given, torch's thread count.
    """
    previous = (torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled(),
                torch.get_num_threads())
    torch.use_deterministic_algorithms(enabled, warn_only=True)
    if threads:
        torch.set_num_threads(int(threads))
    try:
        with torch.jit.optimized_execution(not enabled):
            yield
    finally:
        torch.use_deterministic_algorithms(previous[0], warn_only=previous[1])
        torch.set_num_threads(previous[2])


def load_model(path: str | Path, device: str | torch.device = "cpu") -> torch.nn.Module:
    """Load a pickled MACE model (``torch.save(model)``)."""
    return torch.load(str(path), map_location=device, weights_only=False)


def _pick_head(model: torch.nn.Module, head: str | None) -> tuple[list[str], str]:
    heads = list(getattr(model, "heads", None) or ["Default"])
    if head is None:
        head = "Default" if "Default" in heads else heads[-1]
    if head not in heads:
        raise ValueError(f"head {head!r} not in the foundation's heads {heads}")
    return heads, head


def load_dataset(path: str | Path, model: torch.nn.Module, hyper: dict, heads: list[str], head: str):
    """extxyz -> list of mace ``AtomicData`` with mace's key specification and the model's z table."""
    import ase.io
    from mace import data as mdata
    from mace.tools import AtomicNumberTable

    atoms_list = ase.io.read(str(path), index=":")
    if not atoms_list:
        raise ValueError(f"{path}: no structures")
    z_table = AtomicNumberTable([int(z) for z in model.atomic_numbers])
    unknown = sorted({int(z) for a in atoms_list for z in a.numbers} - set(z_table.zs))
    if unknown:
        raise ValueError(f"{path}: elements {unknown} are unknown to the foundation ({z_table.zs})")
    keyspec = mdata.KeySpecification(
        info_keys={"energy": hyper["energy_key"], "stress": hyper["stress_key"]},
        arrays_keys={"forces": hyper["forces_key"]},
    )
    configs = mdata.config_from_atoms_list(atoms_list, key_specification=keyspec, head_name=head)
    cutoff = float(model.r_max)
    return [mdata.AtomicData.from_config(c, z_table=z_table, cutoff=cutoff, heads=heads) for c in configs]


def _make_loss(hyper: dict) -> torch.nn.Module:
    from mace.modules import loss as mloss

    weights = dict(energy_weight=hyper["energy_weight"], forces_weight=hyper["forces_weight"],
                   stress_weight=hyper["stress_weight"])
    if hyper["loss"] == "huber":
        return mloss.WeightedHuberEnergyForcesStressLoss(huber_delta=hyper["huber_delta"], **weights)
    if hyper["loss"] == "mse":
        return mloss.WeightedEnergyForcesStressLoss(**weights)
    raise ValueError(f"loss must be 'huber' or 'mse', got {hyper['loss']!r}")


def _peak_memory_mb(device: torch.device) -> tuple[float, str]:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20, "torch.cuda.max_memory_allocated"
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0, "process peak RSS"


def save_model_atomic(model: torch.nn.Module, out_model: str | Path) -> Path:
    """``torch.save(model)`` into a temporary folder next to the target, then ``os.replace``."""
    out = Path(out_model)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp_dir = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent))
    try:
        tmp = tmp_dir / out.name  # same base name: the archive inside the file is named as usual
        torch.save(model, tmp)
        os.replace(tmp, out)
    finally:
        with contextlib.suppress(FileNotFoundError):
            (tmp_dir / out.name).unlink()
        tmp_dir.rmdir()
    return out


def train_in_process(strategy: str, foundation: str | Path, train_file: str | Path,
                     valid_file: str | Path, out_model: str | Path, *, seed: int = 0,
                     device: str = "auto", dtype: str = "float64", hyper: dict | None = None,
                     threads: int | None = None, deterministic: bool = True,
                     log: Callable[[str], None] = print) -> dict:
    """Fine-tune ``foundation`` on ``train_file`` with ``strategy`` and save a plain MACE model.

    ``threads``: torch's thread count while training (default: as set, e.g. by the Snakemake adapter);
    ``deterministic``: deterministic torch algorithms (:func:`deterministic_torch`).

    Returns a JSON-serialisable summary (losses per epoch, timing, memory, parameter counts).
    Raises :class:`NonFiniteLossError` (and writes nothing) if a loss becomes NaN/inf.
    """
    from mace.tools.train import evaluate, take_step
    from mace.tools.torch_tools import set_seeds

    hp = default_hyper(strategy)
    unknown = set(hyper or {}) - set(hp)
    if unknown:
        raise ValueError(f"unknown hyper-parameters for {strategy}: {sorted(unknown)}")
    hp.update(hyper or {})
    torch_dtype = {"float64": torch.float64, "float32": torch.float32}[dtype]
    dev = resolve_device(device)
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats(dev)
    t_start = time.perf_counter()

    with _default_dtype(torch_dtype), deterministic_torch(threads, deterministic):
        random.seed(seed)
        set_seeds(seed)
        generator = torch.Generator().manual_seed(seed)  # the LoRA initialisation
        shuffle_generator = torch.Generator().manual_seed(seed)  # the data loader's order of batches
        n_threads = torch.get_num_threads()

        model = load_model(foundation).to(dtype=torch_dtype)
        foundation_class = type(model)
        heads, head = _pick_head(model, hp["head"])
        train_set = load_dataset(train_file, model, hp, heads, head)
        valid_set = load_dataset(valid_file, model, hp, heads, head)
        from mace.tools.torch_geometric.dataloader import DataLoader

        # mace's own loader class; its get_data_loader() takes no generator: shuffling would draw from the
        # global torch stream, shared with anything else that draws from it
        train_loader = DataLoader(train_set, batch_size=hp["batch_size"], shuffle=True, generator=shuffle_generator)
        valid_loader = DataLoader(valid_set, batch_size=hp["valid_batch_size"], shuffle=False)
        model = model.to(dev)
        n_foundation = sum(p.numel() for p in model.parameters())

        base_loss = _make_loss(hp).to(dev)
        extra: dict = {}
        if strategy == "equitrain":
            from phononft import peft_lora

            train_model = peft_lora.wrap_lora(model, rank_fraction=hp["rank_fraction"],
                                              alpha=hp["alpha"], min_rank=hp["min_rank"],
                                              generator=generator)
            train_loss = base_loss
            extra["lora"] = {
                "rank_fraction": hp["rank_fraction"], "alpha": hp["alpha"], "min_rank": hp["min_rank"],
                "targets": {t.name: {"shape": list(t.shape), "rank": t.rank, "scale": t.scale}
                            for t in train_model.lora_targets},
            }
        else:
            from phononft.l2sp import L2SPLoss, L2SPPenalty

            for p in model.parameters():
                p.requires_grad_(True)
            train_model = model
            penalty = L2SPPenalty(model, hp["l2sp_lambda"]).to(dev)
            train_loss = L2SPLoss(base_loss, penalty)
            extra["l2sp_lambda"] = hp["l2sp_lambda"]
        n_trainable, n_total = _count(train_model)
        params = [p for p in train_model.parameters() if p.requires_grad]
        optimizer = torch.optim.AdamW(params, lr=hp["lr"], weight_decay=hp["weight_decay"])
        scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
            optimizer, mode="min", factor=hp["scheduler_factor"], patience=hp["scheduler_patience"])
        ema = None
        if hp["ema_decay"]:
            from torch_ema import ExponentialMovingAverage

            ema = ExponentialMovingAverage(params, decay=hp["ema_decay"])
        output_args = {"energy": True, "forces": True, "virials": False, "stress": True}

        def validate() -> dict:
            ctx = ema.average_parameters() if ema is not None else contextlib.nullcontext()
            with ctx:
                loss, aux = evaluate(train_model, base_loss, valid_loader, output_args, dev)
            return {"loss": float(loss), "mae_f": _metric(aux, "mae_f"),
                    "mae_e_per_atom": _metric(aux, "mae_e_per_atom")}

        def snapshot() -> dict:
            ctx = ema.average_parameters() if ema is not None else contextlib.nullcontext()
            with ctx:
                return {n: p.detach().clone() for n, p in train_model.named_parameters()
                        if p.requires_grad}

        initial = validate()
        log(f"[{strategy}] foundation: valid_loss {initial['loss']:.6g} "
            f"valid_mae_f {_mev(initial['mae_f'])}; trainable {n_trainable} of {n_total}")
        _check_finite(initial["loss"], "validation loss of the foundation")

        history, best = [], {"loss": math.inf, "epoch": 0, "state": snapshot()}
        for epoch in range(1, hp["max_epochs"] + 1):
            t0 = time.perf_counter()
            train_model.train()
            total, n_graphs = 0.0, 0
            for batch in train_loader:
                loss, _ = take_step(train_model, train_loss, batch, optimizer, ema,
                                    output_args, hp["max_grad_norm"], dev)
                loss = float(loss.detach())
                _check_finite(loss, f"training loss (epoch {epoch})")
                total += loss * batch.num_graphs
                n_graphs += batch.num_graphs
            train_model.eval()
            val = validate()
            _check_finite(val["loss"], f"validation loss (epoch {epoch})")
            scheduler.step(val["loss"])
            dt = time.perf_counter() - t0
            row = {"epoch": epoch, "train_loss": total / n_graphs, "valid_loss": val["loss"],
                   "valid_mae_f": val["mae_f"], "valid_mae_e_per_atom": val["mae_e_per_atom"],
                   "lr": optimizer.param_groups[0]["lr"], "seconds": dt}
            if strategy == "l2sp":
                row["l2sp_penalty"] = float(penalty().detach())
            history.append(row)
            log(f"[{strategy}] epoch {epoch:4d} train_loss {row['train_loss']:.6g} "
                f"valid_loss {val['loss']:.6g} valid_mae_f {_mev(val['mae_f'])} "
                f"{dt:.2f} s")
            if val["loss"] < best["loss"]:
                best = {"loss": val["loss"], "epoch": epoch, "state": snapshot()}
            elif epoch - best["epoch"] >= hp["patience"]:
                log(f"[{strategy}] early stop: no improvement for {hp['patience']} epochs")
                break

        # best weights back (for equitrain: the adapters), then a plain model on the CPU
        with torch.no_grad():
            named = dict(train_model.named_parameters())
            for name, value in best["state"].items():
                named[name].copy_(value)
        if strategy == "equitrain":
            from phononft import peft_lora

            final = peft_lora.merge_lora(train_model)
        else:
            final = train_model
        final = final.to("cpu").eval()
        for p in final.parameters():
            p.requires_grad_(True)
        if not all(torch.isfinite(p).all() for p in final.parameters()):
            raise NonFiniteLossError("non-finite weights in the trained model; nothing saved")
        if type(final) is not foundation_class:
            raise RuntimeError(f"trained model is {type(final)}, not {foundation_class}")
        save_model_atomic(final, out_model)

    wall = time.perf_counter() - t_start
    peak_mb, peak_kind = _peak_memory_mb(dev)
    epochs_run = len(history)
    result = {
        "strategy": strategy,
        "seed": seed,
        "device": str(dev),
        "dtype": dtype,
        "threads": n_threads,
        "deterministic": deterministic,
        "epochs_run": epochs_run,
        "best_epoch": best["epoch"],
        "best_valid_loss": best["loss"],
        "initial_valid": initial,
        "history": history,
        "wall_time_s": wall,
        "seconds_per_epoch": (sum(r["seconds"] for r in history) / epochs_run) if epochs_run else None,
        "peak_memory_mb": peak_mb,
        "peak_memory_kind": peak_kind,
        "trainable_parameters": n_trainable,
        "total_parameters": n_total,
        "foundation_parameters": n_foundation,
        "n_train": len(train_set),
        "n_valid": len(valid_set),
        "head": head,
        "hyper": {k: v for k, v in hp.items()},
        "out_model": str(out_model),
        **extra,
    }
    return result


def _count(model: torch.nn.Module) -> tuple[int, int]:
    from phononft.peft_lora import count_parameters

    return count_parameters(model)


def _metric(aux, key: str) -> float | None:
    value = aux.get(key)
    return float(value) if isinstance(value, (int, float, np.floating)) else None


def _mev(value: float | None) -> str:
    return "n/a" if value is None else f"{1000 * value:.2f} meV/A"


def _check_finite(value: float, what: str) -> None:
    if not np.isfinite(value):
        raise NonFiniteLossError(f"{what} is {value}; refusing to save a model")
