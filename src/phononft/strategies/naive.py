"""``naive``: full fine-tuning, every foundation weight trains (study: ``mace_run_train --foundation_model``)."""

from __future__ import annotations

from ..mace_train import foundation_options
from .base import Job, Strategy


class Naive(Strategy):
    name = "naive"
    trains = "all foundation weights (full fine-tuning)"
    color, marker, order = "#1f77b4", "D", 2

    def mace_options(self, job: Job, opts: dict) -> dict:
        return foundation_options(job.foundation)

    def adapt(self, model, opts: dict, ctx):
        from ..torch_train import Adapted  # heavy (torch, mace): the registry is read at DAG build time

        return Adapted.everything(model)


STRATEGY = Naive()
