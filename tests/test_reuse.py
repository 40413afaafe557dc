"""Jobs that cover several models (phononft.reuse): every model is tried, failures are named, and a model
finished by a failed job is reused by the rerun instead of being recomputed."""

from __future__ import annotations

import pytest

from phononft.reuse import file_fingerprint, reuse_or_run, run_models


def test_run_models_tries_every_model_and_names_the_failed_ones():
    done = []

    def run_one(model):
        if model[0] == 5:
            raise FloatingPointError("NaN loss")
        done.append(model)
        return model

    with pytest.raises(RuntimeError, match=r"Cu naive: 1 of 3 models failed \(\(5, 0\): FloatingPointError: NaN loss"):
        run_models([(2, 0), (5, 0), (10, 0)], run_one, what="Cu naive", log=lambda s: None)
    assert done == [(2, 0), (10, 0)]  # the model after the failing one was still trained
    assert run_models([(2, 0)], run_one, what="x", log=lambda s: None) == [(2, 0)]


def test_reuse_or_run_keeps_finished_outputs_outside_the_job_folder(tmp_path):
    job = tmp_path / "models" / "naive" / "n2" / "s0"
    store = tmp_path / ".finished" / "naive" / "n2" / "s0"
    outputs = [job / "model.model", job / "train.json"]
    calls = []

    def train(content="weights"):
        calls.append(content)
        job.mkdir(parents=True, exist_ok=True)
        outputs[0].write_text(content)
        outputs[1].write_text("{}")

    key = {"settings": {"lr": 0.01}, "inputs": {"train": "abc"}}
    assert reuse_or_run(outputs, key, train, store=store, log=lambda s: None) is True
    assert (store / "model.model").stat().st_ino == outputs[0].stat().st_ino  # a hard link: no extra disk

    # Snakemake removes the whole folder of a failed job: the rerun takes the finished model back
    for f in outputs:
        f.unlink()
    job.rmdir()
    messages = []
    assert reuse_or_run(outputs, key, train, store=store, log=messages.append) is False
    assert calls == ["weights"] and outputs[0].read_text() == "weights" and "reused" in messages[0]

    # other settings (or inputs): trained again, the kept copy replaced
    assert reuse_or_run(outputs, {**key, "settings": {"lr": 0.1}}, lambda: train("new"), store=store,
                        log=lambda s: None) is True
    assert calls == ["weights", "new"] and (store / "model.model").read_text() == "new"


def test_reuse_or_run_never_takes_a_half_kept_store(tmp_path):
    out = tmp_path / "job" / "metrics.json"
    store = tmp_path / "store"
    store.mkdir()
    (store / "metrics.json").write_text("stale")  # a copy without its key: a run killed while keeping it
    ran = []

    def run():
        ran.append(1)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text("fresh")

    assert reuse_or_run([out], {"k": 1}, run, store=store, log=lambda s: None) is True
    assert ran == [1] and (store / "metrics.json").read_text() == "fresh"


def test_file_fingerprint_follows_content(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    a.write_text("x")
    b.write_text("x")
    assert file_fingerprint(a) == file_fingerprint(b)
    b.write_text("y")
    assert file_fingerprint(a) != file_fingerprint(b)
    assert file_fingerprint(a, hash_limit=0).startswith("size=1,")  # big files: size and mtime


def test_model_folder_and_its_store_outside_the_job_output():
    from pathlib import Path

    from phononft import layout

    job = layout.job("evaluate", "Cu", "naive")
    folder, store = layout.run_folders(job, 10, 2)
    assert folder == Path("results/Cu/evaluate/naive/n10/s2") == Path(layout.evaluation("Cu", "naive", 10, 2))
    assert store == Path("results/Cu/.finished/evaluate/naive/n10/s2")
    assert not store.is_relative_to(job)
