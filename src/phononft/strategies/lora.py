"""``lora``: mace-torch's equivariant LoRA (``mace_run_train --lora``; in process
``mace.modules.lora.inject_LoRAs`` / ``merge_lora_weights``), adapters merged into a plain MACE model."""

from __future__ import annotations

from pathlib import Path

from ..mace_train import foundation_options
from .base import Job, Option, Strategy


class Lora(Strategy):
    name = "lora"
    trains = "low-rank adapters on the equivariant linears and radial MLPs (mace-torch's LoRA), merged"
    color, marker, order = "#d62728", "P", 5
    options = (
        Option("lora_rank", "integer", 4, "rank of every adapter (mace --lora_rank)", minimum=1),
        Option("lora_alpha", "number", 1.0, "adapter scale numerator: update = alpha / rank x B A (mace --lora_alpha)",
               exclusive_minimum=0),
    )

    def mace_options(self, job: Job, opts: dict) -> dict:
        return {**foundation_options(job.foundation), "lora": True, "lora_rank": opts["lora_rank"],
                "lora_alpha": opts["lora_alpha"]}

    def adapt(self, model, opts: dict, ctx):
        from mace.modules.lora import inject_LoRAs, merge_lora_weights  # heavy (mace): registry read at DAG build

        from ..torch_train import Adapted  # heavy (torch, mace): as above

        inject_LoRAs(model, rank=opts["lora_rank"], alpha=opts["lora_alpha"])
        return Adapted(module=model, core=model, finalize=lambda: merge_lora_weights(model),
                       record={"lora_rank": opts["lora_rank"], "lora_alpha": opts["lora_alpha"]})

    def count_parameters(self, foundation: Path, out_model: Path, opts: dict) -> dict:
        """The adapters (mace_run_train's log counts every parameter as trainable) of the foundation, out of
        the adapted model's parameters (foundation + adapters, as the in-process trainer counts them)."""
        from mace.modules.lora import inject_LoRAs  # heavy (mace): the registry is read at DAG build time

        from ..torch_runtime import load_model  # heavy (torch, mace): as above

        model = inject_LoRAs(load_model(foundation), rank=opts["lora_rank"], alpha=opts["lora_alpha"])
        trainable = sum(p.numel() for n, p in model.named_parameters() if "lora" in n.lower())
        return {"trainable_parameters": int(trainable), "total_parameters": sum(p.numel() for p in model.parameters())}


STRATEGY = Lora()
