"""``frozen``: frozen transfer learning, MACE's freeze levels (``mace_run_train --freeze``; in process the same
function of mace-torch freezes the blocks)."""

from __future__ import annotations

from argparse import Namespace
from pathlib import Path

from ..mace_train import LR_FACTORS_NONE, foundation_options
from .base import Job, Option, Strategy


def apply_freeze(model, level: int) -> None:
    """Freeze ``model``'s blocks as ``mace_run_train --freeze level`` does (its own
    ``get_params_options``: level >= 1 the embedding, >= 5 + the interactions, >= 6 + the products, >= 7 + the
    readouts), leaving the rest trainable."""
    from mace.tools.scripts_utils import get_params_options  # heavy (mace): the registry is read at DAG build time

    for p in model.parameters():
        p.requires_grad_(True)
    get_params_options(Namespace(lr_params_factors=LR_FACTORS_NONE, freeze=level, lr=1.0, weight_decay=0.0,
                                 amsgrad=True, beta=0.9), model)


class Frozen(Strategy):
    name = "frozen"
    trains = "the blocks above MACE's freeze level only (default: products and readouts)"
    color, marker, order = "#17becf", "v", 3
    options = (Option("freeze", "integer", 5, "MACE's freeze level (mace_run_train --freeze, a threshold): 1-4 the "
                      "embedding, 5 + the interactions, 6 + the products, 7 everything frozen",
                      minimum=1, maximum=7),)

    def mace_options(self, job: Job, opts: dict) -> dict:
        return {**foundation_options(job.foundation), "freeze": opts["freeze"]}

    def adapt(self, model, opts: dict, ctx):
        from ..torch_train import Adapted  # heavy (torch, mace): the registry is read at DAG build time

        apply_freeze(model, opts["freeze"])
        if not any(p.requires_grad for p in model.parameters()):
            raise ValueError(f"freeze level {opts['freeze']} leaves nothing to train")
        return Adapted(module=model, core=model, finalize=lambda: model, record={"freeze": opts["freeze"]})

    def count_parameters(self, foundation: Path, out_model: Path, opts: dict) -> dict:
        from ..torch_runtime import load_model  # heavy (torch, mace): as above

        model = load_model(foundation)
        apply_freeze(model, opts["freeze"])
        return {"trainable_parameters": sum(p.numel() for p in model.parameters() if p.requires_grad),
                "total_parameters": sum(p.numel() for p in model.parameters())}


STRATEGY = Frozen()
