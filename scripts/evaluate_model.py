"""Snakemake adapter: every budget x seed of one material x strategy against the reference
(phononft.evaluate), into the job's folder; evaluations finished by an earlier run of the job are reused
(phononft.runlog.reuse_or_run)."""
from pathlib import Path

import torch

from phononft.evaluate import evaluate_model
from phononft.io import read_extxyz, read_json
from phononft.runlog import code_fingerprint, file_fingerprint, model_folder, reuse_or_run, rule_logger, run_models

log = rule_logger(snakemake.log[0])
torch.set_num_threads(snakemake.threads)
i, p, job = snakemake.input, snakemake.params, Path(snakemake.output[0])
strategy, material = job.name, snakemake.wildcards.material
structure, modes = read_extxyz(i.structure)[0], read_json(i.modes)
shared = {name: file_fingerprint(getattr(i, name)) for name in ("structure", "reference", "modes", "test")}
common = {"settings": p.settings, "inputs": shared, "code": code_fingerprint()}
NAMES = ("metrics.json", "phonopy.yaml", "bands.json", "thermal.json", "surface.json")


def evaluate(run):
    budget, seed = run
    trained, _ = model_folder(i.models, budget, seed)
    model, record = trained / "model.model", trained / "train.json"
    folder, store = model_folder(job, budget, seed)
    key = {**common, "model": file_fingerprint(model), "record": file_fingerprint(record)}

    def evaluate_one():
        folder.mkdir(parents=True, exist_ok=True)
        evaluate_model(model, structure, Path(i.reference), Path(i.test), p.settings, folder,
                       train_log=read_json(record), reference_modes=modes, log=log)

    reuse_or_run([folder / name for name in NAMES], key, evaluate_one, store=store, log=log)


job.mkdir(parents=True, exist_ok=True)
run_models([(int(b), int(s)) for b, s in p.runs], evaluate, what=f"{material} {strategy}", log=log)
