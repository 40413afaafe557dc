"""Shared fixtures: a tiny foundation model pretrained once per test session, and EMT-labelled data."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

os.environ.setdefault("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"


def tiny_foundation_config() -> dict:
    """A foundation small enough to pretrain in seconds: 8 channels, Cu/Au, softened EMT (s = 1.04)."""
    return {
        "dtype": "float64",
        "pretrain": {
            "calculator": "ase.calculators.emt:EMT", "kwargs": {}, "softening": 1.04,
            "elements": ["Cu", "Au"], "n_per_phase": 4, "n_alloys_per_pair": 4, "rattle_std": 0.05,
            "volume_strain": 0.10, "valid_fraction": 0.15, "seed": 0,
            "mace": {"r_max": 4.5, "num_channels": 8, "max_L": 1, "num_interactions": 2, "correlation": 2,
                     "max_num_epochs": 12, "batch_size": 4, "lr": 0.01, "ema": True, "ema_decay": 0.99,
                     "energy_weight": 10, "forces_weight": 100, "stress_weight": 10, "loss": "universal"},
        },
    }


@pytest.fixture(scope="session")
def foundation(tmp_path_factory):
    """(model path, replay file): a tiny MACE pretrained with mace_run_train on softened EMT."""
    import torch

    from phononft.foundation import pretrain_from_config

    torch.set_num_threads(1)
    d = tmp_path_factory.mktemp("foundation")
    pretrain_from_config(tiny_foundation_config(), d / "model.model", d / "pt_train.extxyz", d / "pt_valid.extxyz",
                         d / "work", device="cpu", log=lambda s: None)
    return d / "model.model", d / "pt_train.extxyz"


@pytest.fixture(scope="session")
def cu_data(tmp_path_factory):
    """EMT-labelled rattled fcc Cu supercells (32 atoms): train (10), valid (3), test (3)."""
    from ase.build import bulk

    from phononft.io import write_extxyz
    from phononft.label import label_structures, make_calculator
    from phononft.rattle import make_split

    d = tmp_path_factory.mktemp("cu_data")
    unit = bulk("Cu", "fcc", a=3.61, cubic=True)
    calc = make_calculator()
    files = {}
    for split, n in (("train", 10), ("valid", 3), ("test", 3)):
        images = make_split(unit, split, n, seed=1, supercell_min_length=7.0, rattle_std=0.04)
        files[split] = d / f"{split}.extxyz"
        write_extxyz(files[split], label_structures(images, calc, log=lambda s: None))
    return files


# ---- one real end-to-end run of the tiny workflow, shared by the tests that need a finished run ----------
TINY = REPO / "tests" / "data" / "tiny.yaml"
SNAKEMAKE = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile")]


def run_snakemake(args, cwd, timeout=1800):
    """Snakemake on the workflow with the repository's sources first on the path."""
    env = dict(os.environ, PYTHONPATH=str(REPO / "src"))
    return subprocess.run([*SNAKEMAKE, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


def dry_run_jobs(workdir, configfile) -> list[tuple[str, dict]]:
    """``[(rule, wildcards), ...]`` of the jobs ``snakemake -n`` would run in ``workdir`` with ``configfile``."""
    res = run_snakemake(["-n", "--configfile", str(configfile)], workdir, timeout=600)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    jobs = []
    for block in re.split(r"^(?:local)?rule ", res.stdout, flags=re.M)[1:]:
        name = block.split(":", 1)[0].strip()
        m = re.search(r"^\s+wildcards: (.*)$", block, re.M)
        wildcards = dict(kv.split("=", 1) for kv in m.group(1).split(", ")) if m else {}
        jobs.append((name, wildcards))
    return jobs


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory):
    """``(workdir, config dict)`` of a finished run of tests/data/tiny.yaml (every strategy, one material)."""
    workdir = tmp_path_factory.mktemp("tiny_run")
    config = yaml.safe_load(TINY.read_text())
    (workdir / "config.yaml").write_text(yaml.safe_dump(config))
    res = run_snakemake(["--configfile", str(workdir / "config.yaml"), "-j", "2"], workdir)
    assert res.returncode == 0, res.stdout[-5000:] + res.stderr[-5000:]
    return workdir, config


def stage_settings(stage: str = "reference", *, phonons: dict | None = None, evaluate: dict | None = None) -> dict:
    """The settings a stage's functions get (phononft.config.reference_settings / evaluate_settings) from the
    tiny config with the schema's defaults, ``phonons`` / ``evaluate`` keys overridden."""
    from phononft.config import evaluate_settings, load_config, reference_settings

    cfg = load_config(TINY)
    cfg["phonons"].update(phonons or {})
    for key, value in (evaluate or {}).items():
        if isinstance(value, dict):
            cfg["evaluate"][key].update(value)
        else:
            cfg["evaluate"][key] = value
    return reference_settings(cfg) if stage == "reference" else evaluate_settings(cfg)
