"""The figure rules (rules/figures.smk): one job per figure, config keys with defaults, the rule graph, one list
of figures (phononft.figures.registry) behind the rules, scripts, captions, profile and partial summary, and a real
run of every figure rule + the HTML report on a small synthetic results tree."""

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

from phononft import layout
from phononft.config import figure_choice, load_config
from phononft.figures import registry, rulegraph
from test_figures import crossings

REPO = Path(__file__).resolve().parents[1]
SNAKEMAKE = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile")]
SHIPPED = REPO / "config" / "config.yaml"
TINY = REPO / "tests" / "data" / "tiny.yaml"

FIGURE_RULES = ["fig01_overview", "fig02_dataset", "fig03_property_deviation", "fig04_band_section",
                "fig05_imaginary_modes", "fig06_cost", "fig07_element_heatmap", "fig08_validation_errors",
                "fig09_thermal_deviation", "fig10_band_grid", "fig11_validation_per_material", "fig12_selection",
                "fig13_budget_curves"]


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
    # every figure is a PNG + PDF under results/figures/ named as its rule, with a log of that name too
    for rule in FIGURE_RULES:
        for path in (layout.figure(rule, "png"), layout.figure(rule, "pdf"), layout.log("figures", rule)):
            assert path in res.stdout, path


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
    dot = rulegraph.write_rulegraph(REPO / "Snakefile", yaml.safe_load(TINY.read_text()), tmp_path / "rg.dot",
                                    workdir=tmp_path, log=tmp_path / "rg.log")
    nodes, edges = rulegraph.parse_dot((tmp_path / "rg.dot").read_text())
    labels = set(nodes.values())
    assert {"structures", "finetune", "summary", "rulegraph", "fig01_overview", "all"} <= labels
    assert dot.startswith("digraph")
    collapsed, cedges = rulegraph.collapse_graph(nodes, edges, groups={rulegraph.FIGURE_RULES: "figures ({n} rules)"},
                                                 drop=rulegraph.DROPPED_RULES)
    names = set(collapsed.values())
    assert "all" not in names and f"figures ({len(FIGURE_RULES) + 1} rules)" in names
    assert not any(re.match(r"fig\d\d_", n) for n in names)
    assert not (tmp_path / ".snakemake" / "locks").exists() or not any((tmp_path / ".snakemake" / "locks").iterdir())
    # fig01 without graphviz: this workflow's graph laid out in layers, no edge through another rule's box
    for graph in ((nodes, edges), (collapsed, cedges)):
        assert not crossings(rulegraph.layered_layout(*graph))


# ------------------------------------------------------------------------------------- one list of figures

def test_the_registry_names_the_figures():
    assert list(registry.FIGURES) == FIGURE_RULES
    for name, fig in registry.FIGURES.items():
        assert fig.name == name and fig.draw.__name__ == name
        assert fig.draw.__module__ == f"phononft.figures.{fig.module}"
        assert fig.outputs() == [layout.figure(name, "png"), layout.figure(name, "pdf")]
    assert registry.figure_files() == [p for n in FIGURE_RULES for p in (layout.figure(n, "png"),
                                                                        layout.figure(n, "pdf"))]


