"""Snakemake adapter: pretrain the embedded demo foundation (phononft.foundation)."""
from pathlib import Path

from phononft.foundation import build_pretraining_set, pretrain
from phononft.io import write_extxyz, write_json
from phononft.runlog import rule_logger

log = rule_logger(snakemake.log[0])
cfg = {**snakemake.params.settings, "dtype": snakemake.params.dtype}
out = snakemake.output
train, valid, e0s = build_pretraining_set(cfg, log=log)
write_extxyz(out.replay, train)
write_extxyz(out.valid, valid)
work = Path(out.model).parent / "work"
summary = pretrain(Path(out.replay), Path(out.valid), e0s, Path(out.model), work, cfg,
                   device=snakemake.params.device, log=log)
summary.update(e0s=e0s, n_train=len(train), n_valid=len(valid))
write_json(out.record, summary)
