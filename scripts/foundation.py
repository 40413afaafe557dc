"""Snakemake adapter: pretrain the embedded demo foundation (phononft.foundation)."""
from pathlib import Path

from phononft.foundation import pretrain_from_config
from phononft.io import write_json
from phononft.logs import rule_logger

log = rule_logger(snakemake.log[0])
out = snakemake.output
cfg = {"pretrain": snakemake.params.settings, "dtype": snakemake.params.dtype}
summary = pretrain_from_config(cfg, Path(out.model), Path(out.replay), Path(out.valid),
                               Path(out.model).parent / "work", device=snakemake.params.device,
                               threads=snakemake.threads, log=log)  # 1 or 2 threads: the same bits
write_json(out.record, summary)
