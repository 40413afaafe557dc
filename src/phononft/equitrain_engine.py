"""Fine-tuning with the Equitrain package itself (``equitrain==1.0.0``, torch backend), in process.

The study's own framework does every step here; this module only builds its argument namespaces (from
Equitrain's own argparse parsers, so every option keeps Equitrain's default) and runs the epochs:

* data: ``equitrain.preprocess`` converts the labelled extxyz splits (``REF_energy`` / ``REF_forces`` /
  ``REF_stress``, ASE sign, eV/Å^3) to Equitrain's HDF5 format;
* model: ``MaceWrapper`` around the foundation, then ``LoRAFineTuneWrapper`` (adapters ``W + scale*B@A``
  on every ``*weight`` tensor with ndim >= 2, rank ``ceil(rank_fraction*min(out, in))``) or
  ``DeltaFineTuneWrapper`` (``theta = theta_0 + delta``, deltas from zero; optimizer weight decay on the
  deltas is an L2-SP penalty);
* training: the torch trainer's own pieces, called in the order of its ``_train_with_accelerator``
  (``get_model``, ``get_dataloaders``, ``create_optimizer`` / ``create_scheduler``, ``accelerate``,
  ``train_one_epoch``: forward, loss, backward, NaN-to-zero gradients, gradient clipping by value, AdamW
  step, EMA; ``evaluate_main``; ``BestMetric``; ``save_checkpoint`` on every validation improvement;
  ReduceLROnPlateau stepped on the *training* loss, Equitrain's default monitor).  Equitrain 1.0.0 has no
  early stopping; this driver adds one (``patience``) and records the per-epoch metrics.  With
  ``patience=None`` it runs all epochs and gives bit-identical weights to ``equitrain.train(args)``
  (tested);
* export: ``equitrain.scripts.equitrain_export.export`` (the ``equitrain-export`` command) rebuilds the
  wrapper from the best checkpoint and merges it into a plain MACE model of the foundation's class.

Entry points: :func:`train_with_equitrain`, :func:`adapted_tensors`; :class:`EquitrainRunner` is the study
recipe's tool of the strategies ``equitrain`` (``engine: package``) and ``delta``.  ``equitrain`` (and through it
``accelerate`` and ``torch_geometric``) is heavy (seconds): the strategies import this module only when they
train with it.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import math
import os
import shutil
import tempfile
import time
from argparse import Namespace
from importlib.metadata import version
from pathlib import Path
from typing import Callable

# importing mace sets TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD, needed to unpickle e3nn constants with torch>=2.6
import mace  # noqa: F401  (import order matters)
import torch
from accelerate import Accelerator
from accelerate.state import AcceleratorState
from equitrain.argparser import get_args_parser
from equitrain.backends import torch_backend as tb
from equitrain.backends.torch_utils import set_seeds
from equitrain.backends.torch_wrappers import MaceWrapper
from equitrain.finetune.delta_torch import DeltaFineTuneWrapper
from equitrain.finetune.lora_torch import LoRAFineTuneWrapper
from equitrain.logger import FileLogger
# not ``equitrain.preprocess``: in 1.0.0 that name becomes the submodule after its first call
from equitrain.preprocess import preprocess
from equitrain.scripts.equitrain_export import export

from .io import ENERGY_KEY, FORCES_KEY, STRESS_KEY
from .mace_train import resolve_device
from .torch_runtime import NonFiniteLossError, default_dtype, load_model, peak_memory_mb

WRAPPERS = ("lora", "delta")
ENGINES = ("equitrain", "peft")

#: Defaults of :func:`train_with_equitrain`.  Equitrain's own (argparser): lr 1e-2, AdamW, Huber loss with
#: delta 0.01, EMA off (decay 0.999 when on), no weight decay, rank fraction 0.25; the project's: 100 epochs
#: at most, early stopping after 10 epochs without improvement, batch size 4, weights 10/100/100 (Equitrain:
#: 16 and 1/1/1).
DEFAULTS = {
    "rank_fraction": 0.25, "lr": 1e-2, "max_epochs": 100, "patience": 10, "batch_size": 4,
    "energy_weight": 10.0, "forces_weight": 100.0, "stress_weight": 100.0, "loss": "huber",
    "ema_decay": None, "weight_decay": None,
}


def equitrain_args(script: str, **values) -> Namespace:
    """Equitrain's own namespace for ``script`` (train / preprocess / export), all defaults, then ``values``."""
    args = get_args_parser(script).parse_args([])
    unknown = sorted(set(values) - set(vars(args)))
    if unknown:
        raise ValueError(f"equitrain {script} has no option(s) {unknown}")
    for key, value in values.items():
        setattr(args, key, value)
    return args


