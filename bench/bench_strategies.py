#!/usr/bin/env python
"""Benchmark every fine-tuning strategy under both recipes on the same data for a fixed number of epochs.

Prints, per recipe, strategy and device: the tool that trained it, seconds per epoch, optimiser steps (per
epoch), peak memory and the trainable fraction of the parameters.  CPU always; CUDA too when a GPU is visible.

    .venv/bin/python bench/bench_strategies.py --foundation results/foundation/model.model --epochs 5

Without ``--foundation`` a small foundation (the demo's architecture) is pretrained first on softened EMT.

Options are the demo config's (config/config.yaml, phononft.config.strategy_params), epochs and patience
overridden.  ``study``: each strategy through its own tool (mace_run_train; the Equitrain package for
equitrain and delta; in process for l2sp), plus ``equitrain_peft`` (the same LoRA through peft in process);
``matched``: all through the in-process trainer with one recipe, so the rows differ only in what is trained.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")
REPO = Path(__file__).resolve().parents[1]
#: extra study-recipe rows: name -> (strategy, option overrides)
VARIANTS = {"equitrain_peft": ("equitrain", {"engine": "peft"})}


def make_data(d: Path, n_train: int, cell: float) -> dict:
    from ase.build import bulk

    from phononft.io import write_extxyz
    from phononft.label import label_structures, make_calculator
    from phononft.rattle import make_split

    calc = make_calculator()
    files = {}
    for split, n in (("train", n_train), ("valid", 4)):
        images = make_split(bulk("Cu", "fcc", a=3.61, cubic=True), split, n, seed=0, supercell_min_length=cell)
        files[split] = d / f"{split}.extxyz"
        write_extxyz(files[split], label_structures(images, calc, log=lambda s: None))
    return files


def make_foundation(d: Path, epochs: int) -> tuple[Path, Path]:
    import yaml

    from phononft.foundation import pretrain_from_config

    cfg = yaml.safe_load((REPO / "config" / "config.yaml").read_text())["foundation"]
    cfg["pretrain"]["mace"]["max_num_epochs"] = epochs
    cfg["dtype"] = "float64"
    pretrain_from_config(cfg, d / "foundation.model", d / "pt_train.extxyz", d / "pt_valid.extxyz", d / "pt",
                         device="cpu", log=lambda s: None)
    return d / "foundation.model", d / "pt_train.extxyz"


def main(argv=None) -> int:
    from phononft import strategies

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--foundation", type=Path, help="foundation model file (default: pretrain a small one)")
    p.add_argument("--replay", type=Path, help="its pretraining data, for multihead")
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--n-train", type=int, default=10)
    p.add_argument("--cell", type=float, default=5.5, help="minimum supercell edge of the training cells (Å)")
    p.add_argument("--recipes", nargs="+", default=["study", "matched"], choices=["study", "matched"])
    p.add_argument("--strategies", nargs="+", default=[*strategies.trained(), *VARIANTS])
    p.add_argument("--devices", nargs="+", default=None, help="default: cpu, and cuda when available")
    p.add_argument("--dtype", default="float64")
    p.add_argument("--json", type=Path, help="also write the table as JSON")
    args = p.parse_args(argv)

    import torch

    from phononft.config import load_config, strategy_params
    from phononft.finetune import finetune

    devices = args.devices or (["cpu", "cuda"] if torch.cuda.is_available() else ["cpu"])
    config = load_config(REPO / "config" / "config.yaml")  # passes the matched check: only lr differs per strategy
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        data = make_data(tmp, args.n_train, args.cell)
        foundation, replay = (args.foundation, args.replay) if args.foundation else make_foundation(tmp, 10)
        for device in devices:
            for recipe in args.recipes:
                for name in args.strategies:
                    if name in VARIANTS and recipe == "matched":
                        continue  # matched: one trainer, no engine choice
                    strategy, extra = VARIANTS.get(name, (name, {}))
                    params = {**strategy_params(config, strategy), **extra, "max_num_epochs": args.epochs,
                              "patience": 10**6}
                    run = f"{recipe}-{name}-{device}"
                    t0 = time.perf_counter()
                    rec = finetune(strategy, foundation, data["train"], data["valid"], args.n_train, 0,
                                   tmp / f"{run}.model", tmp / f"{run}.json", tmp / f"work-{run}", params,
                                   recipe=recipe, device=device, dtype=args.dtype, replay_file=replay,
                                   log=lambda s: None)
                    rows.append(_row(recipe, name, device, rec, time.perf_counter() - t0))
                    _print_row(rows[-1])
    print("\n| recipe | strategy | tool | device | s/epoch | steps (per epoch) | total s | peak MB | trainable "
          "parameters | trainable fraction |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for r in rows:
        print(f"| {r['recipe']} | {r['strategy']} | {r['tool']} | {r['device']} | {r['seconds_per_epoch']:.2f} | "
              f"{r['optimizer_steps']} ({r['steps_per_epoch']:.0f}) | {r['total_seconds']:.1f} | "
              f"{r['peak_memory_mb'] or float('nan'):.0f} | {r['trainable_parameters']} | "
              f"{r['trainable_fraction']:.3f} |")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))
    return 0


def _row(recipe: str, name: str, device: str, rec: dict, total_seconds: float) -> dict:
    epochs = rec.get("epochs_run") or 1
    return {
        "recipe": recipe, "strategy": name, "tool": rec.get("tool"), "device": device, "epochs": rec.get("epochs_run"),
        "seconds_per_epoch": rec.get("seconds_per_epoch"), "optimizer_steps": rec.get("optimizer_steps"),
        "steps_per_epoch": rec.get("optimizer_steps", 0) / epochs, "total_seconds": total_seconds,
        "peak_memory_mb": rec.get("peak_memory_mb"),
        "trainable_fraction": (rec["trainable_parameters"] / rec["total_parameters"]
                               if rec.get("total_parameters") else None),
        "trainable_parameters": rec.get("trainable_parameters"),
    }


def _print_row(r: dict) -> None:
    print(f"{r['recipe']:8s} {r['strategy']:15s} {r['tool']:15s} {r['device']:5s} {r['seconds_per_epoch']:8.2f} s/epoch "
          f"{r['optimizer_steps']:6d} steps {r['total_seconds']:8.1f} s total "
          f"{r['peak_memory_mb'] or float('nan'):8.0f} MB {r['trainable_parameters']} trainable "
          f"({r['trainable_fraction']:.3f})", flush=True)


if __name__ == "__main__":
    sys.exit(main())
