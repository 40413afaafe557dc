"""Download stage: the real-world inputs named in the config (the foundation model file and its replay data)
when their file names are known ones, for machines with internet.  Once the files exist nothing is
downloaded; offline, the job fails saying where to get the file."""

from __future__ import annotations

import os
import shutil
import urllib.request
from typing import Callable

from .io import atomic_path

#: Known download locations by file name (mace-torch: ``mace.calculators.foundations_models.mace_mp_urls``
#: and ``mace.tools.multihead_tools.assemble_replay_data``).
DOWNLOAD_URLS = {
    "mace-mp-0b3-medium.model":
        "https://github.com/ACEsuit/mace-mp/releases/download/mace_mp_0b3/mace-mp-0b3-medium.model",
    "mace-mpa-0-medium.model":
        "https://github.com/ACEsuit/mace-mp/releases/download/mace_mpa_0/mace-mpa-0-medium.model",
    "2023-12-03-mace-128-L1_epoch-199.model":
        "https://github.com/ACEsuit/mace-mp/releases/download/mace_mp_0/2023-12-03-mace-128-L1_epoch-199.model",
    "mp_traj_combined.xyz":
        "https://github.com/ACEsuit/mace-foundations/releases/download/mace_mp_0b/mp_traj_combined.xyz",
}


def known_downloads(foundation: dict) -> dict[str, tuple[str, str]]:
    """``{"model" | "replay": (local path, url)}`` for the foundation files whose names are known."""
    return {key: (foundation[key], DOWNLOAD_URLS[os.path.basename(foundation[key])])
            for key in ("model", "replay")
            if foundation[key] and os.path.basename(foundation[key]) in DOWNLOAD_URLS}


def download(url: str, out: str, *, log: Callable[[str], None] = print) -> None:
    """Download ``url`` to ``out`` atomically (never a half-written file)."""
    log(f"downloading {url} -> {out}")
    try:
        with urllib.request.urlopen(url, timeout=60) as response, atomic_path(out) as tmp, open(tmp, "wb") as fh:
            shutil.copyfileobj(response, fh, length=1 << 20)
    except OSError as exc:
        raise RuntimeError(f"cannot download {url} ({exc}); on a machine without internet, download it "
                           f"elsewhere and copy it to {out} (README, section 10.1)") from exc
    log(f"done: {out}")
