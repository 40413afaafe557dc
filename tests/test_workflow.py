"""The Snakemake workflow itself: lint, dry runs of every shipped config, one real end-to-end run."""

from __future__ import annotations

import math
import os
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from phononft import layout
from phononft.config import ConfigError, load_config, validate_config

REPO = Path(__file__).resolve().parents[1]
SNAKEMAKE = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile")]
CONFIGS = sorted((REPO / "config").glob("*.yaml"))
CONFIGS = [c for c in CONFIGS if c.name != "schema.yaml"]
EXAMPLES = sorted((REPO / "config" / "examples").glob("*.yaml"))  # configs to copy (own data, one MP material)


#: evaluation settings of the tests of the workflow's mechanics (resume, keep-going): phonons only, the physics
#: of the other properties is tested elsewhere
WORKFLOW_ONLY = {"elastic": False, "imaginary": {"relax": False, "grid_points": 3}}


def run(args, cwd, timeout=600):
    env = dict(os.environ, PYTHONPATH=str(REPO / "src"))
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


def test_lint_is_clean(tmp_path):
    res = run([*SNAKEMAKE, "--lint"], tmp_path)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "Congratulations" in res.stdout + res.stderr


@pytest.mark.parametrize("config", CONFIGS + EXAMPLES + [REPO / "tests" / "data" / "tiny.yaml"], ids=lambda p: p.name)
def test_every_shipped_config_dry_runs(config, tmp_path):
    load_config(config)
    res = run([*SNAKEMAKE, "-n", "--configfile", str(config), "--directory", str(tmp_path)], tmp_path)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    assert "finetune" in res.stdout and "summary" in res.stdout


def test_bad_config_stops_before_any_job(tmp_path):
    cfg = yaml.safe_load((REPO / "tests" / "data" / "tiny.yaml").read_text())
    cfg["strategies"] = ["naive", "lorra"]
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(cfg))
    res = run([*SNAKEMAKE, "-n", "--configfile", str(bad), "--directory", str(tmp_path)], tmp_path)
    assert res.returncode != 0
    out = res.stdout + res.stderr
    assert "strategies[1]" in out and "'lorra' is not allowed" in out and "equitrain" in out
    assert not (tmp_path / "results").exists()
    with pytest.raises(ConfigError, match="budgts.*did you mean 'budgets'"):
        validate_config({**yaml.safe_load((REPO / "config" / "config.yaml").read_text()), "budgts": [1]})


@pytest.mark.slow
def test_end_to_end_tiny_workflow(tiny_run):
    """structure -> reference -> rattle -> label -> foundation -> every strategy -> evaluate -> metrics.csv ->
    figures (the run itself: conftest.tiny_run, shared with tests/test_rerun.py)."""
    from phononft.metrics import undocumented

    tmp_path, _ = tiny_run
    cfg = REPO / "tests" / "data" / "tiny.yaml"
    table = pd.read_csv(tmp_path / layout.summary())
    assert undocumented(table["metric"]) == [], "metrics without an entry in src/phononft/metrics.py"
    assert list(table.columns[:8]) == ["material", "strategy", "selection", "budget", "seed", "metric", "value", "unit"]
    config = load_config(cfg)
    for strategy in config["strategies"]:
        rows = table[(table.strategy == strategy) & (table.metric == "rmse")]
        assert len(rows) == (1 if strategy == "pretrained" else len(config["budgets"])), strategy
        assert rows["value"].map(math.isfinite).all()
    ref = table[(table.strategy == "reference")]
    assert ref[ref.metric == "has_imaginary"]["value"].iloc[0] == 1  # bcc Cu is unstable under EMT
    # every property has a reference value (no NaN by design): elastic, EOS, surface along the modes, phases
    for metric in ("bulk_modulus_eos", "C11", "kappa_slack", "surface_min_meV_per_atom", "new_phase"):
        assert math.isfinite(ref[ref.metric == metric]["value"].iloc[0]), metric
    scores = table[(table.material == "all") & table.metric.str.startswith("phase_recall_")]
    assert set(scores.strategy) == set(config["strategies"])  # the study's phase metric for every model
    # forgetting: every model that starts from the foundation is measured on the general set (scratch knows
    # only the material's elements, and the tiny general set may hold none of them alone: then n = 0, NaN)
    general = table[(table.metric == "general_force_mae") & (table.strategy != "scratch")]
    assert len(general) == len(table[table.metric == "rmse"]) - 1 and general["value"].notna().all()
    units = dict(zip(table.metric, table.unit))
    assert units["rmse"] == "THz" and units["force_mae"] == "meV/Å" and units["heat_capacity"] == "J/K/mol"
    assert (tmp_path / "results" / "figures" / "fig13_budget_curves.png").stat().st_size > 10_000
    # nothing half-written is left behind
    assert not list((tmp_path / "results").rglob("*.tmp*"))


