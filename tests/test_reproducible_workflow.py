"""The same config, run twice from scratch on the same machine, gives the same models and the same table.

The first run is conftest.tiny_run (every strategy, one material: shared with test_workflow / test_rerun);
this test makes the second one, in another directory, from nothing: the demo foundation's pretraining,
rattling, labelling, every fine-tuning and every evaluation run again.  Compared: every model file's weights
(bit for bit) and every value of ``results/summary/metrics.csv`` except the timing columns (unit ``s``).
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

pytestmark = pytest.mark.slow  # a second end-to-end run of the tiny config (~the time of conftest.tiny_run)


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
    second = tmp_path / "second"
    second.mkdir()
    (second / "config.yaml").write_text(yaml.safe_dump(config))
    res = run_snakemake(["--configfile", str(second / "config.yaml"), "-j", "2", "results/summary/metrics.csv"],
                        second)
    assert res.returncode == 0, res.stdout[-5000:] + res.stderr[-5000:]

    models_a, models_b = _models(first / "results"), _models(second / "results")
    assert len(models_a) >= len(config["strategies"]) and models_a.keys() == models_b.keys()
    for name, path in models_a.items():
        a, b = load_model(path).state_dict(), load_model(models_b[name]).state_dict()
        assert a.keys() == b.keys(), name
        different = [k for k in a if not torch.equal(a[k], b[k])]
        assert not different, f"{name}: tensors differ between two runs: {different[:5]}"

    table_a = _table(first / "results" / "summary" / "metrics.csv")
    table_b = _table(second / "results" / "summary" / "metrics.csv")
    assert len(table_a) > 100 and table_a.keys() == table_b.keys()
    different = [(k, table_a[k], table_b[k]) for k in table_a
                 if not (_same_value(table_a[k][0], table_b[k][0]) and table_a[k][1] == table_b[k][1])]
    assert not different, f"{len(different)} of {len(table_a)} values differ, e.g. {different[:5]}"
