"""Snakemake adapter: the tasks of one step of the reference's computation, planned from the answers of the
steps before it (phononft.reference.step_tasks)."""
from phononft.io import read_extxyz
from phononft.logs import rule_logger
from phononft.properties import STEPS
from phononft.reference import step_tasks, write_step_tasks

log = rule_logger(snakemake.log[0])
i, step = snakemake.input, int(snakemake.wildcards.step)
answers = [list(getattr(i, f"step{k}")) for k in range(step)]
tasks = step_tasks(read_extxyz(i.structure)[0], snakemake.params.settings, step, answers,
                   precomputed_path=getattr(i, "precomputed", None))
log(f"step {step} ({STEPS[step]}): {len(tasks)} calculations ({sorted({a.info['task'] for a in tasks})})")
write_step_tasks(tasks, snakemake.output.tasks, snakemake.output.summary)
