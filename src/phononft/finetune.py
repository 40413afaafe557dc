"""Finetune stage: one model per material x strategy x budget x seed.

Strategies (``STRATEGIES``):

==============  ===========================================================================================
``pretrained``  zero-shot: the foundation model itself, unchanged
``scratch``     a fresh MACE (the foundation's architecture unless configured) trained on the N structures
``naive``       full fine-tuning of every foundation weight (``mace_run_train --foundation_model``)
``frozen``      frozen transfer learning: lower blocks frozen (``--freeze``, threshold semantics of MACE:
                1 embedding, 5 + interactions, 6 + products)
``multihead``   MACE multihead fine-tuning with replay of the foundation's pretraining data
                (``--multiheads_finetuning --pt_train_file``); the fine-tuned head is extracted afterwards
``lora``        mace-torch's equivariant LoRA (``--lora``), adapters merged into the saved model
``equitrain``   Equitrain-style LoRA through peft on the radial-MLP matrices, merged (in-process trainer)
``l2sp``        full fine-tuning with an L2-SP penalty toward the pretrained weights (in-process trainer)
==============  ===========================================================================================

Every output is a plain single-head MACE model that ``mace.calculators.MACECalculator`` loads, plus a
JSON training log (epochs, losses, wall time, seconds per epoch, trainable and total parameters, device,
peak memory).
"""

from __future__ import annotations

import copy
import shutil
import time
from pathlib import Path
from typing import Callable

from .io import link_or_copy, read_extxyz, write_extxyz, write_json
from .logs import cpu_seconds
from .mace_train import base_options, resolve_device, run_mace_train, summarize_epochs

STRATEGIES = ("pretrained", "scratch", "naive", "frozen", "multihead", "lora", "equitrain", "l2sp")
MACE_CLI_STRATEGIES = ("scratch", "naive", "frozen", "multihead", "lora")
IN_PROCESS_STRATEGIES = ("equitrain", "l2sp")

#: Keys of a strategy block that are ours, not mace_run_train options.
OWN_KEYS = {"mace", "threads"}


def write_budget_subset(train_file: Path, budget: int, out_file: Path) -> int:
    """The first ``budget`` structures of the training series (nested budgets)."""
    images = read_extxyz(train_file)
    if budget > len(images):
        raise ValueError(f"budget {budget} exceeds the {len(images)} labelled training structures in {train_file}")
    write_extxyz(out_file, images[:budget])
    return budget


def load_model(path: str | Path):
    import torch

    return torch.load(str(path), map_location="cpu", weights_only=False)


def parameter_counts(strategy: str, foundation: str | Path, params: dict) -> dict:
    """Trainable and total parameters, counted on the foundation the way each strategy trains it.

    mace_run_train's own log counts every parameter as trainable for LoRA; we count the adapters.
    """
    model = load_model(foundation)
    total = sum(p.numel() for p in model.parameters())
    if strategy in ("naive", "multihead", "scratch"):
        trainable = total
    elif strategy == "frozen":
        level = int(params.get("freeze", 5))
        frozen_blocks = []
        if level >= 7:
            frozen_blocks.append(model.readouts)
        if level >= 6:
            frozen_blocks.append(model.products)
        if level >= 5:
            frozen_blocks.append(model.interactions)
        if level >= 1:
            frozen_blocks.append(model.node_embedding)
        frozen = sum(p.numel() for b in frozen_blocks for p in b.parameters())
        trainable = total - frozen
    elif strategy == "lora":
        from mace.modules.lora import inject_LoRAs

        m = copy.deepcopy(model)
        inject_LoRAs(m, rank=int(params.get("lora_rank", 4)), alpha=float(params.get("lora_alpha", 1.0)))
        trainable = sum(p.numel() for n, p in m.named_parameters() if "lora" in n.lower())
    elif strategy == "pretrained":
        trainable = 0
    else:
        raise ValueError(f"no parameter count rule for strategy {strategy!r}")
    return {"trainable_parameters": int(trainable), "total_parameters": int(total)}


def check_foundation_elements(foundation: Path, train_file: Path) -> None:
    """Fail early, naming the elements, if the training structures hold elements the foundation lacks."""
    from ase.data import chemical_symbols

    model = load_model(foundation)
    known = {int(z) for z in model.atomic_numbers}
    present = {int(z) for atoms in read_extxyz(train_file) for z in atoms.numbers}
    missing = sorted(present - known)
    if missing:
        raise ValueError(
            f"{train_file}: element(s) {', '.join(chemical_symbols[z] for z in missing)} unknown to the foundation "
            f"model {foundation} (it knows {', '.join(chemical_symbols[z] for z in sorted(known))})")


def extract_head(model_file: Path, head: str, out_file: Path) -> None:
    """Keep only ``head`` of a multihead MACE model (mace's ``remove_pt_head``)."""
    import torch
    from mace.tools.scripts_utils import remove_pt_head

    model = load_model(model_file)
    torch.set_default_dtype(next(model.parameters()).dtype)
    single = remove_pt_head(model, head)
    tmp = out_file.with_name(f".{out_file.name}.tmp")
    torch.save(single, tmp)
    tmp.replace(out_file)


