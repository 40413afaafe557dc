"""The same config, run twice from scratch on the same machine, gives the same models and the same table.

The first run is conftest.tiny_run (every strategy, one material: shared with test_workflow / test_rerun);
this test makes the second one, in another directory, from nothing: the demo foundation's pretraining,
rattling, labelling, the reference, fine-tuning and evaluation run again -- for one strategy per training tool
(:data:`ONE_PER_TOOL`; a model depends on its own strategy's settings only, so the subset trains the same
models, and the suite saves half of a second run).  Compared: every model file's weights (bit for bit) and
every value of ``results/summary/metrics.csv`` of those strategies and of the reference, except the timing
columns (unit ``s``).
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

import pytest
import torch
import yaml
from conftest import run_snakemake

from phononft.torch_runtime import load_model

pytestmark = pytest.mark.slow  # a second end-to-end run of the tiny config (about half of conftest.tiny_run)

#: zero-shot, and one strategy per tool of the study recipe: mace_run_train, the Equitrain package, in process
ONE_PER_TOOL = ["pretrained", "naive", "equitrain", "l2sp"]


def _models(results: Path) -> dict[str, Path]:
    """Every model file of a run, keyed by its path relative to ``results``."""
    found = sorted(results.glob("foundation/model.model")) + sorted(results.glob("*/finetune/**/model.model"))
    return {str(p.relative_to(results)): p for p in found}


def _table(path: Path) -> dict[tuple, tuple[str, str]]:
    """The tidy table as ``{(material, strategy, selection, budget, seed, metric): (value, status)}``, timing
    rows (unit ``s``) left out."""
    with open(path, newline="") as fh:
        return {(r["material"], r["strategy"], r["selection"], r["budget"], r["seed"], r["metric"]):
                (r["value"], r["status"]) for r in csv.DictReader(fh) if r["unit"] != "s"}


def _same_value(a: str, b: str) -> bool:
    try:
        x, y = float(a), float(b)
    except ValueError:
        return a == b
    return (math.isnan(x) and math.isnan(y)) or x == y


def test_same_config_twice_from_scratch_gives_same_models_and_metrics(tiny_run, tmp_path):
    first, config = tiny_run
    assert set(ONE_PER_TOOL) <= set(config["strategies"])
    second = tmp_path / "second"
    second.mkdir()
    subset = {**config, "strategies": ONE_PER_TOOL}
    subset["finetune"] = {**config["finetune"], "strategy_params": {
        k: v for k, v in config["finetune"]["strategy_params"].items() if k in ONE_PER_TOOL}}
    (second / "config.yaml").write_text(yaml.safe_dump(subset))
    res = run_snakemake(["--configfile", str(second / "config.yaml"), "-j", "2", "results/summary/metrics.csv"],
                        second)
    assert res.returncode == 0, res.stdout[-5000:] + res.stderr[-5000:]

    models_b = _models(second / "results")
    models_a = {name: path for name, path in _models(first / "results").items()
                if name.startswith("foundation/") or name.split("/")[2] in ONE_PER_TOOL}  # <m>/finetune/<strategy>/
    assert len(models_a) >= len(ONE_PER_TOOL) and models_a.keys() == models_b.keys()
    for name, path in models_a.items():
        a, b = load_model(path).state_dict(), load_model(models_b[name]).state_dict()
        assert a.keys() == b.keys(), name
        different = [k for k in a if not torch.equal(a[k], b[k])]
        assert not different, f"{name}: tensors differ between two runs: {different[:5]}"

    table_a = {k: v for k, v in _table(first / "results" / "summary" / "metrics.csv").items()
               if k[1] in ONE_PER_TOOL + ["reference"]}
    table_b = _table(second / "results" / "summary" / "metrics.csv")
    assert len(table_a) > 100 and table_a.keys() == table_b.keys()
    different = [(k, table_a[k], table_b[k]) for k in table_a
                 if not (_same_value(table_a[k][0], table_b[k][0]) and table_a[k][1] == table_b[k][1])]
    assert not different, f"{len(different)} of {len(table_a)} values differ, e.g. {different[:5]}"
