"""Rattle stage: Monte Carlo rattled supercells (hiphive), seeded and nested.

One ordered *training series* of ``max(budgets)`` structures is drawn per material; the budget-``N``
training set is its first ``N`` structures, so curves over budget are paired comparisons.  A separate
*valid* split (early stopping) and a *test* split (reported errors), drawn with other seeds, are never
trained on.
"""

from __future__ import annotations

import numpy as np
from ase import Atoms
from ase.build import make_supercell

from .structures import check_distances, supercell_matrix

SPLIT_SEED_OFFSET = {"train": 0, "valid": 7919, "test": 15485}


def rattled_series(unit: Atoms, n: int, *, seed: int, supercell_min_length: float = 7.0,
                   rattle_std: float = 0.03, d_min: float = 1.8, n_iter: int = 10,
                   volume_strain: float = 0.03, min_distance: float = 1.2,
                   what: str = "structure") -> list[Atoms]:
    """``n`` rattled supercells of ``unit``.

    ``rattle_std`` is the target rms displacement (Å): hiphive's MC rattle applies its ``rattle_std`` at
    every one of ``n_iter`` iterations, so displacements grow about ``sqrt(n_iter)``-fold -- we pass
    ``rattle_std / sqrt(n_iter)``.  Each structure is also strained isotropically by a uniform random
    linear strain in ``[-volume_strain/3, +volume_strain/3]`` (so volumes vary by about ``±volume_strain``).
    """
    from hiphive.structure_generation import generate_mc_rattled_structures

    if n <= 0:
        return []
    sc = make_supercell(unit, supercell_matrix(unit, supercell_min_length))
    rng = np.random.default_rng(seed)
    strains = rng.uniform(-volume_strain / 3, volume_strain / 3, size=n)
    images = generate_mc_rattled_structures(sc, n, rattle_std / np.sqrt(n_iter), d_min,
                                            seed=int(seed), n_iter=n_iter)
    out = []
    for i, (atoms, eps) in enumerate(zip(images, strains)):
        atoms = atoms.copy()
        atoms.set_cell(atoms.cell * (1.0 + eps), scale_atoms=True)
        atoms.info = {"series_index": i, "linear_strain": float(eps), "seed": int(seed)}
        check_distances(atoms, min_distance, f"{what}, rattled structure {i}")
        out.append(atoms)
    return out


def make_split(unit: Atoms, split: str, n: int, *, seed: int, **kwargs) -> list[Atoms]:
    """The ``train`` or ``valid`` split: same recipe, independent random streams."""
    if split not in SPLIT_SEED_OFFSET:
        raise ValueError(f"unknown split {split!r}; expected one of {sorted(SPLIT_SEED_OFFSET)}")
    images = rattled_series(unit, n, seed=seed + SPLIT_SEED_OFFSET[split], **kwargs)
    for atoms in images:
        atoms.info["split"] = split
    return images
