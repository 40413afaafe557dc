"""Snakemake adapter: train every selection x budget x seed of one material x strategy (phononft.finetune) into the job's
folder; models finished by an earlier run of the job with the same settings and inputs are reused
(phononft.reuse.reuse_or_run)."""
from pathlib import Path

import torch

from phononft.finetune import finetune
from phononft.layout import MODEL_FILES, run_folders, train_split
from phononft.logs import rule_logger
from phononft.reuse import code_fingerprint, file_fingerprint, reuse_or_run, run_models

log = rule_logger(snakemake.log[0])
torch.set_num_threads(snakemake.threads)
i, p, job = snakemake.input, snakemake.params, Path(snakemake.output[0])
strategy, material = job.name, snakemake.wildcards.material
replay = Path(i.replay) if i.replay else None
inputs = {name: file_fingerprint(f) for name, f in
          {"foundation": i.foundation, "valid": i.valid, "replay": replay}.items() if f}
common = {"strategy": strategy, "settings": p.settings, "device": p.device, "dtype": p.dtype, "inputs": inputs,
          "code": code_fingerprint()}


def series_of(selection, seed) -> Path:
    """The training series of (selection, seed): budget N trains on its first N.  Zero-shot trains on none and
    is given only the first series (rules/common.smk training_inputs), whatever its seed."""
    split = train_split(selection, seed)
    return Path(getattr(i, split) if split in i.keys() else next(f for k, f in i.items() if k.startswith("train_")))


def train(run):
    selection, budget, seed = run
    series = series_of(selection, seed)
    folder, store = run_folders(job, budget, seed, selection)
    model, record_file = (folder / name for name in MODEL_FILES)

    def fit():
        folder.mkdir(parents=True, exist_ok=True)
        record = finetune(strategy, Path(i.foundation), series, Path(i.valid), budget, seed, model,
                          record_file, folder / "work", device=p.device, dtype=p.dtype, replay_file=replay,
                          threads=snakemake.threads, log=log, **p.settings)  # options (+ recipe, lr_grid: trained)
        log(f"{strategy} {selection} n={budget} seed {seed}: {record['epochs_run']} epochs, {record['optimizer_steps']} steps "
            f"at lr {record['learning_rate']}, {record['trainable_parameters']}/{record['total_parameters']} "
            "parameters trained")

    key = {**common, "budget": budget, "seed": seed, "selection": selection, "series": file_fingerprint(series)}
    reuse_or_run([model, record_file], key, fit, store=store, log=log)


job.mkdir(parents=True, exist_ok=True)
run_models([(sel, int(b), int(s)) for sel, b, s in p.runs], train, what=f"{material} {strategy}", log=log)
