#!/usr/bin/env python
"""Benchmark every fine-tuning strategy on the same data for a fixed number of epochs.

Prints, per strategy and device: seconds per epoch, peak memory and the trainable fraction of the
parameters.  CPU always; CUDA too when a GPU is visible.

    .venv/bin/python bench/bench_strategies.py --foundation results/foundation/model.model --epochs 5

Without ``--foundation`` a small foundation (the demo's architecture) is pretrained first on softened EMT.

Besides the workflow's strategies, two runs of the Equitrain package itself
(:func:`phononft.equitrain_engine.train_with_equitrain`) on the same data: ``equitrain_pkg`` (its LoRA
wrapper, with the ``equitrain`` strategy's options: compare with ``equitrain``, the same LoRA through
peft) and ``equitrain_pkg_delta`` (its delta wrapper, with the ``l2sp`` strategy's lr and lambda as
weight decay).
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

    cfg = yaml.safe_load((Path(__file__).resolve().parents[1] / "config" / "config.yaml").read_text())["foundation"]
    cfg["pretrain"]["mace"]["max_num_epochs"] = epochs
    cfg["dtype"] = "float64"
    pretrain_from_config(cfg, d / "foundation.model", d / "pt_train.extxyz", d / "pt_valid.extxyz", d / "pt",
                         device="cpu", log=lambda s: None)
    return d / "foundation.model", d / "pt_train.extxyz"


#: Equitrain-package runs: name -> (its wrapper, the workflow strategy whose options it takes)
PACKAGE_RUNS = {"equitrain_pkg": ("lora", "equitrain"), "equitrain_pkg_delta": ("delta", "l2sp")}


def run_package(name: str, config: dict, data: dict, foundation: Path, out: Path, epochs: int, device: str,
                dtype: str) -> dict:
    """One training with the Equitrain package (no early stopping), options taken from its strategy."""
    from phononft.config import strategy_params
    from phononft.equitrain_engine import train_with_equitrain

    wrapper, strategy = PACKAGE_RUNS[name]
    params = strategy_params(config, strategy)
    options = {k: params[k] for k in ("lr", "batch_size", "energy_weight", "forces_weight", "stress_weight",
                                      "rank_fraction") if k in params}
    if "l2sp_lambda" in params:
        options["weight_decay"] = params["l2sp_lambda"]
    return train_with_equitrain(foundation, data["train"], data["valid"], out, wrapper=wrapper,
                                max_epochs=epochs, patience=None, device=device, dtype=dtype,
                                log=lambda s: None, **options)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--foundation", type=Path, help="foundation model file (default: pretrain a small one)")
    p.add_argument("--replay", type=Path, help="its pretraining data, for multihead")
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--n-train", type=int, default=10)
    p.add_argument("--cell", type=float, default=5.5, help="minimum supercell edge of the training cells (Å)")
    p.add_argument("--strategies", nargs="+",
                   default=["scratch", "naive", "frozen", "multihead", "lora", "equitrain", "l2sp",
                            *PACKAGE_RUNS])
    p.add_argument("--devices", nargs="+", default=None, help="default: cpu, and cuda when available")
    p.add_argument("--dtype", default="float64")
    p.add_argument("--json", type=Path, help="also write the table as JSON")
    args = p.parse_args(argv)

    import torch
    import yaml

    from phononft.config import strategy_params
    from phononft.finetune import finetune

    devices = args.devices or (["cpu", "cuda"] if torch.cuda.is_available() else ["cpu"])
    config = yaml.safe_load((Path(__file__).resolve().parents[1] / "config" / "config.yaml").read_text())
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        data = make_data(tmp, args.n_train, args.cell)
        foundation, replay = (args.foundation, args.replay) if args.foundation else make_foundation(tmp, 10)
        for device in devices:
            for strategy in args.strategies:
                if strategy in PACKAGE_RUNS:
                    t0 = time.perf_counter()
                    rec = run_package(strategy, config, data, foundation, tmp / f"{strategy}-{device}.model",
                                      args.epochs, device, args.dtype)
                    rows.append(_row(strategy, device, rec, time.perf_counter() - t0))
                    _print_row(rows[-1])
                    continue
                params = strategy_params(config, strategy)
                if strategy in ("equitrain", "l2sp"):
                    params.update(max_epochs=args.epochs, patience=10**6)
                else:
                    params.update(max_num_epochs=args.epochs, patience=10**6)
                t0 = time.perf_counter()
                rec = finetune(strategy, foundation, data["train"], data["valid"], args.n_train, 0,
                               tmp / f"{strategy}-{device}.model", tmp / f"{strategy}-{device}.json",
                               tmp / f"work-{strategy}-{device}", params, device=device, dtype=args.dtype,
                               replay_file=replay, log=lambda s: None)
                rows.append(_row(strategy, device, rec, time.perf_counter() - t0))
                _print_row(rows[-1])
    print("\n| strategy | device | s/epoch | total s | peak MB | trainable parameters | trainable fraction |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for r in rows:
        print(f"| {r['strategy']} | {r['device']} | {r['seconds_per_epoch']:.2f} | {r['total_seconds']:.1f} | "
              f"{r['peak_memory_mb'] or float('nan'):.0f} | {r['trainable_parameters']} | "
              f"{r['trainable_fraction']:.3f} |")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))
    return 0


def _row(strategy: str, device: str, rec: dict, total_seconds: float) -> dict:
    return {
        "strategy": strategy, "device": device, "epochs": rec.get("epochs_run"),
        "seconds_per_epoch": rec.get("seconds_per_epoch"), "total_seconds": total_seconds,
        "peak_memory_mb": rec.get("peak_memory_mb"),
        "trainable_fraction": (rec["trainable_parameters"] / rec["total_parameters"]
                               if rec.get("total_parameters") else None),
        "trainable_parameters": rec.get("trainable_parameters"),
    }


def _print_row(r: dict) -> None:
    print(f"{r['strategy']:20s} {r['device']:5s} {r['seconds_per_epoch']:8.2f} s/epoch "
          f"{r['total_seconds']:8.1f} s total {r['peak_memory_mb'] or float('nan'):8.0f} MB "
          f"{r['trainable_parameters']} trainable ({r['trainable_fraction']:.3f})", flush=True)


if __name__ == "__main__":
    sys.exit(main())
