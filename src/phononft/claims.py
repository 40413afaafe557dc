"""The study's headline claims, checked on this run's tidy table and printed at the end of a run.

Three claims (arXiv 2604.01017; issue 15 names them for the demo), each per material, on the band RMSE against
the reference (``rmse``, THz), the median over seeds of the ``random`` selection:

1. ``finetune_beats_zero_shot``: at N = ``budget`` every fine-tuning strategy (one that starts from the
   foundation's weights, :attr:`phononft.strategies.base.Strategy.from_foundation`) has a lower band RMSE
   than the zero-shot foundation;
2. ``best_beats_scratch``: the best fine-tuned model at N = ``budget`` beats ``scratch`` at that N;
3. ``zero_shot_in_benchmark_range``: the zero-shot band RMSE lies within the interquartile range of
   MACE-MP-0b3 against DFT-PBE over the 68 materials of the study's benchmark
   (:data:`BENCHMARK_ZERO_SHOT_IQR`): the demo's foundation is as wrong as the real one, so fine-tuning has a
   comparable error to correct.

A claim that cannot be checked (a strategy or budget missing from the run) says so instead of passing.
"""

from __future__ import annotations

import math

import pandas as pd

from . import strategies
from .figures.data import material_rows, summarise

#: THz, quartiles (25 %, 75 %) of the band RMSE of MACE-MP-0b3 against DFT-PBE over the study's 68 benchmark
#: materials (median 0.35, max 1.46 THz; the project's design notes, from the study's published benchmark)
BENCHMARK_ZERO_SHOT_IQR = (0.26, 0.57)

COLUMNS = ("claim", "material", "holds", "value", "compared_with", "detail")


def check_claims(table: pd.DataFrame | str, budget: int, metric: str = "rmse") -> pd.DataFrame:
    """One row per claim x material: ``holds`` (True/False, None when it cannot be checked), the value and
    what it was compared with (THz), and a sentence.  ``table``: the tidy table or its path; the ``random``
    selection's rows of each material (missing models are NaN and left out of the medians)."""
    df = material_rows(table)
    med = summarise(df[df.metric == metric], ["material", "strategy", "budget"]).set_index(
        ["material", "strategy", "budget"])["median"]
    ft = [s.name for s in strategies.all_strategies() if s.trained and s.from_foundation]
    rows = []
    materials = sorted(set(df.material))
    lo, hi = BENCHMARK_ZERO_SHOT_IQR
    for m in materials:
        zero = med.get((m, "pretrained", 0), math.nan)
        at_n = {s: med.get((m, s, budget), math.nan) for s in ft}
        at_n = {s: v for s, v in at_n.items() if not math.isnan(v)}
        scratch = med.get((m, "scratch", budget), math.nan)
        if math.isnan(zero) or not at_n:
            rows.append(("finetune_beats_zero_shot", m, None, math.nan, zero,
                         f"not checked: no zero-shot or fine-tuned {metric} at N = {budget}"))
        else:
            worst = max(at_n, key=at_n.get)
            losers = sorted(s for s, v in at_n.items() if not v < zero)
            rows.append(("finetune_beats_zero_shot", m, not losers, at_n[worst], zero,
                         f"worst fine-tuned at N = {budget}: {worst} {at_n[worst]:.3f} vs zero-shot {zero:.3f} THz"
                         + (f"; not better: {', '.join(losers)}" if losers else "")))
        if not at_n or math.isnan(scratch):
            rows.append(("best_beats_scratch", m, None, math.nan, scratch,
                         f"not checked: no scratch or fine-tuned {metric} at N = {budget}"))
        else:
            best = min(at_n, key=at_n.get)
            rows.append(("best_beats_scratch", m, at_n[best] < scratch, at_n[best], scratch,
                         f"best fine-tuned at N = {budget}: {best} {at_n[best]:.3f} vs scratch {scratch:.3f} THz"))
        rows.append(("zero_shot_in_benchmark_range", m, None if math.isnan(zero) else bool(lo <= zero <= hi),
                     zero, math.nan, f"zero-shot {zero:.3f} THz; MACE-MP-0b3 vs PBE quartiles {lo}-{hi} THz"))
    return pd.DataFrame(rows, columns=list(COLUMNS))


def _state(value) -> bool | None:
    """``holds`` as written or read back from the CSV (bool, "True"/"False", empty/NaN: not checked)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return str(value).strip().lower() == "true"


def report(claims: pd.DataFrame) -> list[str]:
    """Console lines: one per claim (holds on n of m materials) and one per material where it does not hold or
    was not checked."""
    lines = []
    for claim, rows in claims.groupby("claim", sort=False):
        states = [_state(v) for v in rows.holds]
        checked = [s for s in states if s is not None]
        lines.append(f"claim {claim}: holds on {sum(checked)} of {len(checked)} material(s)"
                     + (f" ({len(states) - len(checked)} not checked)" if len(checked) < len(states) else ""))
        lines.extend(f"  {r.material}: {r.detail}" for r, s in zip(rows.itertuples(), states) if s is not True)
    return lines
