"""Foundation stage: the pretrained model every strategy starts from.

* Real world: ``foundation.model`` in the config points at a local MACE model file (e.g. MACE-MP-0b3
  medium) and ``foundation.replay`` at its pretraining data for multihead replay.  Nothing is downloaded.
* Embedded default: a small MACE is pretrained here on rattled crystals and random alloys of several
  elements, labelled by a *systematically softer* reference (``E(R) = E_EMT(R/s)``, see
  :class:`phononft.label.SoftenedCalculator`) -- the analogue of a foundation model trained on one
  functional and used against another.  Its pretraining set is kept beside the model for replay.
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Callable

import numpy as np
from ase import Atoms
from ase.build import bulk
from ase.data import atomic_numbers

from .io import copy_atomic, write_extxyz
from .label import label_structures, make_calculator
from .mace_train import base_options, run_mace_train

#: Reference lattice constants (Å) of fcc elements, used to scale generated crystals.
FCC_A = {"Cu": 3.61, "Au": 4.08, "Ag": 4.09, "Ni": 3.52, "Al": 4.05, "Pd": 3.89, "Pt": 3.92}


def pretraining_structures(elements: list[str], *, n_per_phase: int = 6, n_alloys_per_pair: int = 4,
                           rattle_std: float = 0.05, volume_strain: float = 0.10, seed: int = 0) -> list[Atoms]:
    """Rattled, strained fcc/bcc/sc crystals of each element and random fcc/bcc alloys of each pair."""
    rng = np.random.default_rng(seed)
    images: list[Atoms] = []

    def a_fcc(symbols):
        return float(np.mean([FCC_A.get(s, 3.8) for s in symbols]))

    def perturb(atoms: Atoms, tag: str) -> Atoms:
        eps = rng.uniform(-volume_strain / 3, volume_strain / 3)
        atoms = atoms.copy()
        atoms.set_cell(atoms.cell * (1 + eps), scale_atoms=True)
        atoms.positions += rng.normal(0, rattle_std, atoms.positions.shape)
        atoms.info["config_type"] = tag
        return atoms

    for el in elements:
        a = a_fcc([el])
        phases = {
            "fcc": bulk(el, "fcc", a=a, cubic=True) * (2, 2, 1),   # 16 atoms
            "bcc": bulk(el, "bcc", a=a * 0.794, cubic=True) * (2, 2, 2),  # same volume per atom
            "sc": bulk(el, "sc", a=a * 0.63) * (2, 2, 2),
        }
        for phase, cell in phases.items():
            for _ in range(n_per_phase if phase != "sc" else max(1, n_per_phase // 3)):
                images.append(perturb(cell, f"{el}-{phase}"))
    for el1, el2 in itertools.combinations(elements, 2):
        a = a_fcc([el1, el2])
        for k in range(n_alloys_per_pair):
            base = (bulk(el1, "fcc", a=a, cubic=True) * (2, 2, 1) if k % 2 == 0
                    else bulk(el1, "bcc", a=a * 0.794, cubic=True) * (2, 2, 2))
            x = rng.uniform(0.2, 0.8)
            symbols = np.where(rng.random(len(base)) < x, el2, el1)
            base.set_chemical_symbols(symbols.tolist())
            images.append(perturb(base, f"{el1}{el2}-alloy"))
    return images


def isolated_atom_energies(calc, elements: list[str]) -> dict[int, float]:
    """E0 of each element: the calculator's energy of one atom in a large box (eV)."""
    e0 = {}
    for el in elements:
        atom = Atoms(el, cell=[12, 12, 12], pbc=True)
        atom.calc = calc
        e0[atomic_numbers[el]] = float(atom.get_potential_energy())
    return e0


def build_pretraining_set(cfg: dict, log: Callable[[str], None] = print) -> tuple[list[Atoms], list[Atoms], dict]:
    """Labelled pretraining (train, valid) sets and E0s for the embedded foundation."""
    pcfg = cfg["pretrain"]
    calc = make_calculator(pcfg["calculator"], pcfg.get("kwargs"), pcfg["softening"])
    images = pretraining_structures(pcfg["elements"], n_per_phase=pcfg["n_per_phase"],
                                    n_alloys_per_pair=pcfg["n_alloys_per_pair"],
                                    rattle_std=pcfg["rattle_std"], volume_strain=pcfg["volume_strain"],
                                    seed=pcfg["seed"])
    labelled = label_structures(images, calc, source=f"softened x{pcfg['softening']}", log=lambda s: None)
    log(f"pretraining set: {len(labelled)} structures, {sum(len(a) for a in labelled)} atoms, "
        f"elements {pcfg['elements']}, reference {pcfg['calculator']} softened by s={pcfg['softening']}")
    rng = np.random.default_rng(pcfg["seed"] + 1)
    order = rng.permutation(len(labelled))
    n_valid = max(2, int(round(pcfg["valid_fraction"] * len(labelled))))
    valid = [labelled[i] for i in order[:n_valid]]
    train = [labelled[i] for i in order[n_valid:]]
    return train, valid, isolated_atom_energies(calc, pcfg["elements"])


def pretrain(train_file: Path, valid_file: Path, e0s: dict, out_model: Path, workdir: Path, cfg: dict,
             *, device: str = "auto", threads: int | None = None, log: Callable[[str], None] = print) -> dict:
    """Train the embedded foundation with ``mace_run_train``; copy the model to ``out_model``.

    Bit-reproducible for a given ``threads`` (default: this process's torch thread count, under Snakemake
    the rule's ``threads``); see :func:`phononft.mace_train.run_mace_train`."""
    pcfg = cfg["pretrain"]
    opts = base_options("foundation", workdir, train_file, valid_file, seed=pcfg["seed"], device=device,
                        dtype=cfg["dtype"])
    opts.update({"model": "ScaleShiftMACE", "E0s": str(e0s), "compute_stress": True})
    opts.update(pcfg["mace"])
    summary = run_mace_train(opts, workdir, log=log, threads=threads)
    copy_atomic(summary["model"], out_model)
    return summary


def pretrain_from_config(cfg: dict, model: Path, replay: Path, valid: Path, workdir: Path, *,
                         device: str = "auto", threads: int | None = None,
                         log: Callable[[str], None] = print) -> dict:
    """The embedded foundation end to end: label the pretraining set, keep it (``replay``, ``valid``),
    pretrain, write ``model``; return the training summary with the E0s and set sizes.  ``cfg``: the config's
    ``foundation.pretrain`` under ``"pretrain"`` and the training dtype under ``"dtype"`` (float32/float64).

    Every random draw (structures, their order, the valid split, mace's own seed) comes from
    ``pretrain.seed``; the training is deterministic for a given ``threads`` (see :func:`pretrain`)."""
    train_set, valid_set, e0s = build_pretraining_set(cfg, log=log)
    write_extxyz(replay, train_set)
    write_extxyz(valid, valid_set)
    summary = pretrain(Path(replay), Path(valid), e0s, Path(model), Path(workdir), cfg, device=device,
                       threads=threads, log=log)
    summary.update(e0s=e0s, n_train=len(train_set), n_valid=len(valid_set))
    return summary


def copy_foundation(model: Path, out_model: Path) -> None:
    """Real world: copy a local foundation model file into the results tree (a copy, not a link: Snakemake
    touches its output files, which would change the mtime of the user's own file through a link)."""
    model, out_model = Path(model), Path(out_model)  # the Snakemake adapter passes strings
    if not model.is_file():
        raise FileNotFoundError(f"foundation.model: {model} does not exist (download it once on a machine "
                                "with internet and point the config at the local file)")
    copy_atomic(model, out_model)