def prepare_hdf5(splits: dict[str, str | Path], out_dir: str | Path, *, energy_key: str = ENERGY_KEY,
                 forces_key: str = FORCES_KEY, stress_key: str = STRESS_KEY) -> dict[str, Path]:
    """Labelled extxyz splits (``train``, ``valid``, optional ``test``) -> Equitrain HDF5 files, by
    ``equitrain.preprocess``.  Equitrain reads only names ending in ``.xyz``: the files are linked first."""
    out_dir = Path(out_dir)
    links = out_dir / "xyz"
    links.mkdir(parents=True, exist_ok=True)
    files = {}
    for split, path in splits.items():
        if split not in ("train", "valid", "test"):
            raise ValueError(f"unknown split {split!r}")
        files[f"{split}_file"] = str(links / f"{split}.xyz")
        os.symlink(Path(path).resolve(), files[f"{split}_file"])
    args = equitrain_args("preprocess", **files, output_dir=str(out_dir), energy_key=energy_key,
                          forces_key=forces_key, stress_key=stress_key)
    # preprocess sets the global default dtype and adds a stream handler to its logger on every call
    with default_dtype(torch.get_default_dtype()), _quiet_logger("EqLog"):
        preprocess(args)
    return {split: out_dir / f"{split}.h5" for split in splits}


def wrap(model: torch.nn.Module, wrapper: str, *, rank_fraction: float = DEFAULTS["rank_fraction"],
         energy_weight: float = 1.0, forces_weight: float = 1.0, stress_weight: float = 1.0):
    """``model`` (frozen) inside Equitrain's ``MaceWrapper`` and its LoRA or delta fine-tuning wrapper."""
    weights = Namespace(energy_weight=energy_weight, forces_weight=forces_weight, stress_weight=stress_weight)
    base = MaceWrapper(weights, model)
    if wrapper == "lora":
        return LoRAFineTuneWrapper(base, rank_fraction=rank_fraction)
    if wrapper == "delta":
        return DeltaFineTuneWrapper(base)
    raise ValueError(f"wrapper must be one of {WRAPPERS}, got {wrapper!r}")


def adapted_tensors(foundation_model: torch.nn.Module | str | Path, engine: str = "equitrain",
                    rank_fraction: float = DEFAULTS["rank_fraction"]) -> dict[str, int]:
    """``{parameter name: LoRA rank}`` that ``engine`` (Equitrain's package, or peft as in
    :mod:`phononft.peft_lora`) adapts in a copy of the foundation; names as in the foundation."""
    model = load_model(foundation_model) if isinstance(foundation_model, (str, Path)) else foundation_model
    model = copy.deepcopy(model)
    if engine == "equitrain":
        specs = wrap(model, "lora", rank_fraction=rank_fraction).lora_specs
        return {name.removeprefix("model."): spec.rank for name, spec in specs.items()}
    if engine == "peft":
        from . import peft_lora  # heavy (peft, ~4 s): only this engine choice needs it

        return {t.name: t.rank for t in peft_lora.wrap_lora(model, rank_fraction=rank_fraction).lora_targets}
    raise ValueError(f"engine must be one of {ENGINES}, got {engine!r}")


