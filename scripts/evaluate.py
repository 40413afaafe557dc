"""Snakemake adapter: every budget x seed of one material x strategy against the reference
(phononft.evaluate), into the job's folder; evaluations finished by an earlier run of the job are reused
(phononft.reuse.reuse_or_run)."""
from pathlib import Path

import torch

from phononft.evaluate import evaluate_model
from phononft.io import read_extxyz, read_json
from phononft.layout import EVALUATION_FILES, MODEL_FILES, run_folders
from phononft.logs import announce, rule_logger
from phononft.reuse import code_fingerprint, file_fingerprint, reuse_or_run, run_models

log = rule_logger(snakemake.log[0])
torch.set_num_threads(snakemake.threads)
i, p, job = snakemake.input, snakemake.params, Path(snakemake.output[0])
strategy, material = job.name, snakemake.wildcards.material
structure, modes = read_extxyz(i.structure)[0], read_json(i.modes)
general = Path(i.general) if i.general else None  # where forgetting is measured (none: not measurable)
shared = {name: file_fingerprint(getattr(i, name)) for name in ("structure", "reference", "modes", "test")}
shared["general"] = file_fingerprint(general) if general else None
common = {"settings": p.settings, "inputs": shared, "code": code_fingerprint()}


def evaluate(run):
    selection, budget, seed = run
    trained, _ = run_folders(i.models, budget, seed, selection)
    model, record = (trained / name for name in MODEL_FILES)
    folder, store = run_folders(job, budget, seed, selection)
    key = {**common, "model": file_fingerprint(model), "record": file_fingerprint(record)}

    def evaluate_one():
        folder.mkdir(parents=True, exist_ok=True)
        evaluate_model(model, structure, Path(i.reference), Path(i.test), p.settings, folder,
                       train_log=read_json(record), reference_modes=modes, general_file=general, log=log)

    reuse_or_run([folder / name for name in EVALUATION_FILES], key, evaluate_one, store=store, log=log)
    m = read_json(folder / "metrics.json")
    announce(f"{material} {strategy}{'' if selection == 'random' else ' ' + selection} N={budget} seed {seed}: band RMSE {m['rmse']:.3f} THz, force MAE "
             f"{m['force_mae']:.1f} meV/Å ({m.get('finetune_wall_seconds') or 0:.0f} s training, "
             f"{m['evaluate_wall_seconds']:.0f} s evaluation)")


job.mkdir(parents=True, exist_ok=True)
run_models([(sel, int(b), int(s)) for sel, b, s in p.runs], evaluate, what=f"{material} {strategy}", log=log)