def mace_options(strategy: str, foundation: Path, train_file: Path, valid_file: Path, workdir: Path,
                 params: dict, *, seed: int, device: str, dtype: str, replay_file: Path | None) -> dict:
    """mace_run_train options of one strategy (the config block's extra keys pass straight through)."""
    opts = base_options("model", workdir, train_file, valid_file, seed=seed, device=device, dtype=dtype)
    opts.update({"compute_stress": True, "model": "ScaleShiftMACE"})
    if strategy == "scratch":
        arch = params.get("mace") or {}
        if not arch:  # the foundation's architecture
            model = load_model(foundation)
            arch = architecture_of(model)
        opts.update(arch)
        opts["E0s"] = params.get("E0s", "average")
    else:
        opts.update({"foundation_model": str(Path(foundation).resolve()), "E0s": "foundation",
                     "multiheads_finetuning": strategy == "multihead",
                     # keep every element of the foundation: frozen blocks stay bit-identical and the
                     # fine-tuned model still knows the foundation's chemistry
                     "foundation_model_elements": True})
        if strategy == "multihead":
            if replay_file is None:
                raise ValueError("strategy multihead needs replay data: foundation.replay in the config")
            opts["pt_train_file"] = str(Path(replay_file).resolve())
    opts.update({k: v for k, v in params.items() if k not in OWN_KEYS and k != "E0s"})
    return opts


def architecture_of(model) -> dict:
    """mace_run_train architecture options reproducing ``model``'s hyperparameters."""
    from mace.tools.scripts_utils import extract_config_mace_model

    cfg = extract_config_mace_model(model)
    hidden = str(cfg["hidden_irreps"])
    channels = int(hidden.split("x")[0])
    max_l = max(int(term.split("x")[1][0]) for term in hidden.split("+"))
    return {"r_max": float(cfg["r_max"]), "num_channels": channels, "max_L": max_l,
            "num_interactions": int(cfg["num_interactions"]), "correlation": int(cfg["correlation"]
                                                                                  if not isinstance(cfg["correlation"], list)
                                                                                  else cfg["correlation"][0]),
            "num_radial_basis": int(cfg["num_bessel"]), "num_cutoff_basis": int(cfg["num_polynomial_cutoff"]),
            "max_ell": int(cfg["max_ell"])}


def finetune(strategy: str, foundation: Path, train_file: Path, valid_file: Path, budget: int, seed: int,
             out_model: Path, out_log: Path, workdir: Path, params: dict, *, device: str = "auto",
             dtype: str = "float64", replay_file: Path | None = None,
             log: Callable[[str], None] = print) -> dict:
    """Train one model; write ``out_model`` and ``out_log`` (JSON) atomically; return the log dict."""
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown strategy {strategy!r}; choose from {', '.join(STRATEGIES)}")
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    t0, c0 = time.perf_counter(), cpu_seconds()
    if strategy != "scratch":
        check_foundation_elements(Path(foundation), Path(train_file))
    record: dict = {"strategy": strategy, "budget": budget, "seed": seed, "dtype": dtype,
                    "device": resolve_device(device), "params": params}
    if strategy == "pretrained":
        link_or_copy(foundation, out_model)  # the foundation itself (a MACE-MP model per material and seed)
        record.update(parameter_counts(strategy, foundation, params), epochs_run=0, wall_time_s=0.0,
                      total_wall_time_s=time.perf_counter() - t0, total_cpu_seconds=cpu_seconds() - c0,
                      seconds_per_epoch=None, peak_memory_mb=None)
        write_json(out_log, record)
        return record

    subset = workdir / f"train_n{budget}.extxyz"
    write_budget_subset(train_file, budget, subset)
    if strategy in IN_PROCESS_STRATEGIES:
        from .torch_train import train_in_process

        hyper = {k: v for k, v in params.items() if k not in OWN_KEYS}
        result = train_in_process(strategy, foundation, subset, valid_file, out_model, seed=seed,
                                  device=device, dtype=dtype, hyper=hyper, log=log)
        record.update(result)
        record["strategy"] = strategy
    else:
        opts = mace_options(strategy, foundation, subset, valid_file, workdir / "mace", params, seed=seed,
                            device=device, dtype=dtype, replay_file=replay_file)
        # mace drops incomplete batches: a batch larger than the budget would leave nothing to train on
        opts["batch_size"] = min(int(opts.get("batch_size", 10)), budget)
        summary = run_mace_train(opts, workdir / "mace", log=log, threads=params.get("threads"))
        trained = Path(summary["model"])
        if strategy == "multihead":
            extract_head(trained, "Default", out_model)
        else:
            tmp = out_model.with_name(f".{out_model.name}.tmp")
            shutil.copyfile(trained, tmp)
            tmp.replace(out_model)
        curves = summarize_epochs(summary["epochs"])
        n_epochs = len(curves["train_loss"])
        counts = (parameter_counts(strategy, foundation, params) if strategy != "scratch"
                  else {"trainable_parameters": None, "total_parameters": None})
        if strategy == "scratch":
            total = sum(p.numel() for p in load_model(out_model).parameters())
            counts = {"trainable_parameters": total, "total_parameters": total}
        record.update(counts)
        record.update({"epochs_run": n_epochs, "wall_time_s": summary["wall_time_s"],
                       "seconds_per_epoch": summary["wall_time_s"] / max(n_epochs, 1),
                       "peak_memory_mb": summary["peak_memory_mb"],
                       "peak_memory_kind": "max RSS of the mace_run_train process",
                       "cpu_seconds": summary["cpu_seconds"],
                       "valid_curve": curves["valid_curve"], "train_loss": curves["train_loss"],
                       "mace_options": opts})
    record["total_wall_time_s"] = time.perf_counter() - t0
    record["total_cpu_seconds"] = cpu_seconds() - c0  # this process's threads + mace_run_train
    write_json(out_log, record)
    return record
