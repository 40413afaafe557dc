"""The matched recipe: every trained strategy through the one in-process trainer (phononft.torch_train), so that
only what is trained differs; and the learning rate chosen from a grid on the validation split.

The session's tiny foundation (Cu/Au MACE pretrained on softened EMT) is fine-tuned on 4 EMT-labelled rattled
fcc Cu cells for 2 epochs per strategy (~1 min for all on one core).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from phononft import strategies
from phononft.finetune import finetune, load_model
from phononft.io import read_json

BUDGET, EPOCHS, BATCH = 4, 2, 2
COMMON = {"max_num_epochs": EPOCHS, "batch_size": BATCH, "lr": 5e-3}
OWN = {"multihead": {"replay_per_epoch": 4}, "lora": {"lora_rank": 2}, "frozen": {"freeze": 5}}


def _params(model) -> dict:
    return {n: p.detach() for n, p in model.named_parameters()}


@pytest.fixture(scope="module")
def matched(foundation, cu_data, tmp_path_factory):
    torch.set_num_threads(1)
    model, replay = foundation
    d = tmp_path_factory.mktemp("matched")
    runs = {name: {**COMMON, **OWN.get(name, {})} for name in strategies.trained()}
    runs["l2sp_zero"] = {**COMMON, "l2sp_lambda": 0.0}
    out = {}
    for name, params in runs.items():
        strategy = "l2sp" if name == "l2sp_zero" else name
        finetune(strategy, model, cu_data["train"], cu_data["valid"], BUDGET, 0, d / f"{name}.model", d / f"{name}.json",
                 d / f"work_{name}", params, recipe="matched", device="cpu", replay_file=replay, log=lambda s: None)
        out[name] = (d / f"{name}.model", read_json(d / f"{name}.json"))
    return out


def test_every_strategy_takes_the_same_steps_with_the_same_recipe(matched, foundation):
    base = load_model(foundation[0])
    steps = EPOCHS * -(-BUDGET // BATCH)
    for name in strategies.trained():
        path, rec = matched[name]
        assert rec["recipe"] == "matched" and rec["tool"] == "in-process"
        assert rec["epochs_run"] == EPOCHS and rec["optimizer_steps"] == steps  # no early stop, fixed steps
        assert rec["learning_rate"] == COMMON["lr"]
        settings = {k: v for k, v in rec["settings"].items() if k in strategies.base.TRAINING_NAMES}
        assert settings == {k: v for k, v in matched["naive"][1]["settings"].items() if k in settings}
        assert type(load_model(path)) is type(base)  # a plain MACE model of the foundation's class
        assert 0 < rec["trainable_parameters"] <= rec["total_parameters"]


def test_l2sp_without_penalty_is_naive_bit_for_bit(matched):
    """One recipe: with lambda 0 the only difference of l2sp from naive is gone."""
    naive, free = _params(load_model(matched["naive"][0])), _params(load_model(matched["l2sp_zero"][0]))
    assert all(torch.equal(p, naive[n]) for n, p in free.items())
    tied = _params(load_model(matched["l2sp"][0]))
    assert not all(torch.equal(p, naive[n]) for n, p in tied.items())


def test_what_each_strategy_trains(matched, foundation):
    base = _params(load_model(foundation[0]))

    def changed(name):
        return {n for n, p in _params(load_model(matched[name][0])).items() if not torch.equal(p, base[n])}

    everything = set(base)
    for name in ("naive", "delta", "l2sp", "multihead"):
        assert len(changed(name)) > 0.8 * len(everything), name
    frozen = changed("frozen")
    assert frozen and not any(n.startswith(("node_embedding.", "interactions.")) for n in frozen)
    assert any(n.startswith("products.") for n in frozen)
    equitrain = changed("equitrain")
    assert equitrain and all(".conv_tp_weights." in n for n in equitrain)  # the radial MLPs only
    tuned = _params(load_model(matched["equitrain"][0]))
    ranks = matched["equitrain"][1]["lora"]["targets"]
    for n in equitrain:
        assert torch.linalg.matrix_rank(tuned[n] - base[n], atol=1e-10) <= ranks[n]["rank"]
    lora = changed("lora")
    assert lora and not [n for n in tuned if "lora" in n]
    scratch = load_model(matched["scratch"][0])
    assert len(changed("scratch")) > 0.9 * len(everything)  # a fresh model, not the foundation
    assert not torch.equal(scratch.atomic_energies_fn.atomic_energies, load_model(foundation[0]).atomic_energies_fn.atomic_energies)


def test_multihead_replays_through_a_second_head(matched):
    path, rec = matched["multihead"]
    assert rec["replay_structures"] > 0 and rec["replay_per_epoch"] == 4
    assert list(getattr(load_model(path), "heads", ["Default"])) == ["Default"]
    naive = _params(load_model(matched["naive"][0]))
    assert not all(torch.equal(p, naive[n]) for n, p in _params(load_model(path)).items())  # the replay mattered
    # the replay head's readouts train too, the saved (fine-tuned) head does not carry them
    assert rec["trainable_parameters"] > matched["naive"][1]["trainable_parameters"]


def test_lr_grid_picks_the_lowest_validation_loss_loading_the_data_once(foundation, cu_data, tmp_path, monkeypatch):
    from phononft import torch_train

    loads = []
    original = torch_train.load_configs
    monkeypatch.setattr(torch_train, "load_configs", lambda path, *a, **k: loads.append(path) or original(path, *a, **k))
    grid = [1e-6, 5e-3, 1e4]
    rec = finetune("naive", foundation[0], cu_data["train"], cu_data["valid"], BUDGET, 0, tmp_path / "m.model",
                   tmp_path / "m.json", tmp_path / "work", COMMON, recipe="matched", lr_grid=grid, device="cpu",
                   log=lambda s: None)
    assert [t["lr"] for t in rec["lr_grid"]] == grid
    judged = [t for t in rec["lr_grid"] if t["best_valid_loss"] is not None]
    best = min(judged, key=lambda t: t["best_valid_loss"])
    assert rec["lr_choice"] == rec["learning_rate"] == best["lr"] == 5e-3  # neither too timid nor diverging
    assert rec["best_valid_loss"] == best["best_valid_loss"]
    assert all(t["optimizer_steps"] == rec["optimizer_steps"] for t in judged)
    assert read_json(tmp_path / "m.json")["lr_choice"] == 5e-3 and (tmp_path / "m.model").is_file()
    assert sum(1 for p in loads if "train_n" in str(p)) == 1  # the training data were read once for the grid
    assert not list((tmp_path / "work").glob("lr*/*.model"))  # candidates cleaned up
    assert np.isfinite(rec["best_valid_loss"])
