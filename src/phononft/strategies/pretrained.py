"""``pretrained``: zero-shot, the foundation model itself (nothing is trained)."""

from __future__ import annotations

from pathlib import Path

from ..io import link_or_copy
from .base import Job, Strategy


class Pretrained(Strategy):
    name = "pretrained"
    trains = "nothing: the foundation model, zero-shot"
    color, marker, order = "#7f7f7f", "o", 0
    trained = False

    def make(self, job: Job, out_model: Path) -> dict:
        """A hard link to the foundation (or a copy); its parameter count."""
        from ..torch_runtime import load_model  # heavy (torch, mace): the registry is read at DAG build time

        link_or_copy(job.foundation, out_model)
        total = sum(p.numel() for p in load_model(job.foundation).parameters())
        return {"trainable_parameters": 0, "total_parameters": int(total), "epochs_run": 0, "optimizer_steps": 0,
                "learning_rate": None, "wall_time_s": 0.0, "seconds_per_epoch": None, "peak_memory_mb": None}


STRATEGY = Pretrained()