def test_rules_scripts_captions_profile_and_partial_summary_follow_the_registry(tmp_path, monkeypatch):
    names = set(registry.FIGURES)
    # the rules: one per figure (plus the rule graph and the `figures` target) and no other figure rule
    res = run([*SNAKEMAKE, "--list-rules", "--directory", str(tmp_path)], tmp_path)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
    rules = set(res.stdout.split())
    assert names <= rules and {"rulegraph", "figures"} <= rules
    assert not {r for r in rules - names if re.match(r"fig\d|figure_|budget", r)}
    # rules/figures.smk: each figure rule asks the registry for its own figure only, and runs its own script
    text = (REPO / "rules" / "figures.smk").read_text()
    blocks = dict(re.findall(r"^rule (\w+):\n(.*?)(?=^\S|\Z)", text, re.M | re.S))
    assert names <= set(blocks)
    for name in names:
        assert set(re.findall(r'"([^"]+)"', blocks[name])) == {name, "figures", "../envs/plots.yaml",
                                                                f"../scripts/{name}.py"}, name
    # each rule's script is scripts/<name>.py, calling the function of that name from its module
    assert {p.stem for p in (REPO / "scripts").glob("fig*.py")} == names
    for fig in registry.FIGURES.values():
        text = (REPO / fig.script).read_text()
        assert f"from phononft.figures.{fig.module} import {fig.name}" in text and f"{fig.name}(" in text, fig.script
    # the captions: report/<name>.rst, naming only the rule's own params and inputs
    options = registry.option_values(load_config(SHIPPED))
    assert {p.stem for p in (REPO / "report").glob("*.rst")} - {"workflow"} == names
    for fig in registry.FIGURES.values():
        caption = (REPO / fig.caption).read_text()
        assert set(re.findall(r"snakemake\.params\.(\w+)", caption)) <= set(fig.params), fig.caption
        used = set(re.findall(r"snakemake\.input\.(\w+)", caption))
        assert used <= set(registry.rule_inputs(fig, options, ["Cu_fcc"])), fig.caption
    # the SLURM profile groups every figure rule with the summary
    groups = yaml.safe_load((REPO / "profiles" / "slurm" / "profile.yaml").read_text())["groups"]
    assert {r for r, g in groups.items() if g == "summary"} - {"summary"} == names
    # the partial summary draws the figures that read the table only, named as their rules
    config = load_config(SHIPPED)
    synthetic_results(tmp_path, config)
    monkeypatch.chdir(tmp_path)
    registry.draw_partial_figures(layout.summary(), config)
    drawn = {p.stem for p in (tmp_path / layout.figure("x", partial=True)).parent.glob("*.png")}
    table_only = {f.name for f in registry.FIGURES.values() if set(registry.rule_inputs(f, options, [])) == {"table"}}
    assert drawn == table_only == {"fig13_budget_curves", "fig03_property_deviation", "fig06_cost",
                                   "fig08_validation_errors", "fig09_thermal_deviation",
                                   "fig11_validation_per_material", "fig12_selection"}


#: which figures each option of the config key `figures` changes (config/schema.yaml)
OPTION_FIGURES = {
    "band_material": {"fig04_band_section", "fig10_band_grid"},
    "imaginary_material": {"fig05_imaginary_modes"},
    "budget": {"fig03_property_deviation", "fig04_band_section", "fig05_imaginary_modes", "fig10_band_grid",
               "fig11_validation_per_material"},
    "seed": {"fig04_band_section", "fig05_imaginary_modes", "fig10_band_grid"},
    "band_segments": {"fig04_band_section"},
    "cost_metric": {"fig06_cost", "fig12_selection"},
    "cost_target": {"fig06_cost", "fig12_selection"},
}


@pytest.mark.parametrize("key, value", [("band_material", "Cu_bcc"), ("imaginary_material", "Cu3Au"),
                                        ("budget", 2), ("seed", 1), ("band_segments", [0, 2]),
                                        ("cost_metric", "force_mae"), ("cost_target", 0.25)])
def test_an_option_changes_the_rules_of_its_figures_only(key, value):
    """A rule's params and inputs follow what its figure shows: a changed option reruns the figures that take it."""
    config = load_config(SHIPPED)
    config["seeds"] = [0, 1]
    before = registry.option_values(config)
    config["figures"][key] = value
    after = registry.option_values(config)
    changed = {name for name, fig in registry.FIGURES.items()
               if registry.rule_params(fig, before) != registry.rule_params(fig, after)
               or registry.rule_inputs(fig, before, ["Cu_fcc"]) != registry.rule_inputs(fig, after, ["Cu_fcc"])}
    assert changed == OPTION_FIGURES[key]


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
    (root / layout.summary()).parent.mkdir(parents=True)
    pd.DataFrame(rows, columns=["material", "strategy", "budget", "seed", "metric", "value", "unit"]).to_csv(
        root / layout.summary(), index=False)


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
    for name in FIGURE_RULES:
        assert (tmp_path / layout.figure(name, "png")).stat().st_size > 10_000, name
        assert (tmp_path / layout.figure(name, "pdf")).read_bytes()[:4] == b"%PDF", name
        assert "wrote" in (tmp_path / layout.log("figures", name)).read_text(), name
    assert "fig01_overview" in (tmp_path / layout.figure("rulegraph", "dot")).read_text()
    res = run([*SNAKEMAKE, "--configfile", str(cfg), "--directory", str(tmp_path),
               "--report", "results/report.html"], tmp_path)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    html = (tmp_path / "results" / "report.html").read_text()
    assert "fig05_imaginary_modes.png" in html and "Cu_bcc" in html
