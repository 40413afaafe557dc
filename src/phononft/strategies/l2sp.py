"""``l2sp``: full fine-tuning plus an L2-SP penalty toward the foundation's weights, normalised per parameter
(:class:`phononft.l2sp.L2SPPenalty`); the in-process trainer is its tool under both recipes."""

from __future__ import annotations

from .base import Option, Strategy


class L2SP(Strategy):
    name = "l2sp"
    trains = "all weights, with an L2-SP penalty pulling toward the pretrained weights"
    color, marker, order = "#2ca02c", "h", 8
    options = (Option("l2sp_lambda", "number", 50.0, "penalty = l2sp_lambda x mean over the trained scalar weights of "
                      "(w - w0)^2, added to the loss: at 50 a change of 0.01 rms costs 0.005 of loss, for any model "
                      "size (50 is the former sum penalty 1e-3 on the demo foundation's 46,560 weights)", minimum=0),)

    def study_tool(self, opts: dict) -> str:
        return "in-process"

    def adapt(self, model, opts: dict, ctx):
        from ..l2sp import L2SPPenalty  # heavy (torch): the registry is read at DAG build time
        from ..torch_train import Adapted  # heavy (torch, mace): as above

        adapted = Adapted.everything(model)
        adapted.penalty = L2SPPenalty(model, opts["l2sp_lambda"])
        adapted.record = {"l2sp_lambda": opts["l2sp_lambda"]}
        return adapted


STRATEGY = L2SP()