@pytest.mark.slow
def test_killed_run_resumes_with_the_same_command(tmp_path):
    """SIGKILL the whole run during a training; the same command finishes it, redoing only unfinished jobs."""
    import signal
    import time

    cfg = yaml.safe_load((REPO / "tests" / "data" / "tiny.yaml").read_text())
    cfg["strategies"] = ["pretrained", "naive"]
    cfg["finetune"]["defaults"].update(max_num_epochs=40, patience=40)
    cfg["evaluate"].update(WORKFLOW_ONLY)
    cfg_file = tmp_path / "kill.yaml"
    cfg_file.write_text(yaml.safe_dump(cfg))
    work = tmp_path / "run"
    work.mkdir()
    cmd = [*SNAKEMAKE, "--configfile", str(cfg_file), "--directory", str(work), "-j", "1",
           "results/summary/metrics.csv"]
    env = dict(os.environ, PYTHONPATH=str(REPO / "src"))
    log = work / "results" / "logs" / "finetune" / "Cu_bcc" / "naive.log"
    proc = subprocess.Popen(cmd, cwd=work, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    try:
        deadline = time.time() + 900
        while time.time() < deadline and not (log.is_file() and "Epoch 2" in log.read_text()):
            assert proc.poll() is None, "the run ended before the training could be killed"
            time.sleep(1)
        assert log.is_file(), "the training never started"
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    model = work / layout.model("Cu_bcc", "naive", 2, 0, "model.model")
    assert not model.exists()  # killed mid-training: no model, not a half-written one
    done = {p: p.stat().st_mtime_ns for p in [work / "results" / "foundation" / "model.model",
                                              work / layout.labelled("Cu_bcc", layout.train_split("random", 0))]}
    res = run(cmd, work, timeout=1500)
    assert res.returncode == 0, res.stdout[-4000:] + res.stderr[-4000:]
    assert model.is_file() and (work / "results" / "summary" / "metrics.csv").is_file()
    assert {p: p.stat().st_mtime_ns for p in done} == done  # finished jobs were not redone
    assert not list((work / "results").rglob("*.tmp*"))


@pytest.mark.slow
def test_keep_going_one_failing_material_others_finish_and_gaps_are_marked(tmp_path):
    """Ni is unknown to the (Cu/Au) demo foundation: its fine-tuning fails with a message naming the element;
    with --keep-going Cu_bcc still finishes, and the partial table marks every Ni model 'missing'."""
    cfg = yaml.safe_load((REPO / "tests" / "data" / "tiny.yaml").read_text())
    cfg["strategies"] = ["pretrained", "naive"]
    cfg["evaluate"].update(WORKFLOW_ONLY)
    cfg["materials"]["Ni_fcc"] = {"bulk": {"name": "Ni", "crystalstructure": "fcc", "a": 3.52, "cubic": True}}
    cfg_file = tmp_path / "two.yaml"
    cfg_file.write_text(yaml.safe_dump(cfg))
    work = tmp_path / "run"
    work.mkdir()
    res = run([*SNAKEMAKE, "--configfile", str(cfg_file), "--directory", str(work), "-j", "2", "--keep-going"],
              work, timeout=1500)
    assert res.returncode != 0
    out = res.stdout + res.stderr
    assert "element(s) Ni unknown to the foundation model" in "".join(
        p.read_text() for p in (work / "results" / "logs" / "finetune" / "Ni_fcc").glob("*.log"))
    assert (work / layout.evaluation("Cu_bcc", "naive", 2, 0, "metrics.json")).is_file()
    table = pd.read_csv(work / "results" / "summary" / "metrics_partial.csv")
    ni = table[table.material == "Ni_fcc"]
    cu = table[(table.material == "Cu_bcc") & (table.strategy != "reference")]
    assert len(ni[ni.strategy != "reference"]) and (ni[ni.strategy != "reference"].status == "missing").all()
    assert ni[ni.strategy != "reference"]["value"].isna().all()
    assert (cu.status == "ok").all() and set(cu.strategy) == {"pretrained", "naive"}
    for name in ("fig13_budget_curves", "fig03_property_deviation", "fig08_validation_errors", "fig11_validation_per_material"):
        assert (work / "results" / "figures" / "partial" / f"{name}.png").stat().st_size > 10_000, name
    assert "metrics_partial.csv" in out


def test_paper_matrix_is_a_dag_of_a_few_thousand_jobs(tmp_path):
    """9996 models, but one finetune / evaluate job per material x strategy and VASP labelling in jobs of
    ``structures_per_job`` (10) structures: Snakemake spends ~1 ms per job and more per declared file to plan
    (bench/bench_dag.py times it; ~11 s on the 2-core CI machine, 2026-12-02)."""
    cfg = load_config(REPO / "config" / "paper.yaml")
    res = run([*SNAKEMAKE, "-n", "--configfile", str(REPO / "config" / "paper.yaml"), "--directory",
               str(tmp_path)], tmp_path)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    stats = dict(re.findall(r"^(\w+)\s+(\d+)$", res.stdout.split("Job stats:")[1], re.M))
    counts = {k: int(v) for k, v in stats.items()}
    trained = [s for s in cfg["strategies"] if s != "pretrained"]
    assert counts["finetune"] == counts["evaluate"] == 68 * len(trained) == 68 * 8
    assert counts["zero_shot"] == counts["evaluate_zero_shot"] == 68
    # each seed labels its own training series (jobs of 10 of the largest budget's 50), plus valid and test
    per_job = cfg["labeller"]["vasp"]["structures_per_job"]
    assert counts["label_vasp"] == 68 * (len(cfg["seeds"]) * (max(cfg["budgets"]) // per_job) + 2)
    assert counts["total"] < 4000
    # every model's folder is inside one job's directory output
    assert f"output: {layout.job('finetune', 'mp-2534', 'lora')}\n" in res.stdout
