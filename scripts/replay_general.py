"""Snakemake adapter: the general set of the forgetting errors (phononft.replay.general_set)."""
from phononft.logs import rule_logger
from phononft.replay import general_set

log = rule_logger(snakemake.log[0])
i, p = snakemake.input, snakemake.params
general_set(snakemake.output[0], valid=getattr(i, "valid", None), pretraining=getattr(i, "pretraining", None),
            n_samples=p.n_samples, seed=p.seed, log=log)
