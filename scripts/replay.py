"""Snakemake adapter: the replay subset of one material (phononft.replay.select_replay)."""
from phononft.logs import rule_logger
from phononft.replay import select_replay

log = rule_logger(snakemake.log[0])
i, p = snakemake.input, snakemake.params
select_replay(i.pretraining, i.train, i.foundation, snakemake.output[0], num_samples=p.num_samples, seed=p.seed,
              dtype=p.dtype, log=log)
