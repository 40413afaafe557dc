"""``multihead``: MACE multihead fine-tuning, replaying the foundation's pretraining data through a second head.

Study: ``mace_run_train --multiheads_finetuning --pt_train_file <replay>`` (mace repeats the N structures up to
10 % of the replay set, so an epoch holds many more optimiser steps than naive's at small N; the steps are
recorded), the fine-tuned head extracted afterwards.  In process (matched): the heads share every block but
the readouts, as in MACE's multihead models; each optimiser step adds ``weight_pt_head`` times the loss of the
replay head on a slice of a ``replay_per_epoch`` sample of the replay file (drawn anew every epoch), so that
the number of steps is naive's.  The saved model is the fine-tuned head.
"""

from __future__ import annotations

from pathlib import Path

from ..mace_train import extract_head, foundation_options
from .base import Job, Option, Strategy


class Multihead(Strategy):
    name = "multihead"
    trains = "all weights, new head, with replay of the pretraining data through the foundation's head"
    color, marker, order = "#9467bd", "^", 4
    needs_replay = True
    options = (
        Option("num_samples_pt", "integer", 10000, "size of the material's replay set: pretraining structures of "
               "its elements selected once by farthest-point sampling (rules/replay.smk; mace's option name)",
               "structures", minimum=1),
        Option("weight_pt_head", "number", 1.0, "weight of the replay head's loss relative to the fine-tuning "
               "head's", minimum=0),
        Option("force_mh_ft_lr", "boolean", True, "study (mace_run_train): keep the configured learning rate and "
               "EMA; false: mace's own multihead setting (lr 1e-4, EMA decay 0.99999)"),
        Option("replay_per_epoch", "integer", 32, "matched (in process): replay structures drawn per epoch, spread "
               "over the epoch's optimiser steps", "structures", minimum=1),
    )

    def mace_options(self, job: Job, opts: dict) -> dict:
        if job.replay_file is None:
            raise ValueError("strategy multihead needs replay data: foundation.replay in the config")
        return {**foundation_options(job.foundation, multihead=True), "pt_train_file": str(Path(job.replay_file).resolve()),
                "force_mh_ft_lr": opts["force_mh_ft_lr"], "weight_pt_head": opts["weight_pt_head"],
                "num_samples_pt": opts["num_samples_pt"]}

    def finish_mace(self, trained: Path, out_model: Path) -> None:
        extract_head(trained, "Default", out_model)

    def adapt(self, model, opts: dict, ctx):
        from ..torch_train import Adapted, shared_trunk  # heavy (torch, mace): the registry is read at DAG build time

        if ctx.replay_set is None:
            raise ValueError("strategy multihead needs replay data: foundation.replay in the config")
        for p in model.parameters():
            p.requires_grad_(True)
        replay_head = shared_trunk(model, own=("readouts",))
        return Adapted(module=model, core=model, finalize=lambda: model, replay_module=replay_head,
                       replay_weight=opts["weight_pt_head"], replay_samples=opts["replay_per_epoch"],
                       extra_params=list(replay_head.readouts.parameters()),
                       record={"replay_structures": len(ctx.replay_set), "replay_per_epoch": opts["replay_per_epoch"],
                               "weight_pt_head": opts["weight_pt_head"]})


STRATEGY = Multihead()
