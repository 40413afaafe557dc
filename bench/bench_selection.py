#!/usr/bin/env python
"""Which structures to label: random vs FPS vs uncertainty selection, with and without cell strain.

The demo's mock world: fcc and bcc Cu labelled with EMT, a small MACE foundation pretrained on softened EMT
(tests/conftest.py's ``tiny_foundation_config``, or ``--foundation``).  Per material and cell strain, a pool
of ``pool_factor x max(budgets)`` rattled supercells (the demo's rattle settings, :func:`make_pool`) is
ranked three ways (:mod:`phononft.selection`); the first ``N`` of each ranking train a naive fine-tune (the
demo's finetune options), which is scored on

* the held-out test split (the workflow's recipe: isotropic volume strain only) and a cell-strained test
  set (random symmetric strain, ``--cell-strain``), force MAE (meV/Å) and stress MAE (GPa);
* the phonon band RMSE (THz, seekpath path) and the VRH bulk and shear moduli (GPa) against EMT, both at the
  configured (unrelaxed) unit cell, so that the force constants and elastic response are compared at one
  geometry.

    nice -n 10 .venv/bin/python bench/bench_selection.py [--seeds 0 1] [--json out.json]

``uncertainty`` uses ``random`` for its first round (budget ``b_1``): at ``N = b_1`` it is the random model.
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
MATERIALS = {"Cu_fcc": ("fcc", 3.61), "Cu_bcc": ("bcc", 2.87)}


def quiet(_s: str) -> None:
    pass


def make_foundation(d: Path) -> Path:
    sys.path.insert(0, str(REPO / "tests"))
    from conftest import tiny_foundation_config

    from phononft.foundation import pretrain_from_config

    pretrain_from_config(tiny_foundation_config(), d / "foundation.model", d / "pt_train.extxyz",
                         d / "pt_valid.extxyz", d / "pt", device="cpu", log=quiet)
    return d / "foundation.model"


def reference_properties(unit, calc, *, band_points: int = 51) -> dict:
    """Phonons (3x3x3 / 4x4x4 supercells, 10 Å) and elastic moduli of ``calc`` at ``unit``."""
    from phononft import compare
    from phononft.elastic import elastic_properties
    from phononft.phonons import finite_displacement_phonons
    from phononft.structures import supercell_matrix

    phonon, _ = finite_displacement_phonons(unit, calc, supercell_matrix(unit, 10.0), log=quiet)
    q = compare.band_qpoints(phonon, npoints=band_points)
    freqs = compare.frequencies_at(phonon, [p for seg in q for p in seg])
    el = elastic_properties(unit, calc)
    return {"freqs": freqs, "B": el["bulk_modulus_vrh"], "G": el["shear_modulus_vrh"]}


def score(model: Path, tests: dict, unit, ref: dict, properties: bool) -> dict:
    from phononft import compare
    from phononft.evaluate import mace_calculator, split_errors

    calc = mace_calculator(model)
    out = {}
    for name, path in tests.items():
        err = split_errors(calc, path)
        out[f"F_{name}"] = err["force_mae"]
        out[f"S_{name}"] = err["stress_mae"]
    if properties:
        p = reference_properties(unit, calc)
        out["band_rmse"] = compare.band_errors(ref["freqs"], p["freqs"])["rmse"]
        out["dB"] = p["B"] - ref["B"]
        out["dG"] = p["G"] - ref["G"]
    return out


def run_case(material: str, cell_strain: float, args, foundation: Path, d: Path, log) -> list[dict]:
    import numpy as np
    import yaml
    from ase.build import bulk

    from phononft.config import strategy_params
    from phononft.finetune import finetune
    from phononft.io import write_extxyz
    from phononft.label import label_structures, make_calculator
    from phononft.rattle import SPLIT_SEED_OFFSET, make_pool, make_split
    from phononft.selection import rank_fps, rank_random, rank_uncertainty_rounds

    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    rattle = {k: config["rattle"][k] for k in ("supercell_min_length", "rattle_std", "d_min", "n_iter",
                                               "volume_strain", "min_distance")}
    seed = int(config["rattle"]["seed"]) if args.pool_seed is None else args.pool_seed
    params = strategy_params(config, "naive")
    if args.epochs:
        params["max_num_epochs"] = args.epochs
    dtype = config["finetune"]["dtype"]
    lattice, a = MATERIALS[material]
    unit = bulk("Cu", lattice, a=a, cubic=True)
    emt = make_calculator()
    budgets = sorted(args.budgets)
    n_pool = args.pool_factor * budgets[-1]
    d.mkdir(parents=True, exist_ok=True)

    t0 = time.perf_counter()
    pool = label_structures(make_pool(unit, n_pool, seed=seed, cell_strain=cell_strain, **rattle), emt, log=quiet)
    write_extxyz(d / "valid.extxyz", label_structures(make_split(unit, "valid", 4, seed=seed, **rattle), emt,
                                                      log=quiet))
    tests = {"test": d / "test.extxyz", "test_sheared": d / "test_sheared.extxyz"}
    write_extxyz(tests["test"], label_structures(make_split(unit, "test", args.n_test, seed=seed, **rattle), emt,
                                                 log=quiet))
    write_extxyz(tests["test_sheared"], label_structures(
        make_pool(unit, args.n_test, seed=seed + SPLIT_SEED_OFFSET["test"], cell_strain=args.cell_strain, **rattle),
        emt, log=quiet))
    ref = reference_properties(unit, emt) if args.properties else {}

    t1 = time.perf_counter()
    rankings = {"random": rank_random(n_pool), "fps": rank_fps(pool, foundation, seed=0)}
    t_fps = time.perf_counter() - t1
    t1 = time.perf_counter()
    by_index = {int(x.info["pool_index"]): x for x in pool}
    rounds = rank_uncertainty_rounds(pool, budgets, lambda imgs: [by_index[int(x.info["pool_index"])] for x in imgs],
                                     foundation, d / "valid.extxyz", d / "rounds", n_members=3,
                                     epochs=args.committee_epochs, seed=0, dtype=dtype, log=quiet)
    rankings["uncertainty"] = rounds["ranking"]
    t_unc = time.perf_counter() - t1
    dis = rounds["rounds"][1]["disagreement"] if len(rounds["rounds"]) > 1 else None
    log(f"{material} cell_strain={cell_strain}: pool {n_pool} ({len(pool[0])} atoms), fps {t_fps:.0f} s, "
        f"uncertainty rounds {t_unc:.0f} s; committee disagreement on the pool (eV/Å) after round 1: "
        + (f"median {np.median(dis):.4f}, max {dis.max():.4f}" if dis is not None else "n/a"))
    for name, r in rankings.items():
        log(f"  {name:12s} first {budgets[-1]}: {r[:budgets[-1]].tolist()}  |linear strain| mean "
            f"{np.mean([abs(pool[i].info['linear_strain']) for i in r[:budgets[-1]]]):.4f}")

    rows = []
    zero = score(foundation, tests, unit, ref, args.properties)
    rows.append({"material": material, "cell_strain": cell_strain, "selection": "-", "budget": 0, "seed": 0,
                 **zero, "train_s": 0.0})
    cache: dict = {}
    for n in budgets:
        for name, ranking in rankings.items():
            for s in args.seeds:
                key = (tuple(int(i) for i in ranking[:n]), s)
                if key not in cache:  # uncertainty's first round = random's: the same training set
                    train = d / f"train_{name}_n{n}.extxyz"
                    write_extxyz(train, [pool[i] for i in ranking[:n]])
                    out = d / f"{name}_n{n}_s{s}.model"
                    t1 = time.perf_counter()
                    finetune("naive", foundation, train, d / "valid.extxyz", n, s, out, out.with_suffix(".json"),
                             d / f"work_{name}_n{n}_s{s}", params, device="cpu", dtype=dtype, log=quiet)
                    cache[key] = {**score(out, tests, unit, ref, args.properties), "train_s": time.perf_counter() - t1}
                rows.append({"material": material, "cell_strain": cell_strain, "selection": name, "budget": n,
                             "seed": s, **cache[key]})
                log(_fmt(rows[-1]))
    log(f"{material} cell_strain={cell_strain}: {time.perf_counter() - t0:.0f} s")
    return rows


COLUMNS = [("material", "{:8s}"), ("cell_strain", "{:5.2f}"), ("selection", "{:11s}"), ("budget", "{:3d}"),
           ("seed", "{:2d}"), ("F_test", "{:7.2f}"), ("F_test_sheared", "{:7.2f}"), ("S_test", "{:7.4f}"),
           ("S_test_sheared", "{:7.4f}"), ("band_rmse", "{:6.3f}"), ("dB", "{:+6.1f}"), ("dG", "{:+6.1f}"),
           ("train_s", "{:5.0f}")]


def _fmt(row: dict) -> str:
    return "  ".join(fmt.format(row[k]) if k in row else " " * 6 for k, fmt in COLUMNS)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--foundation", type=Path, help="foundation model (default: pretrain the tests' tiny one)")
    p.add_argument("--materials", nargs="+", default=list(MATERIALS), choices=list(MATERIALS))
    p.add_argument("--budgets", nargs="+", type=int, default=[2, 10])
    p.add_argument("--pool-factor", type=int, default=5, help="pool size = this x the largest budget")
    p.add_argument("--cell-strain", type=float, default=0.03, help="Voigt amplitude of the strained pools and test")
    p.add_argument("--seeds", nargs="+", type=int, default=[0], help="training seeds")
    p.add_argument("--pool-seed", type=int, default=None,
                   help="seed of the pool, valid and test splits (default: the demo config's rattle.seed)")
    p.add_argument("--epochs", type=int, default=None, help="fine-tuning epochs (default: the demo config's)")
    p.add_argument("--committee-epochs", type=int, default=10)
    p.add_argument("--n-test", type=int, default=6)
    p.add_argument("--no-properties", dest="properties", action="store_false", help="skip bands and moduli")
    p.add_argument("--workdir", type=Path, help="keep the files here (default: a temporary folder)")
    p.add_argument("--json", type=Path, help="also write the rows as JSON")
    args = p.parse_args(argv)

    import torch

    torch.set_num_threads(1)
    log = lambda s: print(s, flush=True)  # noqa: E731
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        root = args.workdir or Path(tmp)
        root.mkdir(parents=True, exist_ok=True)
        foundation = args.foundation or make_foundation(root)
        log("columns: " + "  ".join(k for k, _ in COLUMNS) + "   (F meV/Å, S GPa, band THz, dB/dG GPa vs EMT)")
        for material in args.materials:
            for strain in (0.0, args.cell_strain):
                rows += run_case(material, strain, args, foundation, root / f"{material}_cs{strain}", log)
    print("\n" + "  ".join(k for k, _ in COLUMNS))
    for row in rows:
        print(_fmt(row))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1, default=float))
    return 0


if __name__ == "__main__":
    sys.exit(main())
