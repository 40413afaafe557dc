"""Replay stage: per material, the pretraining data that multihead fine-tuning replays; and the general set.

mace-torch replays its ``--pt_train_file`` whole when that is a local file (``num_samples_pt`` is honoured only
for its own MPtrj download): MACE-MP-0b3 fine-tuning would replay ~1.5 M structures per epoch.  So one job per
material selects the replay set once, as mace-torch's own fine-tuning selection does
(``mace.cli.fine_tuning_select``): structures made only of the material's elements, at most ``num_samples``
of them, chosen by farthest-point sampling on the foundation's MACE descriptors.  Multihead trains on that file.

The *general* set is where every model's forgetting is measured (energy and force errors on the foundation's
kind of data, not the material's): the foundation's pretraining validation split when the workflow pretrained
it (the demo), else a seeded random sample of the foundation's pretraining data (``foundation.replay``).
"""

from __future__ import annotations

import contextlib
import tempfile
from pathlib import Path
from typing import Callable

import numpy as np

from .io import read_extxyz, write_extxyz


def material_elements(train_file: str | Path) -> list[str]:
    return sorted({s for atoms in read_extxyz(train_file) for s in atoms.get_chemical_symbols()})


def select_replay(pretraining: str | Path, train_file: str | Path, foundation: str | Path, out: str | Path, *,
                  num_samples: int, seed: int = 0, device: str = "cpu", dtype: str = "float64",
                  log: Callable[[str], None] = print) -> int:
    """Write to ``out`` at most ``num_samples`` pretraining structures made only of ``train_file``'s elements,
    selected by farthest-point sampling on the ``foundation``'s descriptors (mace-torch's
    ``fine_tuning_select.select_samples``: element filter "combinations", no random padding with other
    elements).  Returns the number written; raises naming the elements when no structure qualifies."""
    from mace.cli.fine_tuning_select import (  # heavy (torch, mace: ~7 s); general_set does without
        FilteringType,
        SelectionSettings,
        SubselectType,
        filter_atoms,
        select_samples,
    )

    out = Path(out).resolve()  # absolute: mace runs in a scratch working directory
    elements = material_elements(train_file)
    n_match = sum(filter_atoms(a, elements, FilteringType.COMBINATIONS) for a in read_extxyz(pretraining))
    if n_match == 0:
        raise ValueError(f"no pretraining structure in {pretraining} is made of {', '.join(elements)} only: "
                         "multihead has nothing to replay")
    # fewer matching structures than asked for: all of them (mace's FPS needs n <= the pool)
    num = None if n_match <= num_samples else int(num_samples)
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out.parent, prefix=".replay-") as scratch:
        settings = SelectionSettings(
            configs_pt=str(Path(pretraining).resolve()), output=str(Path(scratch) / "replay.xyz"),
            configs_ft=str(Path(train_file).resolve()), num_samples=num, subselect=SubselectType.FPS,
            model=str(Path(foundation).resolve()), device=device, default_dtype=dtype,
            filtering_type=FilteringType.COMBINATIONS, allow_random_padding=False, seed=int(seed))
        with contextlib.chdir(scratch):  # mace writes descriptor files into the working directory
            select_samples(settings)
        selected = read_extxyz(Path(scratch) / "replay.xyz")
    for atoms in selected:  # labels only, no descriptors or selection metadata
        for key in [k for k in atoms.info if k.startswith("mace_")]:
            del atoms.info[key]
    write_extxyz(out, selected)
    log(f"replay: {len(selected)} of the pretraining structures made of {'/'.join(elements)} (at most "
        f"{num_samples}, farthest-point sampling on the foundation's descriptors)")
    return len(selected)


def general_set(out: str | Path, *, valid: str | Path | None = None, pretraining: str | Path | None = None,
                n_samples: int = 100, seed: int = 0, log: Callable[[str], None] = print) -> int:
    """The general set: ``valid`` (the foundation's own validation split) when given, else ``n_samples``
    structures of ``pretraining`` (seeded random choice)."""
    if valid is not None:
        general = read_extxyz(valid)
        source = f"the foundation's validation split {valid}"
    else:
        pool = read_extxyz(pretraining)
        pick = np.random.default_rng(seed).choice(len(pool), size=min(n_samples, len(pool)), replace=False)
        general = [pool[i] for i in sorted(pick.tolist())]
        source = f"a random sample of {pretraining}"
    write_extxyz(out, general)
    log(f"general set for forgetting: {len(general)} structures, {source}")
    return len(general)
