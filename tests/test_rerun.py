"""Change one thing, recompute only what depends on it: `snakemake -n` on a finished tiny run after one edit of
the config lists exactly the jobs that depend on the edit (README: "Rerunning parts")."""

from __future__ import annotations

import copy
import shutil

import pytest
import yaml

from conftest import dry_run_jobs, run_snakemake

pytestmark = pytest.mark.slow  # they share one finished end-to-end run (conftest.tiny_run)

#: figures drawn from the tidy table, the recommendation and the claims read from it (redone with the table)
TABLE_FIGURES = {"fig03_property_deviation", "fig06_cost", "fig08_validation_errors", "fig09_thermal_deviation",
                 "fig10_band_grid", "fig11_validation_per_material", "fig13_budget_curves", "fig12_selection",
                 "recommendation", "claims"}
#: figures that draw the models of the figure material (their input: its evaluation folders, and the table)
MODEL_FIGURES = {"fig04_band_section", "fig05_imaginary_modes", "fig10_band_grid"}
#: figures of the dataset (their input: every material's structure summary)
DATASET_FIGURES = {"fig02_dataset", "fig07_element_heatmap"}


def edited(workdir, config, edit) -> list[tuple[str, dict]]:
    cfg = copy.deepcopy(config)
    edit(cfg)
    path = workdir / "edited.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return [(rule, wc) for rule, wc in dry_run_jobs(workdir, path) if rule != "all"]


def rules_of(jobs) -> set[str]:
    return {rule for rule, _ in jobs}


def test_nothing_changed_nothing_to_do(tiny_run):
    workdir, config = tiny_run
    assert edited(workdir, config, lambda cfg: None) == []


def test_figure_option_reruns_that_figure_only(tiny_run):
    workdir, config = tiny_run

    def edit(cfg):
        cfg.setdefault("figures", {})["cost_target"] = 0.25

    # the cost figure, the selection figure and the recommendation take the target; nothing else
    assert sorted(edited(workdir, config, edit)) == [("fig06_cost", {}), ("fig12_selection", {}),
                                                     ("recommendation", {})]


def test_band_segments_reruns_the_band_section_only(tiny_run):
    workdir, config = tiny_run

    def edit(cfg):
        cfg.setdefault("figures", {})["band_segments"] = [0, 2]

    assert edited(workdir, config, edit) == [("fig04_band_section", {})]


def test_strategy_parameter_reruns_that_strategy(tiny_run):
    workdir, config = tiny_run

    def edit(cfg):
        cfg["finetune"]["strategy_params"]["lora"]["lora_rank"] = 2

    jobs = edited(workdir, config, edit)
    per_model = [(rule, wc) for rule, wc in jobs if "strategy" in wc]
    assert sorted(per_model) == [("evaluate", {"material": "Cu_bcc", "strategy": "lora"}),
                                 ("finetune", {"material": "Cu_bcc", "strategy": "lora"})]
    assert rules_of(jobs) - {"finetune", "evaluate"} == {"summary"} | TABLE_FIGURES | MODEL_FIGURES


def test_phonon_setting_reruns_evaluations_not_training(tiny_run):
    workdir, config = tiny_run

    def edit(cfg):
        cfg["phonons"]["mesh"] += 2

    jobs = edited(workdir, config, edit)
    rules = rules_of(jobs)
    assert not rules & {"foundation", "structures", "reference_relax", "rattle", "label", "replay", "finetune",
                        "zero_shot"}
    assert rules == {"reference", "evaluate", "evaluate_zero_shot", "summary"} | TABLE_FIGURES | MODEL_FIGURES
    # evaluate: one job per material x trained strategy; evaluate_zero_shot: the zero-shot model (no strategy wildcard)
    evaluated = {wc.get("strategy", "pretrained") for rule, wc in jobs if rule.startswith("evaluate")}
    assert evaluated == set(config["strategies"])


def test_added_material_runs_its_own_jobs_only(tiny_run):
    workdir, config = tiny_run

    def edit(cfg):
        cfg["materials"]["Cu_fcc"] = {"bulk": {"name": "Cu", "crystalstructure": "fcc", "a": 3.61, "cubic": True}}

    jobs = edited(workdir, config, edit)
    materials = {wc.get("material") for _, wc in jobs} - {None}
    assert materials == {"Cu_fcc"}, "a finished material was scheduled again"
    new = rules_of([(r, wc) for r, wc in jobs if wc.get("material") == "Cu_fcc"])
    assert new == {"structures", "reference_relax", "rattle", "label", "reference", "replay", "finetune",
                   "zero_shot", "evaluate", "evaluate_zero_shot"}
    assert rules_of([(r, wc) for r, wc in jobs if "material" not in wc]) == \
        {"summary"} | TABLE_FIGURES | DATASET_FIGURES


def test_seed_added_zero_shot_runs_for_every_seed(tiny_run, tmp_path):
    """A second seed on a finished run (a copy of it): the zero-shot job, which trains on nothing and is given
    only the first training series, writes and evaluates the foundation for both seeds."""
    from phononft import layout
    from phononft.io import read_json

    workdir, config = tiny_run
    copy_dir = tmp_path / "run"
    shutil.copytree(workdir, copy_dir, symlinks=True)
    cfg = copy.deepcopy(config)
    cfg["seeds"] = [0, 1]
    path = copy_dir / "two_seeds.yaml"
    path.write_text(yaml.safe_dump(cfg))
    targets = [layout.job("finetune", "Cu_bcc", "pretrained"), layout.job("evaluate", "Cu_bcc", "pretrained")]
    res = run_snakemake(["--configfile", str(path), "-j", "2", *targets], copy_dir, timeout=900)
    assert res.returncode == 0, res.stdout[-4000:] + res.stderr[-4000:]
    for seed in (0, 1):
        assert (copy_dir / layout.model("Cu_bcc", "pretrained", 0, seed, "model.model")).is_file(), seed
        metrics = read_json(copy_dir / layout.evaluation("Cu_bcc", "pretrained", 0, seed, "metrics.json"))
        assert metrics["rmse"] > 0, seed
