"""Reproducibility: the same config, run twice from scratch, gives bit-identical models.

Two causes made runs differ, both fixed in phononft (see phononft.mace_train, phononft.torch_train):

* in float32 (the demo's training dtype) with more than one thread, torch's CPU
  ``index_put_(accumulate=True)`` -- the backward of ``x[idx]``, i.e. of MACE's message passing -- adds
  floats atomically from several threads, in a run-dependent order; ``torch.use_deterministic_algorithms``
  selects an ordered implementation (mace_run_train gets it through phononft's launcher);
* TorchScript's optimising executor rounds e3nn's scripted code differently in a process's first calls than
  later, so the second model trained in one process differed from the first (in-process trainer).

Every training below runs in float32 on two threads.  The race is a matter of timing: without the fix the
mace_run_train comparisons fail only when it strikes (about half the tries here); the launcher test checks
the mechanism itself.  The in-process comparisons fail every time without the fix.
Pretraining and mace fine-tuning run mace_run_train six times (about two minutes): marked slow.
"""

from __future__ import annotations

import pytest
import torch

import mace  # noqa: F401  (sets the weights-only workaround before torch loads e3nn objects)
from conftest import tiny_foundation_config
from phononft.finetune import finetune
from phononft.foundation import pretrain_from_config
from phononft.mace_train import LAUNCHER, child_environment
from phononft.torch_runtime import deterministic_torch
from phononft.torch_train import train_in_process

THREADS = 2  # the race needs more than one thread
DTYPE = "float32"  # and float32: torch accumulates float64 serially


def differing_tensors(a, b) -> list[str]:
    """Names of the state-dict tensors of two saved models that are not bitwise equal."""
    sa = torch.load(str(a), map_location="cpu", weights_only=False).state_dict()
    sb = torch.load(str(b), map_location="cpu", weights_only=False).state_dict()
    assert sa.keys() == sb.keys()
    return [k for k in sa if not torch.equal(sa[k], sb[k])]


def _losses(epochs: list[dict]) -> list:
    return [(r.get("mode"), r.get("epoch"), r.get("loss")) for r in epochs]


def test_accumulating_index_put_is_repeatable_under_deterministic_torch():
    g = torch.Generator().manual_seed(0)
    src = torch.randn(20000, 64, generator=g)  # float32, large enough for the parallel kernel
    idx = torch.randint(0, 500, (20000,), generator=g)
    before = (torch.are_deterministic_algorithms_enabled(), torch.get_num_threads())
    with deterministic_torch(threads=THREADS):
        assert torch.are_deterministic_algorithms_enabled() and torch.get_num_threads() == THREADS
        ref = torch.zeros(500, 64).index_put_((idx,), src, accumulate=True)
        for _ in range(10):
            assert torch.equal(torch.zeros(500, 64).index_put_((idx,), src, accumulate=True), ref)
    assert (torch.are_deterministic_algorithms_enabled(), torch.get_num_threads()) == before
    # the same sums as adding the rows in order, one thread
    serial = torch.zeros(500, 64)
    serial.index_add_(0, idx, src)
    assert torch.allclose(ref, serial, rtol=1e-5, atol=1e-5)


def test_launcher_sets_threads_and_determinism_before_mace_runs(tmp_path):
    """The child's program, with a stand-in ``mace.cli.run_train`` that reports what it finds."""
    import json
    import subprocess
    import sys

    fake = tmp_path / "mace" / "cli"
    fake.mkdir(parents=True)
    (tmp_path / "mace" / "__init__.py").write_text("")
    (fake / "__init__.py").write_text("")
    (fake / "run_train.py").write_text(
        "import json, sys, torch\n"
        "def main():\n"
        "    print(json.dumps({'det': torch.are_deterministic_algorithms_enabled(),\n"
        "                      'threads': torch.get_num_threads(), 'argv': sys.argv}))\n")
    for deterministic in (True, False):
        env = {**child_environment(3, deterministic=deterministic), "PYTHONPATH": str(tmp_path)}
        out = subprocess.run([sys.executable, "-c", LAUNCHER, "--name=x", "--seed=1"], env=env, cwd=tmp_path,
                             capture_output=True, text=True, check=True).stdout
        seen = json.loads(out.strip().splitlines()[-1])
        assert seen == {"det": deterministic, "threads": 3, "argv": ["mace_run_train", "--name=x", "--seed=1"]}
    assert env["OMP_NUM_THREADS"] == env["MKL_NUM_THREADS"] == "3" and env["PYTHONHASHSEED"] == "0"


