"""The torch side of training, shared by the in-process trainer and the Equitrain engine: dtype and
determinism contexts, model files (loaded and saved atomically), peak memory, the non-finite-loss error."""

from __future__ import annotations

import contextlib
import os
import resource
import tempfile
from pathlib import Path

# importing mace sets TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD, needed to unpickle e3nn constants with torch>=2.6
import mace  # noqa: F401  (import order matters)
import torch


class NonFiniteLossError(FloatingPointError):
    """Raised when a training or validation loss becomes NaN/inf; nothing is saved then."""


@contextlib.contextmanager
def default_dtype(dtype: torch.dtype):
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        yield
    finally:
        torch.set_default_dtype(previous)


@contextlib.contextmanager
def deterministic_torch(threads: int | None = None, enabled: bool = True):
    """Deterministic torch while training, everything restored on exit:

    * ``torch.use_deterministic_algorithms`` (``warn_only``: an operation without a deterministic
      implementation warns rather than fails): the CPU backward of ``x[idx]`` (MACE's message passing) otherwise
      adds floats atomically from several threads in a run-dependent order;
    * TorchScript's graph executor without its optimising passes (``torch.jit.optimized_execution``):
      e3nn's scripted tensor products otherwise round differently in a process's first two calls
      (profiling runs) than in later ones, so a model trained second in a process differed from the same
      model trained first.  (A plan optimised *before* entering stays in use: train inside this.)
    * if given, torch's thread count (1 and 2 threads give the same bits; 3 and more another, fixed, result).
    """
    previous = (torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled(),
                torch.get_num_threads())
    torch.use_deterministic_algorithms(enabled, warn_only=True)
    if threads:
        torch.set_num_threads(int(threads))
    try:
        with torch.jit.optimized_execution(not enabled):
            yield
    finally:
        torch.use_deterministic_algorithms(previous[0], warn_only=previous[1])
        torch.set_num_threads(previous[2])


def load_model(path: str | Path, device: str | torch.device = "cpu") -> torch.nn.Module:
    """Load a pickled MACE model (``torch.save(model)``)."""
    return torch.load(str(path), map_location=device, weights_only=False)


def peak_memory_mb(device: torch.device) -> tuple[float, str]:
    """Peak memory (MiB) of this training and what was measured: CUDA's allocator peak or the process RSS."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20, "torch.cuda.max_memory_allocated"
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0, "process peak RSS"


def save_model_atomic(model: torch.nn.Module, out_model: str | Path) -> Path:
    """``torch.save(model)`` into a temporary folder next to the target, then ``os.replace``."""
    out = Path(out_model)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp_dir = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent))
    try:
        tmp = tmp_dir / out.name  # same base name: the archive inside the file is named as usual
        torch.save(model, tmp)
        os.replace(tmp, out)
    finally:
        with contextlib.suppress(FileNotFoundError):
            (tmp_dir / out.name).unlink()
        tmp_dir.rmdir()
    return out