def train_with_equitrain(foundation: str | Path, train_file: str | Path, valid_file: str | Path,
                         out_model: str | Path, *, wrapper: str = "lora",
                         rank_fraction: float = DEFAULTS["rank_fraction"], lr: float = DEFAULTS["lr"],
                         max_epochs: int = DEFAULTS["max_epochs"], patience: int | None = DEFAULTS["patience"],
                         batch_size: int = DEFAULTS["batch_size"],
                         energy_weight: float = DEFAULTS["energy_weight"],
                         forces_weight: float = DEFAULTS["forces_weight"],
                         stress_weight: float = DEFAULTS["stress_weight"], loss: str = DEFAULTS["loss"],
                         ema_decay: float | None = DEFAULTS["ema_decay"],
                         weight_decay: float | None = DEFAULTS["weight_decay"], seed: int = 0,
                         device: str = "auto", dtype: str = "float64", work_dir: str | Path | None = None,
                         log: Callable[[str], None] = print) -> dict:
    """Fine-tune ``foundation`` with Equitrain's ``wrapper`` (``lora`` or ``delta``) and trainer; write the
    merged plain MACE model (the foundation's class, weights of the best validation epoch) atomically to
    ``out_model``.  ``patience``: epochs without a lower validation loss before stopping (None: never).
    ``work_dir`` keeps Equitrain's HDF5 data, checkpoints and ``trainer.log`` (default: a temporary
    folder).  Returns a JSON-serialisable record (per-epoch losses and force MAE in eV/Å, timing, memory,
    parameter counts, adapted tensors).  Raises :class:`NonFiniteLossError` (nothing written) on NaN/inf.
    """
    if wrapper not in WRAPPERS:
        raise ValueError(f"wrapper must be one of {WRAPPERS}, got {wrapper!r}")
    torch_dtype = {"float64": torch.float64, "float32": torch.float32}[dtype]
    dev = torch.device(resolve_device(device))
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats(dev)
    out_model = Path(out_model)
    out_model.parent.mkdir(parents=True, exist_ok=True)
    t_start = time.perf_counter()
    with contextlib.ExitStack() as stack:
        if work_dir is None:
            work_dir = stack.enter_context(tempfile.TemporaryDirectory(prefix=f".{out_model.name}.equitrain.",
                                                                       dir=out_model.parent))
        work = Path(work_dir)
        for sub in ("data", "run"):  # a rerun: stale HDF5 files would be reused, old checkpoints pruned against
            shutil.rmtree(work / sub, ignore_errors=True)
        stack.enter_context(default_dtype(torch_dtype))
        data = prepare_hdf5({"train": train_file, "valid": valid_file}, work / "data")
        foundation_model = load_model(foundation).to(dtype=torch_dtype)
        heads = list(getattr(foundation_model, "heads", None) or ["Default"])
        if len(heads) != 1:
            raise NotImplementedError(f"Equitrain's MaceWrapper has no head choice; foundation heads {heads}")
        args = equitrain_args(
            "train", train_file=str(data["train"]), valid_file=str(data["valid"]),
            output_dir=str(work / "run"), model_wrapper="mace", epochs=max_epochs, batch_size=batch_size,
            lr=lr, energy_weight=energy_weight, forces_weight=forces_weight, stress_weight=stress_weight,
            loss_type=loss, ema=ema_decay is not None, weight_decay=weight_decay, seed=seed, dtype=dtype,
            num_workers=0, keep_best_checkpoints=1, verbose=1,
            **({"ema_decay": ema_decay} if ema_decay is not None else {}))
        set_seeds(seed)
        model = wrap(copy.deepcopy(foundation_model), wrapper, rank_fraction=rank_fraction,
                     energy_weight=energy_weight, forces_weight=forces_weight, stress_weight=stress_weight)
        n_trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
        n_total = sum(p.numel() for p in model.parameters())
        args.model = model
        fit = run_trainer(args, patience=patience, cpu=dev.type == "cpu", log=log, tag=f"equitrain-{wrapper}")
        export_best(foundation_model, model, fit, wrapper, out_model)
    wall = time.perf_counter() - t_start
    peak_mb, peak_kind = peak_memory_mb(dev)
    history = fit["history"]
    record = {
        "engine": "equitrain", "equitrain_version": _version(), "wrapper": wrapper, "seed": seed,
        "device": str(dev), "dtype": dtype, "epochs_run": len(history), "best_epoch": fit["best_epoch"],
        "best_valid_loss": fit["best_valid_loss"], "initial_valid": fit["initial_valid"], "history": history,
        "wall_time_s": wall,
        "seconds_per_epoch": sum(r["seconds"] for r in history) / len(history) if history else None,
        "peak_memory_mb": peak_mb, "peak_memory_kind": peak_kind,
        "trainable_parameters": n_trainable, "total_parameters": n_total,
        "foundation_parameters": sum(p.numel() for p in foundation_model.parameters()),
        "optimizer_steps": fit["steps_per_epoch"] * len(history), "lr": lr,
        "n_train": fit["n_train"], "n_valid": fit["n_valid"],
        "hyper": {"rank_fraction": rank_fraction, "lr": lr, "max_epochs": max_epochs, "patience": patience,
                  "batch_size": batch_size, "energy_weight": energy_weight, "forces_weight": forces_weight,
                  "stress_weight": stress_weight, "loss": loss, "huber_delta": args.huber_delta,
                  "ema_decay": ema_decay, "weight_decay": weight_decay, "optimizer": args.opt,
                  "scheduler": args.scheduler, "scheduler_monitor": args.scheduler_monitor,
                  "gradient_clipping": args.gradient_clipping},
        "out_model": str(out_model),
    }
    if wrapper == "lora":
        record["lora"] = {
            "rank_fraction": rank_fraction, "alpha": model.alpha, "min_rank": model.min_rank,
            "targets": {name.removeprefix("model."): {"shape": list(s.shape), "rank": s.rank, "scale": s.scale}
                        for name, s in model.lora_specs.items()}}
    else:
        record["delta"] = {"tensors": sum(1 for _ in model.named_delta_parameters()),
                           "weight_decay": weight_decay}
    return record