@pytest.fixture(scope="module")
def pretrained_twice(tmp_path_factory):
    cfg = tiny_foundation_config()
    cfg["dtype"] = DTYPE
    # 3 epochs; batches of 8 cells: big enough for torch's parallel accumulation (without the fix, two
    # runs of this config differed in 23 of 79 tensors)
    cfg["pretrain"]["mace"].update(max_num_epochs=3, batch_size=8)
    runs = []
    for k in (1, 2):
        d = tmp_path_factory.mktemp(f"pretrain{k}")
        summary = pretrain_from_config(cfg, d / "model.model", d / "train.extxyz", d / "valid.extxyz", d / "work",
                                       device="cpu", threads=THREADS, log=lambda s: None)
        runs.append((d, summary))
    return runs


@pytest.mark.slow
def test_pretraining_twice_gives_identical_models(pretrained_twice):
    (a, sa), (b, sb) = pretrained_twice
    assert (a / "train.extxyz").read_bytes() == (b / "train.extxyz").read_bytes()
    assert differing_tensors(a / "model.model", b / "model.model") == []
    assert sa["epochs"] and _losses(sa["epochs"]) == _losses(sb["epochs"])
    assert sa["threads"] == sb["threads"] == THREADS and sa["deterministic"]
    # the same tensors saved under the same file name: torch.save's bytes are identical as well
    assert (a / "model.model").read_bytes() == (b / "model.model").read_bytes()


@pytest.mark.slow
@pytest.mark.parametrize("strategy", ["naive", "multihead"])
def test_mace_fine_tuning_twice_gives_identical_models(pretrained_twice, cu_data, tmp_path, strategy):
    foundation, _ = pretrained_twice[0]
    params = {"max_num_epochs": 2, "batch_size": 2, "lr": 0.005, "ema_decay": 0.99}
    if strategy == "multihead":
        params.update(force_mh_ft_lr=True, num_samples_pt=8)
    records = []
    for k in (1, 2):
        d = tmp_path / f"run{k}"
        records.append(finetune(strategy, foundation / "model.model", cu_data["train"], cu_data["valid"], 4, 0,
                                d / "model.model", d / "train.json", d / "work", params, recipe="study",
                                device="cpu", dtype=DTYPE, replay_file=foundation / "train.extxyz",
                                threads=THREADS, log=lambda s: None))
    assert records[0]["train_loss"] and records[0]["train_loss"] == records[1]["train_loss"]
    assert records[0]["valid_curve"] == records[1]["valid_curve"]
    assert differing_tensors(tmp_path / "run1" / "model.model", tmp_path / "run2" / "model.model") == []
    # and training moved the weights: the comparison is not between two copies of the foundation
    assert differing_tensors(tmp_path / "run1" / "model.model", foundation / "model.model")


@pytest.mark.parametrize("strategy", ["equitrain", "l2sp"])
def test_in_process_training_twice_gives_identical_models(foundation, cu_data, tmp_path, strategy):
    model, _ = foundation  # the session's tiny foundation (float64; trained here in float32)
    results = []
    for k in (1, 2):
        results.append(train_in_process(strategy, model, cu_data["train"], cu_data["valid"],
                                        tmp_path / f"{k}.model", seed=0, device="cpu", dtype=DTYPE,
                                        options={"max_num_epochs": 3, "patience": 3, "batch_size": 2},
                                        recipe="study", threads=THREADS, log=lambda s: None))
    a, b = results
    assert differing_tensors(tmp_path / "1.model", tmp_path / "2.model") == []
    strip = [{k: v for k, v in row.items() if k != "seconds"} for row in a["history"]]
    assert strip == [{k: v for k, v in row.items() if k != "seconds"} for row in b["history"]]
    assert differing_tensors(tmp_path / "1.model", model)
    assert a["threads"] == THREADS and a["deterministic"]
