"""bench/bench_rules.py: wall and CPU seconds per rule and per strategy from a finished run's files."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
HEADER = "s\th:m:s\tmax_rss\tmax_vms\tmax_uss\tmax_pss\tio_in\tio_out\tmean_load\tcpu_time"


def _module():
    spec = importlib.util.spec_from_file_location("bench_rules", REPO / "bench" / "bench_rules.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _bench(path: Path, *rows: tuple) -> None:
    """A Snakemake benchmark file with (wall s, cpu s) rows (repeats)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [HEADER] + [f"{s}\t0:00:{int(s):02d}\t100.0\t200.0\t90.0\t95.0\t1.0\t2.0\t50.0\t{cpu}" for s, cpu in rows]
    path.write_text("\n".join(lines) + "\n")


def _metrics(path: Path, **seconds) -> None:
    path.mkdir(parents=True, exist_ok=True)
    (path / "metrics.json").write_text(json.dumps({"rmse": 0.1, **seconds}))


@pytest.fixture
def results(tmp_path):
    r = tmp_path / "results"
    b = r / "benchmarks"
    _bench(b / "foundation" / "foundation.tsv", (100.0, 150.0))
    _bench(b / "finetune" / "Cu" / "naive.tsv", (30.0, 25.0))
    _bench(b / "finetune" / "Au" / "naive.tsv", (20.0, 18.0))
    _bench(b / "finetune" / "Cu" / "l2sp.tsv", (10.0, 9.0))
    _bench(b / "evaluate" / "Cu" / "naive.tsv", (5.0, 5.0))
    _bench(b / "evaluate" / "Cu_reference.tsv", (8.0, 7.0))
    _bench(b / "label" / "Cu_train.tsv", (4.0, "NA"), (6.0, 3.0))  # two repeats, one without CPU time
    _metrics(r / "Cu" / "evaluate" / "naive" / "n2" / "s0", finetune_wall_seconds=12.0, finetune_cpu_seconds=10.0,
             evaluate_wall_seconds=3.0, evaluate_cpu_seconds=2.5)
    _metrics(r / "Cu" / "evaluate" / "naive" / "n10" / "s0", finetune_wall_seconds=18.0, finetune_cpu_seconds=15.0,
             evaluate_wall_seconds=2.0, evaluate_cpu_seconds=1.5)
    _metrics(r / "Cu" / "evaluate" / "l2sp" / "fps" / "n2" / "s1", finetune_wall_seconds=9.0, finetune_cpu_seconds=None,
             evaluate_wall_seconds=1.0, evaluate_cpu_seconds=1.0)
    _metrics(r / "Cu" / "reference", evaluate_wall_seconds=4.0)  # not a model: not counted
    return r


def test_benchmark_file_is_the_mean_of_its_repeats(results):
    br = _module()
    assert br.read_benchmark(results / "benchmarks" / "finetune" / "Cu" / "naive.tsv") == {"wall_s": 30.0,
                                                                                          "cpu_s": 25.0}
    label = br.read_benchmark(results / "benchmarks" / "label" / "Cu_train.tsv")
    assert label == {"wall_s": 5.0, "cpu_s": None}
    bad = results / "not_a_benchmark.tsv"
    bad.write_text("a\tb\n1\t2\n")
    with pytest.raises(ValueError, match="no 's' column"):
        br.read_benchmark(bad)


def test_rules_and_strategies_summed_sorted_with_shares(results):
    rep = _module().report(results)
    assert rep["total"] == {"jobs": 7, "wall_s": 178.0, "cpu_s": 214.0, "jobs_without_cpu": 1}  # label
    rules = {r["rule"]: r for r in rep["rules"]}
    assert [r["rule"] for r in rep["rules"]] == ["foundation", "finetune", "evaluate", "label"]
    assert rules["finetune"]["n"] == 3 and rules["finetune"]["wall_s"] == 60.0 and rules["finetune"]["cpu_s"] == 52.0
    assert rules["foundation"]["wall_s_share"] == pytest.approx(100 / 178)
    assert sum(r["wall_s_share"] for r in rep["rules"]) == pytest.approx(1.0)
    assert rules["label"]["cpu_s"] is None and rules["label"]["cpu_s_share"] is None
    assert rules["evaluate"]["cpu_s_share"] == pytest.approx(12 / (150 + 52 + 12))
    strategies = {r["strategy"]: r for r in rep["strategies"]}
    assert [r["strategy"] for r in rep["strategies"]] == ["naive", "l2sp", "reference"]  # label, foundation: none
    assert strategies["naive"]["wall_s"] == 55.0 and strategies["naive"]["n"] == 3
    assert strategies["reference"]["cpu_s"] == 7.0
    assert strategies["l2sp"]["wall_s_share"] == pytest.approx(10 / 73)


def test_per_model_seconds_from_metrics(results):
    rep = _module().report(results)
    models = {r["strategy"]: r for r in rep["models"]}
    assert set(models) == {"naive", "l2sp"}
    naive = models["naive"]
    assert naive["n"] == 2 and naive["finetune_wall_s"] == 30.0 and naive["evaluate_cpu_s"] == 4.0
    assert naive["total_wall_s"] == 35.0 and naive["total_wall_s_share"] == pytest.approx(35 / 45)
    assert models["l2sp"]["finetune_cpu_s"] is None  # a model without it: no made-up sum


def test_cli_table_and_json(results, capsys):
    br = _module()
    br.main([str(results)])
    table = capsys.readouterr().out
    assert "foundation" in table and "56.2%" in table  # 100 of 178 s
    br.main([str(results), "--json"])
    data = json.loads(capsys.readouterr().out)
    assert data["rules"][0]["rule"] == "foundation" and data["total"]["wall_s"] == 178.0
    with pytest.raises(SystemExit):
        br.main([str(results / "nowhere")])