def run_trainer(args: Namespace, *, patience: int | None, cpu: bool, log: Callable[[str], None],
                tag: str = "equitrain") -> dict:
    """Equitrain's torch training (``equitrain.backends.torch_backend``) on ``args`` (``args.model`` a
    wrapped model), epoch by epoch, stopping after ``patience`` epochs without improvement.  The best
    epoch's trainable tensors stay in memory (``best_state``) and in Equitrain's checkpoint folder."""
    tb.validate_training_args(args, "torch")
    for part in ("energy", "forces", "stress"):  # as torch_backend.train
        if getattr(args, f"loss_type_{part}") is None:
            setattr(args, f"loss_type_{part}", args.loss_type.lower())
    tb.set_seeds(args.seed)
    tb.set_dtype(args.dtype)
    args.loss_monitor = tb.get_loss_monitor(args)
    accelerator = Accelerator(cpu=cpu, step_scheduler_with_optimizer=False)
    logger = FileLogger(enable_logging=True, log_to_file=True, output_dir=args.output_dir,
                        logger_name=f"phononft.{tag}", verbosity=args.verbose, stream=False)
    try:
        model = tb.get_model(args, logger=logger)
        train_loader, valid_loader, _ = tb.get_dataloaders(args, model.atomic_numbers, model.r_max, accelerator)
        optimizer = tb.create_optimizer(args, model)
        scheduler = tb.create_scheduler(args, optimizer)
        model, optimizer, scheduler = accelerator.prepare(model, optimizer, scheduler)
        ema = tb.ExponentialMovingAverage(model.parameters(), decay=args.ema_decay) if args.ema else None
        scheduler = tb.SchedulerWrapper(args, scheduler)
        tb.model_freeze_params(args, model, logger=logger)
        tb.update_weight_decay(args, logger, optimizer)
        best = tb.BestMetric(args)
        trainable = accelerator.unwrap_model(model)

        def validate():
            metrics, _ = tb.evaluate_main(args, model=model, accelerator=accelerator, dataloader=valid_loader,
                                          max_steps=args.valid_max_steps)
            return metrics

        initial = validate()
        _check_finite(initial, len(valid_loader.dataset), "validation loss of the foundation")
        initial = _summary(initial, args)
        log(f"[{tag}] foundation: valid_loss {initial['loss']:.6g} valid_mae_f {_mev(initial['mae_f'])}")
        history, best_state, checkpoint = [], None, None
        for epoch in range(1, args.epochs + 1):
            t0 = time.perf_counter()
            train, _ = tb.train_one_epoch(args=args, model=model, model_ema=ema, accelerator=accelerator,
                                          dataloader=train_loader, optimizer=optimizer, errors=None,
                                          epoch=epoch, logger=logger)
            t_train = time.perf_counter() - t0
            valid = validate()
            improved = best.update(valid.main, epoch)
            train.log(logger, "train", epoch=epoch, time=t_train, lr=optimizer.param_groups[0]["lr"])
            valid.log(logger, "val", epoch=epoch)
            row = {"epoch": epoch, "train_loss": train.main["total"].avg,
                   **{f"valid_{k}": v for k, v in _summary(valid, args).items()},
                   "lr": optimizer.param_groups[0]["lr"], "train_seconds": t_train}
            _check_finite(train, len(train_loader.dataset), f"training loss (epoch {epoch})")
            _check_finite(valid, len(valid_loader.dataset), f"validation loss (epoch {epoch})")
            if improved:
                checkpoint = tb.save_checkpoint(args, epoch, valid.main, ema, accelerator, logger, model=model)
                best_state = {n: p.detach().clone() for n, p in trainable.named_parameters() if p.requires_grad}
            monitor = {"train": train.main["total"].avg, "val": valid.main["total"].avg}
            scheduler.step(metric=monitor.get(args.scheduler_monitor))
            row["seconds"] = time.perf_counter() - t0
            history.append(row)
            log(f"[{tag}] epoch {epoch:4d} train_loss {row['train_loss']:.6g} valid_loss {row['valid_loss']:.6g} "
                f"valid_mae_f {_mev(row['valid_mae_f'])} {row['seconds']:.2f} s")
            if patience is not None and epoch - best["epoch"] >= patience:
                log(f"[{tag}] early stop: no improvement for {patience} epochs")
                break
    finally:
        accelerator.end_training()
        logger._cleanup()
        AcceleratorState._reset_state(reset_partial_state=True)  # the next run may use another device
    return {"history": history, "best_epoch": best["epoch"], "best_valid_loss": best["total"],
            "best_state": best_state, "checkpoint": checkpoint, "initial_valid": initial,
            "steps_per_epoch": len(train_loader), "n_train": len(train_loader.dataset),
            "n_valid": len(valid_loader.dataset)}


