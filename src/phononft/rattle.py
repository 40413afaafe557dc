"""Rattle stage: Monte Carlo rattled supercells (hiphive), seeded and nested.

One ordered *training series* of ``max(budgets)`` structures is drawn per material; the budget-``N``
training set is its first ``N`` structures, so curves over budget are paired comparisons.  A separate
*valid* split (early stopping) and a *test* split (reported errors), drawn with other seeds, are never
trained on.

A *pool* (:func:`make_pool`) is the training series drawn longer than any budget, from which a selection
strategy (:mod:`phononft.selection`) picks the structures to label; without cell strain its first ``N``
structures are the training series' first ``N``.  With ``cell_strain > 0`` every pool structure is also
sheared and stretched by a random symmetric strain, so that training data carry the shear response.
"""

from __future__ import annotations

import numpy as np
from ase import Atoms
from ase.build import make_supercell
from hiphive.structure_generation import generate_mc_rattled_structures

from .structures import check_distances, supercell_matrix

SPLIT_SEED_OFFSET = {"train": 0, "valid": 7919, "test": 15485}
#: Offset between the training pools of consecutive seeds (a prime far above the split offsets): seed k's pool
#: draws from ``rattle.seed + k * TRAIN_SEED_STRIDE``, seed 0's is the former training series.
TRAIN_SEED_STRIDE = 104729


def train_seed(base_seed: int, seed: int) -> int:
    """The random seed of seed ``seed``'s training pool (each seed draws its own rattled series)."""
    return int(base_seed) + TRAIN_SEED_STRIDE * int(seed)


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


def random_cell_strain(rng: np.random.Generator, amplitude: float) -> np.ndarray:
    """A random symmetric strain tensor (3x3, dimensionless) whose Voigt components
    ``(e_xx, e_yy, e_zz, gamma_yz, gamma_xz, gamma_xy)`` (engineering shears ``gamma_ij = 2 e_ij``) are each
    uniform in ``[-amplitude, +amplitude]``."""
    v = rng.uniform(-amplitude, amplitude, size=6)
    return np.array([[v[0], v[5] / 2, v[4] / 2],
                     [v[5] / 2, v[1], v[3] / 2],
                     [v[4] / 2, v[3] / 2, v[2]]])


def make_pool(unit: Atoms, n: int, *, seed: int, cell_strain: float = 0.0, min_distance: float = 1.2,
              **rattle_kwargs) -> list[Atoms]:
    """``n`` candidate structures for selection: the training series' recipe (:func:`rattled_series`, same
    seed, so with ``cell_strain=0`` the pool's first ``N`` are exactly the budget-``N`` training set).

    ``cell_strain > 0``: each structure is additionally deformed, atoms scaled with the cell, by
    ``cell <- cell @ (1 + eps)`` with ``eps`` a random symmetric strain (:func:`random_cell_strain`: each Voigt
    component uniform in ``[-cell_strain, +cell_strain]``, shears as engineering strains), drawn from its own
    random stream so the rattles and volume strains stay those of the plain pool.  ``info``: ``pool_index``,
    ``series_index``, ``linear_strain`` (the isotropic part), ``cell_strain_voigt`` (6 floats, zeros when
    none) and ``seed``.
    """
    if cell_strain < 0:
        raise ValueError(f"cell_strain must be >= 0, got {cell_strain}")
    what = rattle_kwargs.pop("what", "pool structure")
    images = rattled_series(unit, n, seed=seed, min_distance=min_distance, what=what, **rattle_kwargs)
    rng = np.random.default_rng([int(seed), 104729])  # independent of the rattle and volume streams
    for i, atoms in enumerate(images):
        voigt = np.zeros(6)
        if cell_strain > 0:
            eps = random_cell_strain(rng, cell_strain)
            atoms.set_cell(atoms.cell[:] @ (np.eye(3) + eps), scale_atoms=True)
            voigt = np.array([eps[0, 0], eps[1, 1], eps[2, 2], 2 * eps[1, 2], 2 * eps[0, 2], 2 * eps[0, 1]])
            check_distances(atoms, min_distance, f"{what} {i} (cell strain {cell_strain})")
        atoms.info["pool_index"] = i
        atoms.info["cell_strain_voigt"] = voigt
    return images


def make_split(unit: Atoms, split: str, n: int, *, seed: int, **kwargs) -> list[Atoms]:
    """The ``train`` or ``valid`` split: same recipe, independent random streams."""
    if split not in SPLIT_SEED_OFFSET:
        raise ValueError(f"unknown split {split!r}; expected one of {sorted(SPLIT_SEED_OFFSET)}")
    images = rattled_series(unit, n, seed=seed + SPLIT_SEED_OFFSET[split], **kwargs)
    for atoms in images:
        atoms.info["split"] = split
    return images
