"""Reuse of finished models: one job trains or evaluates every model of a material x strategy; a model
finished by an earlier, failed run of the job is kept with a fingerprint of its settings, inputs and code and
reused instead of recomputed (:func:`reuse_or_run`); failures of single models are collected (:func:`run_models`)."""

from __future__ import annotations

import hashlib
import json
import shutil
import traceback
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Callable, Sequence

from .io import link_or_copy, write_text


def run_models(models: Sequence, run_one: Callable[[object], object], *, what: str,
               log: Callable[[str], None] = print) -> list:
    """``run_one(model)`` for every model of one job (a finetune/evaluate job covers every budget and seed of
    a material x strategy, so that the paper matrix stays a DAG Snakemake builds in seconds).  A failing
    model does not stop the others: each is tried, each failure logged with its traceback, and one error
    naming all failed models is raised at the end (Snakemake then removes the job's outputs; the finished
    models are kept by :func:`reuse_or_run` and not recomputed by the rerun)."""
    results, failed = [], []
    for k, model in enumerate(models, 1):
        log(f"{what}: {model} ({k}/{len(models)})")
        try:
            results.append(run_one(model))
        except Exception as exc:  # noqa: BLE001 - reported below, with the model it belongs to
            failed.append((model, f"{type(exc).__name__}: {exc}"))
            log(f"{what}: {model} FAILED: {type(exc).__name__}: {exc}\n{traceback.format_exc()}")
    if failed:
        detail = "; ".join(f"{m}: {msg}" for m, msg in failed)
        raise RuntimeError(f"{what}: {len(failed)} of {len(models)} models failed ({detail})")
    return results


def file_fingerprint(path: str | Path, *, hash_limit: int = 256 * 2**20) -> str:
    """SHA-256 of a file's content; for files over ``hash_limit`` bytes (e.g. a replay set of gigabytes)
    size and modification time instead."""
    path = Path(path)
    st = path.stat()
    if st.st_size > hash_limit:
        return f"size={st.st_size},mtime_ns={st.st_mtime_ns}"
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(2**20), b""):
            h.update(chunk)
    return h.hexdigest()


def reuse_or_run(outputs: Sequence[str | Path], key: dict, run: Callable[[], object], *, store: str | Path,
                 log: Callable[[str], None] = print) -> bool:
    """Produce ``outputs`` (files of distinct names) with ``run()``, unless an earlier run with the same
    ``key`` (settings and input fingerprints, JSON-able) left them in ``store``: then they are linked back and
    ``run`` is skipped.  After a run, the outputs are hard-linked into ``store`` (no extra disk) with the key,
    so that a model finished by a job that failed later (Snakemake removes all outputs of a failed job) is
    not recomputed.  ``store`` must lie outside the job's outputs.  Returns True when ``run`` ran."""
    outputs = [Path(o) for o in outputs]
    store = Path(store)
    key_file = store / "key.json"
    text = json.dumps(key, sort_keys=True, default=str)
    kept = [store / o.name for o in outputs]
    if key_file.is_file() and key_file.read_text() == text and all(f.is_file() for f in kept):
        for f, o in zip(kept, outputs):
            link_or_copy(f, o)
        log(f"{outputs[0].parent}: finished by an earlier run with the same settings and inputs, reused "
            f"(kept in {store})")
        return False
    shutil.rmtree(store, ignore_errors=True)
    run()
    for o, f in zip(outputs, kept):
        link_or_copy(o, f)
    write_text(key_file, text)  # written last: a half-kept folder is never taken for a finished one
    return True


def code_fingerprint() -> dict:
    """Versions a reused result must share with the code now: phononft's own source (every module, hashed, so
    that an edit counts too), mace-torch and torch."""
    h = hashlib.sha256()
    package = Path(__file__).parent
    for f in sorted(package.rglob("*.py")):
        h.update(f.relative_to(package).as_posix().encode())
        h.update(f.read_bytes())
    out = {"phononft_source": h.hexdigest()}
    for dist in ("mace-torch", "torch"):
        try:
            out[dist] = version(dist)
        except PackageNotFoundError:
            out[dist] = None
    return out
