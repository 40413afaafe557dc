"""The study's claims checked on a table (phononft.claims): which hold, which break and why, which cannot be
checked; the report reads the same from the written CSV."""

from __future__ import annotations

import pandas as pd

from phononft.claims import check_claims, report
from phononft.summary import write_table


def _table(rows):
    """Tidy rows (material, strategy, budget, seed, band RMSE in THz), selection random, status ok."""
    return pd.DataFrame([{"material": m, "strategy": s, "selection": "random", "budget": b, "seed": seed,
                          "metric": "rmse", "value": v, "unit": "THz", "status": "ok"}
                         for m, s, b, seed, v in rows])


FT = ["naive", "frozen", "multihead", "lora", "equitrain", "delta", "l2sp"]  # the fine-tuning strategies


def _material(name, zero, scratch, ft_value, seeds=(0, 1, 2)):
    rows = [(name, "pretrained", 0, s, zero) for s in seeds]
    rows += [(name, "scratch", 10, s, scratch) for s in seeds]
    rows += [(name, strat, 10, s, ft_value + 0.01 * i) for i, strat in enumerate(FT) for s in seeds]
    return rows


def _holds(claims, claim, material):
    return claims.set_index(["claim", "material"]).loc[(claim, material), "holds"]


def test_claims_hold_and_break_per_material(tmp_path):
    rows = _material("A", zero=0.40, scratch=0.20, ft_value=0.05)  # every claim holds
    rows += _material("B", zero=0.80, scratch=0.03, ft_value=0.05)  # zero-shot above the IQR, scratch best
    rows = [r if not (r[0] == "B" and r[1] == "delta") else (*r[:4], 0.9) for r in rows]  # delta worse than zero
    claims = check_claims(_table(rows), budget=10)
    assert _holds(claims, "finetune_beats_zero_shot", "A") and _holds(claims, "best_beats_scratch", "A")
    assert _holds(claims, "zero_shot_in_benchmark_range", "A")
    assert not _holds(claims, "finetune_beats_zero_shot", "B")
    assert not _holds(claims, "best_beats_scratch", "B")
    assert not _holds(claims, "zero_shot_in_benchmark_range", "B")
    detail = claims.set_index(["claim", "material"]).loc[("finetune_beats_zero_shot", "B"), "detail"]
    assert "delta" in detail and "not better: delta" in detail
    lines = report(claims)
    assert "claim finetune_beats_zero_shot: holds on 1 of 2 material(s)" in lines
    assert any(line.startswith("  B: worst fine-tuned at N = 10: delta 0.900") for line in lines)
    # the report reads the same from the CSV the rule writes
    write_table(claims, tmp_path / "claims.csv")
    assert report(pd.read_csv(tmp_path / "claims.csv")) == lines


def test_median_over_seeds_and_missing_budget_is_not_checked():
    rows = _material("A", zero=0.40, scratch=0.20, ft_value=0.05)
    rows = [r if not (r[1] == "naive" and r[3] == 2) else (*r[:4], 5.0) for r in rows]  # one bad seed of three
    claims = check_claims(_table(rows), budget=10)
    assert _holds(claims, "finetune_beats_zero_shot", "A")  # the median over seeds, not the worst seed
    unchecked = check_claims(_table(rows), budget=20)  # no model at N = 20
    assert unchecked.set_index("claim").loc["finetune_beats_zero_shot", "holds"] is None
    assert "not checked" in report(unchecked)[0]
