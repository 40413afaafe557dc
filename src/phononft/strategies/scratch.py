"""``scratch``: a freshly initialised MACE of the foundation's architecture, trained on the N structures only
(study: ``mace_run_train`` with the foundation's hyperparameters; in process: the foundation's class rebuilt
from ``mace.tools.scripts_utils.extract_config_mace_model``, with E0s, scale, shift and average neighbour count
from the training data, as mace_run_train computes them)."""

from __future__ import annotations

import numpy as np

from ..mace_train import architecture_of
from .base import Job, Option, Strategy


class Scratch(Strategy):
    name = "scratch"
    trains = "all weights of a freshly initialised MACE (the foundation's architecture), target data only"
    color, marker, order = "#8c564b", "s", 1
    needs_foundation_elements = False
    from_foundation = False
    options = (Option("E0s", "string", "average", "isolated-atom energies: average (least squares on the N training "
                      "structures, mace's) or foundation (the foundation's)", enum=("average", "foundation")),)

    def check_config(self, opts: dict, recipe: str) -> str | None:
        if recipe == "study" and opts["E0s"] == "foundation":
            return "E0s foundation: mace_run_train (recipe study) fits E0s itself; use recipe matched or E0s average"
        return None

    def mace_options(self, job: Job, opts: dict) -> dict:
        from ..torch_runtime import load_model  # heavy (torch, mace): the registry is read at DAG build time

        if (problem := self.check_config(opts, "study")) is not None:
            raise ValueError(f"scratch: {problem}")
        return {**architecture_of(load_model(job.foundation)), "E0s": opts["E0s"]}

    def adapt(self, model, opts: dict, ctx):
        import torch  # heavy (torch, mace, below too): the registry is read at DAG build time
        from mace.data.utils import compute_average_E0s  # heavy
        from mace.modules.utils import compute_avg_num_neighbors, compute_mean_rms_energy_forces  # heavy
        from mace.tools.scripts_utils import extract_config_mace_model  # heavy

        from ..torch_train import Adapted  # heavy

        config = extract_config_mace_model(model)
        if "error" in config:
            raise ValueError(f"scratch: {config['error']}")
        if opts["E0s"] == "average":
            e0 = compute_average_E0s(ctx.train_configs, ctx.z_table)
            config["atomic_energies"] = np.array([e0[z] for z in ctx.z_table.zs])
        loader = ctx.loader(shuffle=False)
        mean, rms = compute_mean_rms_energy_forces(loader, config["atomic_energies"])
        config.update(atomic_inter_shift=mean, atomic_inter_scale=rms,
                      avg_num_neighbors=compute_avg_num_neighbors(loader))
        fresh = type(model)(**config).to(torch.get_default_dtype())
        return Adapted(module=fresh, core=fresh, finalize=lambda: fresh, record={"E0s": opts["E0s"]})


STRATEGY = Scratch()
