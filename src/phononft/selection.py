"""Which structures to label: nested rankings of a candidate pool.

A *ranking* is the order in which pool structures (:func:`phononft.rattle.make_pool`) are picked for
labelling; the budget-``N`` training set is the first ``N`` of it, so budgets stay nested (every larger
training set contains the smaller ones) and curves over budget remain paired comparisons.

``random``       :func:`rank_random` -- the identity order: the first ``N`` of the rattled series, i.e. the
                 workflow's behaviour without selection (the series is already a random draw).
``fps``          :func:`rank_fps` -- farthest-point sampling on the foundation's per-structure MACE
                 descriptors (invariant node features averaged per element, as mace-torch's
                 ``fine_tuning_select.calculate_descriptors``), no labels needed.
``uncertainty``  :func:`rank_uncertainty_rounds` -- query by committee in rounds at the budget boundaries:
                 a committee of cheap fine-tunes (:func:`committee`) on the structures labelled so far,
                 then the pool structures on which its forces disagree most (:func:`force_disagreement`).
                 :func:`round_plan` and :func:`next_picks` are the same logic as pure steps ("given the
                 labels so far, which structures next") for a workflow that labels with cluster jobs.

Units: descriptors are MACE's (dimensionless features); disagreements in eV/Å.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
from ase import Atoms

from .io import read_extxyz, write_extxyz, write_json
from .mace_train import resolve_device

SELECTIONS = ("random", "fps", "uncertainty")


def _calculator(model_paths: str | list[str], *, device: str, dtype: str):
    """A MACECalculator of one model or a committee (``forces_comm`` per member)."""
    from mace.calculators import MACECalculator  # heavy (torch, e3nn): only where a model is evaluated

    return MACECalculator(model_paths=model_paths, device=resolve_device(device), default_dtype=dtype)


# --------------------------------------------------------------------------------------------
# random and farthest-point sampling
# --------------------------------------------------------------------------------------------
def rank_random(n_pool: int, seed: int = 0) -> np.ndarray:
    """The identity order ``0 .. n_pool-1``: the pool is already a seeded random series (its seed made it), so
    the first ``N`` are the workflow's budget-``N`` training set.  ``seed`` is accepted for a uniform
    signature and does not reorder anything."""
    if n_pool < 0:
        raise ValueError(f"n_pool must be >= 0, got {n_pool}")
    return np.arange(int(n_pool))


def farthest_point_order(points: np.ndarray, *, start: str | int = "centroid", seed: int = 0) -> np.ndarray:
    """The full greedy max-min (farthest-point) order of ``points`` (n, d): each next point is the one
    farthest (Euclidean) from all points picked so far; ties go to the lowest index.

    ``start``: ``"centroid"`` (the point nearest the mean: the most typical one first, then the extremes),
    ``"farthest"`` (the point farthest from the mean: an extreme first), ``"random"`` (drawn with ``seed``)
    or an index.  Duplicated points are ordered last among equals (distance 0), never repeated -- unlike
    ``fpsample.fps_sampling``, which repeats an index once the remaining points coincide.
    """
    x = np.asarray(points, dtype=float)
    if x.ndim != 2:
        raise ValueError(f"points must be (n, d), got shape {x.shape}")
    n = len(x)
    if n == 0:
        return np.zeros(0, dtype=int)
    if not np.all(np.isfinite(x)):
        raise ValueError("points hold non-finite values")
    to_mean = np.linalg.norm(x - x.mean(axis=0), axis=1)
    if start == "centroid":
        first = int(np.argmin(to_mean))
    elif start == "farthest":
        first = int(np.argmax(to_mean))
    elif start == "random":
        first = int(np.random.default_rng(seed).integers(n))
    elif isinstance(start, (int, np.integer)) and 0 <= start < n:
        first = int(start)
    else:
        raise ValueError(f"start must be 'centroid', 'farthest', 'random' or an index < {n}, got {start!r}")
    order = [first]
    nearest = np.linalg.norm(x - x[first], axis=1)  # distance of each point to the picked set
    picked = np.zeros(n, dtype=bool)
    picked[first] = True
    for _ in range(n - 1):
        candidate = np.where(picked, -np.inf, nearest)
        nxt = int(np.argmax(candidate))  # argmax returns the lowest index among ties
        order.append(nxt)
        picked[nxt] = True
        nearest = np.minimum(nearest, np.linalg.norm(x - x[nxt], axis=1))
    return np.asarray(order, dtype=int)


def structure_descriptors(pool: Sequence[Atoms], model_path: str | Path, *, device: str = "cpu",
                          dtype: str = "float64") -> np.ndarray:
    """(n_pool, n_elements * d) per-structure descriptors: the model's invariant node features
    (``MACECalculator.get_descriptors(invariants_only=True)``, all layers) averaged over the atoms of each
    element, concatenated over the pool's elements in ascending atomic number (zeros for an element a
    structure lacks)."""
    calc = _calculator(str(model_path), device=device, dtype=dtype)
    elements = sorted({int(z) for atoms in pool for z in atoms.numbers})
    rows = []
    for atoms in pool:
        per_atom = np.asarray(calc.get_descriptors(atoms.copy(), invariants_only=True))
        per_atom = per_atom.reshape(len(atoms), -1)
        blocks = [per_atom[atoms.numbers == z].mean(axis=0) if np.any(atoms.numbers == z)
                  else np.zeros(per_atom.shape[1]) for z in elements]
        rows.append(np.concatenate(blocks))
    return np.asarray(rows)


def rank_fps(pool: Sequence[Atoms], foundation_model_path: str | Path, *, seed: int = 0, device: str = "cpu",
             dtype: str = "float64", start: str | int = "centroid") -> np.ndarray:
    """The whole pool in farthest-point order of the foundation's descriptors (:func:`structure_descriptors`,
    :func:`farthest_point_order`); ``seed`` only matters for ``start="random"``."""
    return farthest_point_order(structure_descriptors(pool, foundation_model_path, device=device, dtype=dtype),
                                start=start, seed=seed)


# --------------------------------------------------------------------------------------------
# query by committee
# --------------------------------------------------------------------------------------------
def force_disagreement(pool: Sequence[Atoms], committee_models: Sequence[str | Path], *, reduce: str = "mean",
                       device: str = "cpu", dtype: str = "float64") -> np.ndarray:
    """Committee force disagreement (eV/Å) per structure: at each atom the norm of the committee's standard
    deviation of the force, ``sqrt(sum_c var_m(F_m,ic))`` (population variance over the members), then its
    ``"mean"`` or ``"max"`` over the atoms."""
    if len(committee_models) < 2:
        raise ValueError(f"a committee needs at least 2 models, got {len(committee_models)}")
    if reduce not in ("mean", "max"):
        raise ValueError(f"reduce must be 'mean' or 'max', got {reduce!r}")
    calc = _calculator([str(m) for m in committee_models], device=device, dtype=dtype)
    out = np.empty(len(pool))
    for i, atoms in enumerate(pool):
        a = atoms.copy()
        a.calc = calc
        a.get_forces()
        forces = np.asarray(calc.results["forces_comm"])  # (n_models, n_atoms, 3)
        per_atom = np.sqrt(forces.var(axis=0).sum(axis=-1))
        out[i] = per_atom.mean() if reduce == "mean" else per_atom.max()
    return out


def pick_most_uncertain(disagreement: np.ndarray, picked: Sequence[int], n_pick: int, *,
                        tie_order: Sequence[int] | None = None) -> np.ndarray:
    """The ``n_pick`` pool indices not in ``picked`` with the largest disagreement, most uncertain first.
    Ties (e.g. a committee whose members learnt the same thing) follow ``tie_order`` (a ranking of the pool,
    e.g. round 0's label-free one), else the lowest index."""
    d = np.asarray(disagreement, dtype=float)
    free = np.setdiff1d(np.arange(len(d)), np.asarray(picked, dtype=int))
    if n_pick > len(free):
        raise ValueError(f"asked for {n_pick} more structures but only {len(free)} of the pool are not picked yet")
    rank = np.arange(len(d)) if tie_order is None else np.argsort(np.asarray(tie_order, dtype=int))
    order = free[np.lexsort((rank[free], -d[free]))]
    return order[:n_pick]


def rank_uncertainty(pool: Sequence[Atoms], labelled_prefix: Sequence[int], committee_models: Sequence[str | Path],
                     n_pick: int, *, reduce: str = "mean", device: str = "cpu",
                     dtype: str = "float64") -> tuple[np.ndarray, np.ndarray]:
    """``(picks, disagreement)``: the ``n_pick`` pool indices outside ``labelled_prefix`` (pool indices already
    picked and labelled) on which the committee disagrees most, most uncertain first, and the disagreement
    (eV/Å, :func:`force_disagreement`) of every pool structure."""
    d = force_disagreement(pool, committee_models, reduce=reduce, device=device, dtype=dtype)
    return pick_most_uncertain(d, labelled_prefix, n_pick), d


def member_subsets(n: int, n_members: int, seed: int) -> list[np.ndarray]:
    """Bootstrap resamples (size ``n``, with replacement, in random order) of ``range(n)``, one per member,
    distinct multisets whenever there are enough of them (``C(2n-1, n)``)."""
    rng = np.random.default_rng([int(seed), 7727])
    n_distinct = math.comb(2 * n - 1, n) if n > 0 else 0
    seen, out = set(), []
    for _ in range(n_members):
        for _attempt in range(100):
            idx = rng.integers(n, size=n)
            key = tuple(sorted(idx.tolist()))
            if key not in seen or len(seen) >= n_distinct:
                break
        seen.add(key)
        out.append(idx)
    return out


def committee(foundation: str | Path, labelled_file: str | Path, valid_file: str | Path, workdir: str | Path, *,
              n_members: int = 3, epochs: int = 10, seed: int = 0, params: dict | None = None,
              device: str = "cpu", dtype: str = "float64", log: Callable[[str], None] = lambda s: None) -> list[Path]:
    """Train ``n_members`` cheap naive fine-tunes of ``foundation`` on the labelled structures; returns the model
    paths (``workdir/member{k}.model``).  Members differ in their data (:func:`member_subsets`: bootstrap
    resamples in shuffled order), their seed (``seed + k``) and, with batch size 1, their update order.
    ``params``: mace_run_train options over the defaults (``epochs`` epochs, no early stop, batch size 1);
    ``dtype``: the training dtype.  With a single labelled structure the members see the same data and
    differ only by their seed, which barely matters then: start the rounds at two structures or more."""
    from .finetune import finetune  # heavy (torch, mace): the figures read SELECTIONS from this module

    workdir = Path(workdir)
    images = read_extxyz(labelled_file)
    if not images:
        raise ValueError(f"{labelled_file}: no labelled structures to train a committee on")
    opts = {"max_num_epochs": int(epochs), "patience": int(epochs) + 1, "batch_size": 1, "lr": 0.005,
            "energy_weight": 10, "forces_weight": 100, "stress_weight": 100, "ema_decay": None, **(params or {})}
    models = []
    for k, idx in enumerate(member_subsets(len(images), n_members, seed)):
        member = workdir / f"member{k}"
        member.mkdir(parents=True, exist_ok=True)
        write_extxyz(member / "train.extxyz", [images[i] for i in idx])
        out = workdir / f"member{k}.model"
        finetune("naive", Path(foundation), member / "train.extxyz", Path(valid_file), len(idx), seed + k, out,
                 member / "train.json", member / "work", opts, recipe="matched", device=device, dtype=dtype,
                 log=log)  # in-process: a committee member is cheap
        log(f"committee member {k}: structures {idx.tolist()}")
        models.append(out)
    return models


def round_plan(budgets: Sequence[int]) -> list[tuple[int, int]]:
    """The rounds of uncertainty selection at the budget boundaries: ``[(n_train, n_pick), ...]`` =
    ``[(0, b_1), (b_1, b_2 - b_1), ...]`` for sorted budgets ``b_1 < b_2 < ...``.  Round 0 has no labels to
    train a committee on: its picks come from a label-free ranking (``first``)."""
    b = sorted({int(x) for x in budgets})
    if not b or b[0] <= 0:
        raise ValueError(f"budgets must be positive integers, got {list(budgets)}")
    return [(prev, cur - prev) for prev, cur in zip([0, *b[:-1]], b)]


def next_picks(ranking: Sequence[int], budgets: Sequence[int], *, disagreement: np.ndarray | None = None,
               first_ranking: Sequence[int] | None = None) -> tuple[int, int] | np.ndarray | None:
    """One pure step: the pool indices to label next, given the ranking picked (and labelled) so far.

    ``ranking`` must stop at a budget boundary.  Round 0 (empty ranking): the first ``b_1`` of
    ``first_ranking`` (e.g. :func:`rank_random` or :func:`rank_fps`).  Later rounds need ``disagreement`` (per
    pool structure) of a committee trained on exactly ``ranking``; without it the return value is
    ``(n_train, n_pick)``, saying which committee to train.  ``None`` when every budget is reached.
    """
    plan = round_plan(budgets)
    boundaries = [n_train for n_train, _ in plan]
    done = len(ranking)
    if done >= plan[-1][0] + plan[-1][1]:
        return None
    if done not in boundaries:
        raise ValueError(f"the ranking holds {done} structures, not at a budget boundary ({boundaries})")
    n_pick = plan[boundaries.index(done)][1]
    if done == 0:
        if first_ranking is None:
            raise ValueError("round 0 needs a label-free first_ranking")
        return np.asarray(first_ranking[:n_pick], dtype=int)
    if disagreement is None:
        return done, n_pick
    return pick_most_uncertain(disagreement, ranking, n_pick, tie_order=first_ranking)


def rank_uncertainty_rounds(pool: Sequence[Atoms], budgets: Sequence[int], label: Callable[[list[Atoms]], list[Atoms]],
                            foundation: str | Path, valid_file: str | Path, workdir: str | Path, *,
                            first_ranking: Sequence[int] | None = None, n_members: int = 3, epochs: int = 10,
                            seed: int = 0, reduce: str = "mean", complete: bool = True, params: dict | None = None,
                            device: str = "cpu", dtype: str = "float64", eval_dtype: str = "float64",
                            log: Callable[[str], None] = lambda s: None) -> dict:
    """The nested uncertainty ranking built round by round (:func:`round_plan`): label the picks with
    ``label`` (a list of pool structures -> the same structures labelled, e.g. EMT in process), train a
    committee on everything labelled so far, pick the next ``b_k - b_{k-1}`` most uncertain.  ``dtype``: the
    committee's training dtype; ``eval_dtype``: the disagreement's.

    ``first_ranking``: round 0's label-free order (default :func:`rank_random`).  ``complete``: append the
    rest of the pool after the last budget, most uncertain first by the last committee (the rounds' own
    order is only meaningful up to the largest budget).  Returns ``{"ranking": pool indices,
    "labelled": labelled structures in ranking order (up to the largest budget), "rounds": [{"n_train",
    "picks", "committee", "disagreement"}, ...]}`` and writes ``workdir/rounds.json``.
    """
    workdir = Path(workdir)
    first = rank_random(len(pool)) if first_ranking is None else np.asarray(first_ranking, dtype=int)
    ranking: list[int] = []
    labelled: list[Atoms] = []
    rounds = []
    disagreement = None
    for k, (n_train, n_pick) in enumerate(round_plan(budgets)):
        models: list[Path] = []
        if n_train == 0:
            picks = next_picks(ranking, budgets, first_ranking=first)
        else:
            train_file = workdir / f"round{k}" / "labelled.extxyz"
            write_extxyz(train_file, labelled)
            models = committee(foundation, train_file, valid_file, workdir / f"round{k}", n_members=n_members,
                               epochs=epochs, seed=seed + 1000 * k, params=params, device=device, dtype=dtype,
                               log=log)
            disagreement = force_disagreement(pool, models, reduce=reduce, device=device, dtype=eval_dtype)
            if np.ptp(disagreement) <= 1e-9:
                log(f"round {k}: the committee trained on {n_train} structure(s) does not disagree anywhere "
                    "(its members learnt the same thing): picks follow the label-free order")
            picks = next_picks(ranking, budgets, disagreement=disagreement, first_ranking=first)
        log(f"round {k}: trained on {n_train}, picks {picks.tolist()}")
        labelled.extend(label([pool[i] for i in picks]))
        ranking.extend(int(i) for i in picks)
        rounds.append({"n_train": n_train, "picks": picks, "committee": models,
                       "disagreement": disagreement if n_train else None})
    if complete and len(ranking) < len(pool):
        rest = (pick_most_uncertain(disagreement, ranking, len(pool) - len(ranking), tie_order=first)
                if disagreement is not None
                else np.asarray([i for i in first if i not in set(ranking)], dtype=int))
        ranking.extend(int(i) for i in rest)
    result = {"ranking": np.asarray(ranking, dtype=int), "labelled": labelled, "rounds": rounds}
    write_json(workdir / "rounds.json", {"ranking": result["ranking"], "budgets": sorted(budgets), "rounds": rounds})
    return result


# --------------------------------------------------------------------------------------------
# The workflow's selection stage
# --------------------------------------------------------------------------------------------
def select_series(pool_file: str | Path, out: str | Path, selection: str, *, budgets: Sequence[int],
                  settings: dict, seed: int = 0, foundation: str | Path | None = None,
                  valid_file: str | Path | None = None, label: Callable[[list[Atoms]], list[Atoms]] | None = None,
                  workdir: str | Path | None = None, device: str = "cpu", dtype: str = "float32",
                  log: Callable[[str], None] = print) -> np.ndarray:
    """Write the training series of ``selection``: the first ``max(budgets)`` pool structures in the order the
    selection picks them (``info["pool_index"]``, ``info["series_index"]``), and beside it (``.json``) the whole
    ranking and, for uncertainty, the first committee's median force disagreement over the pool (eV/Å: the
    recommendation's predictor); returns the ranking.

    ``settings``: the config's ``selection`` block (``fps_start``, ``committee_members``, ``committee_epochs``,
    ``disagreement``); ``label``: the in-process labeller the uncertainty rounds call."""
    pool = read_extxyz(pool_file)
    n = max(budgets)
    disagreement = None  # the first committee's median force disagreement over the pool (uncertainty)
    if selection == "random":
        ranking = rank_random(len(pool))
    elif selection == "fps":
        ranking = rank_fps(pool, foundation, seed=seed, start=settings["fps_start"], device=device)
    elif selection == "uncertainty":
        if label is None:
            raise ValueError("uncertainty selection labels in rounds: it needs an in-process labeller")
        result = rank_uncertainty_rounds(pool, budgets, label, foundation, valid_file, workdir,
                                         n_members=settings["committee_members"],
                                         epochs=settings["committee_epochs"], seed=seed,
                                         reduce=settings["disagreement"], dtype=dtype, log=log)
        ranking = result["ranking"]
        first = next((r["disagreement"] for r in result["rounds"] if r["disagreement"] is not None), None)
        disagreement = None if first is None else float(np.median(first))
    else:
        raise ValueError(f"unknown selection {selection!r}; choose from {SELECTIONS}")
    series = []
    for k, i in enumerate(ranking[:n]):
        atoms = pool[int(i)].copy()
        atoms.info.update(pool_index=int(i), series_index=k, selection=selection)
        series.append(atoms)
    write_extxyz(out, series)
    write_json(Path(out).with_suffix(".json"), {"selection": selection, "ranking": [int(i) for i in ranking],
                                                "median_disagreement": disagreement, "unit": "eV/Å"})
    log(f"{selection}: {n} of {len(pool)} pool structures, pool indices {[int(i) for i in ranking[:n]]}")
    return np.asarray(ranking)
