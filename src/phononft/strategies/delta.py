"""``delta``: Equitrain's delta fine-tuning, every weight as ``w0 + delta`` (deltas from zero) with AdamW's
decoupled weight decay on the deltas, a pull back to the foundation.  Study: the Equitrain package
(``wrapper="delta"``); in process: plain weights with the same decay applied to ``w - w0``
(:class:`phononft.l2sp.DeltaDecay`, identical steps without the reparametrisation)."""

from __future__ import annotations

from .base import Option, Strategy


class Delta(Strategy):
    name = "delta"
    trains = "all weights as foundation + delta, decoupled weight decay pulling the deltas to zero (Equitrain)"
    color, marker, order = "#e377c2", "p", 7
    options = (Option("delta_decay", "number", 0.1, "decoupled weight decay on the deltas: each step delta <- "
                      "(1 - lr x delta_decay) x delta before AdamW's update (at lr 0.005 and 0.1 a delta no gradient "
                      "holds halves in ~1400 steps); replaces weight_decay", minimum=0),)

    def study_tool(self, opts: dict) -> str:
        return "equitrain"

    def equitrain_options(self, opts: dict) -> dict:
        return {"wrapper": "delta", "weight_decay": opts["delta_decay"]}

    def adapt(self, model, opts: dict, ctx):
        from ..l2sp import DeltaDecay  # heavy (torch): the registry is read at DAG build time
        from ..torch_train import Adapted  # heavy (torch, mace): as above

        adapted = Adapted.everything(model)
        adapted.before_step = DeltaDecay(model, opts["delta_decay"])
        adapted.weight_decay = 0.0
        adapted.record = {"delta_decay": opts["delta_decay"]}
        return adapted


STRATEGY = Delta()
