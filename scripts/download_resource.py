"""Snakemake adapter: download one known input file (foundation model, replay data) atomically."""
import shutil
import urllib.request

from phononft.io import atomic_path
from phononft.runlog import rule_logger

log = rule_logger(snakemake.log[0])
url, out = snakemake.params.url, snakemake.output[0]
log(f"downloading {url} -> {out}")
try:
    with urllib.request.urlopen(url, timeout=60) as response, atomic_path(out) as tmp, open(tmp, "wb") as fh:
        shutil.copyfileobj(response, fh, length=1 << 20)
except OSError as exc:
    raise RuntimeError(f"cannot download {url} ({exc}); on a machine without internet, download it elsewhere "
                       f"and copy it to {out} (README: foundation model)") from exc
log(f"done: {out}")
