"""``equitrain``: the study's framework, Equitrain's LoRA on every ``*weight`` matrix (MACE's radial MLPs), rank a
fraction of each matrix's, merged.  Study: the Equitrain package itself (``engine: package``,
:func:`phononft.equitrain_engine.train_with_equitrain`) or the same adapters through peft in the in-process
trainer (``engine: peft``, :mod:`phononft.peft_lora`; both adapt the same tensors with the same ranks); matched:
peft in the in-process trainer."""

from __future__ import annotations

from .base import Option, Strategy


class Equitrain(Strategy):
    name = "equitrain"
    trains = "low-rank adapters on the radial-MLP weights (Equitrain's LoRA), merged"
    color, marker, order = "#ff7f0e", "X", 6
    options = (
        Option("rank_fraction", "number", 0.25, "adapter rank as a fraction of each matrix's rank: "
               "ceil(rank_fraction x min(out, in)) (Equitrain's)", exclusive_minimum=0, maximum=1),
        Option("engine", "string", "package", "study recipe: package (the Equitrain package's trainer) or peft (the "
               "same adapters through peft in the in-process trainer); the matched recipe always uses peft in process",
               enum=("package", "peft")),
    )

    def study_tool(self, opts: dict) -> str:
        return "equitrain" if opts["engine"] == "package" else "in-process"

    def equitrain_options(self, opts: dict) -> dict:
        return {"wrapper": "lora", "rank_fraction": opts["rank_fraction"], "weight_decay": opts["weight_decay"]}

    def adapt(self, model, opts: dict, ctx):
        from .. import peft_lora  # heavy (peft, torch): the registry is read at DAG build time
        from ..torch_train import Adapted  # heavy (torch, mace): as above

        wrapped = peft_lora.wrap_lora(model, rank_fraction=opts["rank_fraction"], generator=ctx.generator)
        targets = {t.name: {"shape": list(t.shape), "rank": t.rank, "scale": t.scale} for t in wrapped.lora_targets}
        return Adapted(module=wrapped, core=wrapped.base_model.model, finalize=lambda: peft_lora.merge_lora(wrapped),
                       record={"lora": {"rank_fraction": opts["rank_fraction"], "targets": targets}})


STRATEGY = Equitrain()
