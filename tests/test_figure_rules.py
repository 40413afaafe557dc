"""The figure rules (rules/figures.smk): one job per figure, config keys with defaults, the rule graph,
and a real run of every figure rule + the HTML report on a small synthetic results tree."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from phononft import figures as F
from phononft import layout
from phononft.config import figure_choice, load_config

REPO = Path(__file__).resolve().parents[1]
SNAKEMAKE = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile")]
SHIPPED = REPO / "config" / "config.yaml"
TINY = REPO / "tests" / "data" / "tiny.yaml"

FIGURE_RULES = ["fig01_overview", "fig02_dataset", "fig03_property_deviation", "fig04_band_section",
                "fig05_imaginary_modes", "fig06_cost", "fig07_element_heatmap", "fig08_validation_errors",
                "fig09_thermal_deviation", "fig10_band_grid", "fig11_validation_per_material",
                "figure_budget_curves"]


def run(args, cwd, timeout=600):
    env = dict(os.environ, PYTHONPATH=str(REPO / "src"))
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


def job_counts(stdout: str) -> dict[str, int]:
    """The "Job stats" table of a dry run as {rule: count}."""
    table = stdout.split("Job stats:", 1)[1]
    return {m.group(1): int(m.group(2)) for m in re.finditer(r"^(\w+)\s+(\d+)\s*$", table, re.M)}


def dry_run(tmp_path, *targets, configfile: Path | None = None) -> tuple[subprocess.CompletedProcess, str]:
    extra = ["--configfile", str(configfile)] if configfile else []
    res = run([*SNAKEMAKE, "-n", *targets, "--directory", str(tmp_path), *extra], tmp_path)
    return res, res.stdout + res.stderr


def test_dry_run_lists_one_job_per_figure(tmp_path):
    res, out = dry_run(tmp_path, "figures")
    assert res.returncode == 0, out[-3000:]
    counts = job_counts(res.stdout)
    for rule in FIGURE_RULES + ["rulegraph", "figures"]:
        assert counts.get(rule) == 1, (rule, counts)
    # every figure is a PNG + PDF under results/figures/, and rule all asks for all of them
    for rule in FIGURE_RULES:
        name = rule.removeprefix("figure_")
        assert f"results/figures/{name}.png" in res.stdout and f"results/figures/{name}.pdf" in res.stdout


def test_shipped_config_chooses_figure_material_and_budget(tmp_path):
    res, out = dry_run(tmp_path, "results/figures/fig05_imaginary_modes.png",
                       "results/figures/fig04_band_section.png")
    assert res.returncode == 0, out[-3000:]
    # inputs: the evaluation jobs (folders) of the chosen materials; the budget is phononft.config's choice
    assert "results/Cu_bcc/evaluate/lora" in res.stdout and "results/Cu_bcc/evaluate/pretrained" in res.stdout
    assert "results/Cu_fcc/evaluate/naive" in res.stdout
    choice = figure_choice(load_config(REPO / "config" / "config.yaml"))
    assert (choice["band_material"], choice["imaginary_material"], choice["budget"]) == ("Cu_fcc", "Cu_bcc", 10)
    assert ("naive", 10) in choice["models"] and ("pretrained", 0) in choice["models"]


def test_figure_defaults_without_the_figures_key(tmp_path):
    """tiny.yaml has no `figures` key: first material, largest (only) budget, first seed."""
    res, out = dry_run(tmp_path, "results/figures/fig10_band_grid.png", configfile=TINY)
    assert res.returncode == 0, out[-3000:]
    assert "results/Cu_bcc/evaluate/l2sp" in res.stdout
    choice = figure_choice(load_config(TINY))
    assert (choice["band_material"], choice["budget"], choice["seed"]) == ("Cu_bcc", 2, 0)
    assert ("l2sp", 2) in choice["models"]


@pytest.mark.parametrize("key, value, message", [
    ("band_material", "Cu_hcp", "figures.band_material"),
    ("budget", 7, "figures.budget"),
    ("colour", "red", "unknown key"),
])
def test_bad_figure_keys_are_named(tmp_path, key, value, message):
    cfg = yaml.safe_load(SHIPPED.read_text())
    cfg["figures"][key] = value
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(cfg, sort_keys=False))
    res, out = dry_run(tmp_path, "figures", configfile=bad)
    assert res.returncode != 0
    assert message in out, out[-2000:]


def test_write_rulegraph(tmp_path):
    dot = F.write_rulegraph(REPO / "Snakefile", yaml.safe_load(TINY.read_text()), tmp_path / "rg.dot",
                            workdir=tmp_path, log=tmp_path / "rg.log")
    nodes, edges = F.parse_dot((tmp_path / "rg.dot").read_text())
    labels = set(nodes.values())
    assert {"structures", "finetune", "summary", "rulegraph", "fig01_overview", "all"} <= labels
    assert dot.startswith("digraph")
    collapsed, cedges = F.collapse_graph(nodes, edges, groups={F.FIGURE_RULES: "figures ({n} rules)"},
                                         drop=F.DROPPED_RULES)
    names = set(collapsed.values())
    assert "all" not in names and f"figures ({len(FIGURE_RULES) + 1} rules)" in names
    assert not any(n.startswith("fig0") for n in names)
    assert not (tmp_path / ".snakemake" / "locks").exists() or not any((tmp_path / ".snakemake" / "locks").iterdir())


# ------------------------------------------------------------------------------------- a real figure run

def _bands(shift: float = 0.0) -> dict:
    x = np.linspace(0, 1, 21)
    segs = []
    for k in range(3):
        f = np.column_stack([(1 + shift) * (2 + k) * np.sin(np.pi * x / 2) + j for j in range(3)])
        segs.append(f.tolist())
    return {"distances": [(x + k).tolist() for k in range(3)], "frequencies": segs,
            "labels": [["GAMMA", "H"], ["H", "N"], ["N", "GAMMA"]]}


def _surface(soft: float = 1.0) -> dict:
    amps = np.linspace(-0.3, 0.3, 7)
    A, B = np.meshgrid(amps, amps, indexing="ij")
    e = soft * (-40 * A ** 2 + 300 * A ** 4) + (-20 * B ** 2 + 400 * B ** 4)
    return {"surface": {"amplitudes": amps.tolist(), "n_modes": 2, "energies_meV_per_atom": e.tolist(),
                        "mode_q": [[0.5, 0.5, 0], [0, 0, 0.5]], "mode_band": [0, 1],
                        "mode_frequency": [-1.1, -0.6], "surface_min_meV_per_atom": float(e.min())},
            "relaxation": None, "modes_source": "given"}


def synthetic_results(root: Path, config: dict) -> None:
    """What the figure rules read, for every material / strategy / budget / seed of ``config``."""
    rows = []
    metrics = {"rmse": "THz", "force_mae": "meV/Å", "energy_mae": "meV/atom", "stress_mae": "GPa",
               "heat_capacity": "J/K/mol", "entropy": "J/K/mol", "free_energy": "kJ/mol",
               "bulk_modulus_vrh": "GPa", "reference_calculations": "count"}
    for i, mat in enumerate(config["materials"]):
        ref = root / layout.reference(mat)
        ref.mkdir(parents=True)
        (root / layout.structure(mat, "json")).parent.mkdir(parents=True)
        (root / layout.structure(mat, "json")).write_text(json.dumps({"formula": "Cu", "elements": ["Cu"],
                                                                     "crystal_system": "cubic",
                                                                     "natoms_primitive": 1 + i}))
        (ref / "bands.json").write_text(json.dumps(_bands()))
        (ref / "surface.json").write_text(json.dumps(_surface()))
        for m, u in metrics.items():
            rows.append((mat, "reference", 0, 0, m, 1.0 + i, u))
        for s in config["strategies"]:
            for b in [0] if s == "pretrained" else config["budgets"]:
                for seed in config["seeds"]:
                    e = root / layout.evaluation(mat, s, b, seed)
                    e.mkdir(parents=True)
                    err = 0.5 / (1 + b) + 0.01 * len(s)
                    (e / "bands.json").write_text(json.dumps(_bands(err)))
                    (e / "surface.json").write_text(json.dumps(_surface(1 + err)))
                    for m, u in metrics.items():
                        rows.append((mat, s, b, seed, m, (1.0 + i) * (1 + err), u))
    (root / "results" / "summary").mkdir(parents=True)
    pd.DataFrame(rows, columns=["material", "strategy", "budget", "seed", "metric", "value", "unit"]).to_csv(
        root / "results" / "summary" / "metrics.csv", index=False)


@pytest.mark.slow
def test_figure_rules_run_and_report(tmp_path):
    """Every figure rule on a synthetic results tree (upstream rules disallowed), then the HTML report."""
    config = yaml.safe_load(SHIPPED.read_text())
    config["materials"] = {k: config["materials"][k] for k in ("Cu_fcc", "Cu_bcc")}
    config["strategies"] = ["pretrained", "naive", "lora"]
    cfg = tmp_path / "config.yaml"
    cfg.write_text(yaml.safe_dump(config, sort_keys=False))
    synthetic_results(tmp_path, config)
    allowed = FIGURE_RULES + ["rulegraph", "figures"]
    res = run([*SNAKEMAKE, "figures", "--configfile", str(cfg), "--directory", str(tmp_path), "-j1",
               "--allowed-rules", *allowed], tmp_path, timeout=1200)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    figs = tmp_path / "results" / "figures"
    for rule in FIGURE_RULES:
        name = rule.removeprefix("figure_")
        assert (figs / f"{name}.png").stat().st_size > 10_000, name
        assert (figs / f"{name}.pdf").read_bytes()[:4] == b"%PDF", name
    assert "fig01_overview" in (figs / "rulegraph.dot").read_text()
    res = run([*SNAKEMAKE, "--configfile", str(cfg), "--directory", str(tmp_path),
               "--report", "results/report.html"], tmp_path)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    html = (tmp_path / "results" / "report.html").read_text()
    assert "fig05_imaginary_modes.png" in html and "Cu_bcc" in html