def export_best(foundation_model: torch.nn.Module, trained, fit: dict, wrapper: str, out_model: Path) -> None:
    """``equitrain-export`` of the best checkpoint into ``out_model`` (atomically), checked against the
    trained wrapper's own ``export`` of the best state kept in memory."""
    out_model = Path(out_model)
    tmp_dir = Path(tempfile.mkdtemp(prefix=f".{out_model.name}.", suffix=".tmp", dir=out_model.parent))
    try:
        exported = tmp_dir / out_model.name  # same base name: the archive inside is named as usual
        args = equitrain_args("export", model=copy.deepcopy(foundation_model).cpu(), model_wrapper="mace",
                              load_checkpoint=str(fit["checkpoint"]), fine_tune_wrapper=wrapper,
                              model_export=str(exported), output_dir=str(Path(fit["checkpoint"]).parent))
        with _quiet_logger("EqLog"):  # equitrain-export adds a stream handler on every call
            export(args)
        with torch.no_grad():
            params = dict(trained.named_parameters())
            for name, value in fit["best_state"].items():
                params[name].copy_(value)
        trained.cpu().export(str(tmp_dir / "in_memory.model"))
        final, expected = (load_model(tmp_dir / f) for f in (out_model.name, "in_memory.model"))
        expected = dict(expected.named_parameters())
        if type(final) is not type(foundation_model):
            raise RuntimeError(f"exported {type(final)}, not the foundation's {type(foundation_model)}")
        for name, p in final.named_parameters():
            if not torch.isfinite(p).all():
                raise NonFiniteLossError(f"non-finite {name} in the exported model; nothing saved")
            if not torch.equal(p, expected[name]):
                raise RuntimeError(f"equitrain-export gave {name} unlike the best weights (checkpoint not loaded?)")
        os.replace(exported, out_model)
    finally:
        for f in tmp_dir.iterdir():
            f.unlink()
        tmp_dir.rmdir()


