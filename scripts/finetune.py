"""Snakemake adapter: train one model (phononft.finetune)."""
from pathlib import Path

import torch

from phononft.finetune import finetune
from phononft.runlog import rule_logger

log = rule_logger(snakemake.log[0])
torch.set_num_threads(snakemake.threads)
w, i, o, p = snakemake.wildcards, snakemake.input, snakemake.output, snakemake.params
settings = {**p.settings, "threads": snakemake.threads}
record = finetune(w.strategy, Path(i.foundation), Path(i.train), Path(i.valid), int(w.budget), int(w.seed),
                  Path(o.model), Path(o.record), Path(p.workdir), settings, device=p.device, dtype=p.dtype,
                  replay_file=Path(i.replay) if i.replay else None, log=log)
log(f"{w.strategy} n={w.budget}: {record.get('epochs_run')} epochs, "
    f"{record.get('trainable_parameters')}/{record.get('total_parameters')} parameters trained")