@contextlib.contextmanager
def _quiet_logger(name: str):
    handlers = list(logging.getLogger(name).handlers)
    try:
        yield
    finally:
        logger = logging.getLogger(name)
        for handler in [h for h in logger.handlers if h not in handlers]:
            handler.close()
            logger.removeHandler(handler)


def _check_finite(metrics, n_graphs: int, what: str) -> None:
    """Equitrain's meters skip non-finite batches silently: every structure must have been counted."""
    meter = metrics.main["total"]
    if meter.count != n_graphs or not math.isfinite(meter.avg):
        raise NonFiniteLossError(f"{what}: {n_graphs - meter.count:g} of {n_graphs} structures gave a "
                                 "non-finite loss; nothing saved")


def _summary(metrics, args) -> dict:
    """Validation loss and MAEs (forces eV/Å per component, energy eV/atom, stress eV/Å^3) of Equitrain's
    ``LossMetrics``."""
    mae = metrics.main if args.loss_type.lower() == "mae" else metrics["mae"]

    def avg(meter):
        return None if meter is None else float(meter.avg)

    return {"loss": float(metrics.main["total"].avg), "mae_f": avg(mae["forces"]),
            "mae_e_per_atom": avg(mae["energy"]), "mae_stress": avg(mae["stress"])}


def _mev(value: float | None) -> str:
    return "n/a" if value is None else f"{1000 * value:.2f} meV/A"


def _version() -> str:
    return version("equitrain")


class EquitrainRunner:
    """``fit(lr, out_model)``: one Equitrain training of a job (study recipe): the shared training options
    (phononft.strategies.base.TRAINING) mapped to :func:`train_with_equitrain`'s (Equitrain's own Huber loss
    and plateau rule), plus the strategy's ``wrapper`` and its keywords."""

    def __init__(self, job, opts: dict, *, wrapper: str, **keywords):
        self.job, self.wrapper, self.keywords = job, wrapper, keywords
        self.shared = {"max_epochs": opts["max_num_epochs"], "patience": opts["patience"],
                       "batch_size": min(int(opts["batch_size"]), job.budget), "ema_decay": opts["ema_decay"],
                       **{k: opts[k] for k in ("energy_weight", "forces_weight", "stress_weight")}}

    def fit(self, lr: float, out_model: Path) -> dict:
        job = self.job
        record = train_with_equitrain(job.foundation, job.train_file, job.valid_file, out_model, wrapper=self.wrapper,
                                      lr=lr, seed=job.seed, device=job.device, dtype=job.dtype,
                                      work_dir=job.workdir / "equitrain", log=job.log, **self.shared, **self.keywords)
        out = {**record, "tool": "equitrain", "learning_rate": lr}
        if self.wrapper == "delta":  # the deltas stand for the weights (merged on export), not beside them
            out["total_parameters"] = record["foundation_parameters"]
        return out
