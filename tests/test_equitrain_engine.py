"""Fine-tuning through the Equitrain package itself (:mod:`phononft.equitrain_engine`).

The session's tiny foundation (Cu/Au MACE pretrained on softened EMT) is fine-tuned on EMT-labelled
rattled fcc Cu; the exported models are checked for what LoRA and delta fine-tuning promise: which tensors
change, how (rank), that the result is a plain MACE model, still rotation-equivariant, better on held-out
data, reproducible, and the same as Equitrain's own ``equitrain.train`` + ``equitrain-export``.
"""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest

import mace  # noqa: F401  (sets the weights-only workaround before torch loads e3nn objects)
import torch

from phononft.equitrain_engine import (adapted_tensors, equitrain_args, prepare_hdf5, train_with_equitrain,
                                       wrap)
from phononft.io import read_extxyz
from phononft.torch_runtime import default_dtype, load_model

torch.set_num_threads(1)

#: a short run on CPU in float64; patience=None runs every epoch, as equitrain.train does
RUN = {"max_epochs": 4, "patience": None, "batch_size": 4, "seed": 0, "device": "cpu", "dtype": "float64",
       "log": lambda s: None}


def _params(model) -> dict:
    return {n: p.detach() for n, p in model.named_parameters()}


def _calculator(path):
    from mace.calculators import MACECalculator

    return MACECalculator(model_paths=str(path), device="cpu", default_dtype="float64")


def _force_mae(model_path, data_file) -> float:
    """Mean absolute force-component error against REF_forces, eV/Å (the evaluate stage's)."""
    from phononft.evaluate import split_errors

    return split_errors(_calculator(model_path), data_file)["force_mae"] / 1000.0


@pytest.fixture(scope="module")
def lora_run(foundation, cu_data, tmp_path_factory):
    d = tmp_path_factory.mktemp("equitrain_lora")
    rec = train_with_equitrain(foundation[0], cu_data["train"], cu_data["valid"], d / "lora.model",
                               wrapper="lora", **RUN)
    return rec, d / "lora.model"


@pytest.fixture(scope="module")
def delta_run(foundation, cu_data, tmp_path_factory):
    d = tmp_path_factory.mktemp("equitrain_delta")
    rec = train_with_equitrain(foundation[0], cu_data["train"], cu_data["valid"], d / "delta.model",
                               wrapper="delta", weight_decay=1e-3, **RUN)
    return rec, d / "delta.model"


# ---------------------------------------------------------------- without training (fast)

@pytest.mark.parametrize("fraction", [0.25, 0.5])
def test_both_engines_adapt_the_same_tensors_with_the_same_ranks(foundation, fraction):
    model = load_model(foundation[0])
    package = adapted_tensors(model, "equitrain", rank_fraction=fraction)
    peft = adapted_tensors(model, "peft", rank_fraction=fraction)
    assert package == peft
    matrices = {n: p.shape for n, p in model.named_parameters() if n.endswith("weight") and p.ndim >= 2}
    assert set(package) == set(matrices) and package
    assert all(package[n] == math.ceil(fraction * min(s)) for n, s in matrices.items())
    assert all(".conv_tp_weights." in n for n in package)  # MACE's radial MLPs only


@pytest.mark.parametrize("wrapper", ["lora", "delta"])
def test_wrapped_model_starts_as_the_foundation(foundation, tmp_path, wrapper):
    """B = 0 (LoRA) and delta = 0: Equitrain's own merge of an untrained wrapper is the foundation."""
    model = load_model(foundation[0])
    wrapped = wrap(copy.deepcopy(model), wrapper)
    trainable = [p for p in wrapped.parameters() if p.requires_grad]
    assert trainable and all(p.requires_grad for p in trainable)
    base = [p for p in wrapped.base_wrapper.parameters()]
    assert not any(p.requires_grad for p in base)  # the foundation's own tensors are frozen
    wrapped.export(str(tmp_path / "m.model"))
    exported = load_model(tmp_path / "m.model")
    assert type(exported) is type(model)
    assert all(torch.equal(p, _params(model)[n]) for n, p in _params(exported).items())


def test_hdf5_keeps_the_labels_and_the_stress_convention(foundation, cu_data, tmp_path):
    """equitrain-preprocess stores REF_energy / REF_forces / REF_stress unchanged, and Equitrain's MACE
    wrapper predicts stress in the labels' (ASE) convention: the same 3x3 tensor as MACECalculator."""
    from equitrain.data.format_hdf5 import HDF5Dataset, HDF5GraphDataset
    from torch_geometric.data import Batch

    h5 = prepare_hdf5({"train": cu_data["train"]}, tmp_path)["train"]
    ref = read_extxyz(cu_data["train"])
    with HDF5Dataset(h5) as data:
        assert len(data) == len(ref)
        for atoms, labelled in zip(data, ref):
            assert atoms.get_potential_energy() == labelled.info["REF_energy"]
            np.testing.assert_array_equal(atoms.get_forces(), labelled.arrays["REF_forces"])
            np.testing.assert_array_equal(atoms.get_stress(), labelled.info["REF_stress"])
    model = load_model(foundation[0])
    wrapper = wrap(model, "lora").base_wrapper.eval()
    with default_dtype(torch.float64), HDF5GraphDataset(h5, r_max=wrapper.r_max,  # graphs in float64
                                                          atomic_numbers=wrapper.atomic_numbers) as graphs:
        predicted = wrapper(Batch.from_data_list([graphs[0]]))["stress"].detach().numpy()[0]
    atoms = ref[0].copy()
    atoms.calc = _calculator(foundation[0])
    np.testing.assert_allclose(predicted, atoms.get_stress(voigt=False), rtol=0, atol=1e-12)
    assert np.abs(predicted).max() > 1e-4  # a real, non-zero stress was compared


def test_non_finite_losses_stop_the_run_and_write_nothing(foundation, cu_data, tmp_path):
    """Equitrain's meters skip non-finite batches; the engine refuses them instead."""
    from phononft.torch_runtime import NonFiniteLossError, save_model_atomic

    model = load_model(foundation[0])
    with torch.no_grad():
        next(p for n, p in model.named_parameters() if ".conv_tp_weights." in n).fill_(float("nan"))
    save_model_atomic(model, tmp_path / "broken.model")
    with pytest.raises(NonFiniteLossError, match="non-finite"):
        train_with_equitrain(tmp_path / "broken.model", cu_data["train"], cu_data["valid"],
                             tmp_path / "out.model", **RUN)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["broken.model"]


def test_unknown_options_are_refused():
    with pytest.raises(ValueError, match="no option"):
        equitrain_args("train", learning_rate=1e-3)
    with pytest.raises(ValueError, match="wrapper"):
        wrap(torch.nn.Linear(2, 2), "freeze")


# ---------------------------------------------------------------- training (slow: ~10 s per run)

@pytest.mark.slow
def test_lora_changes_only_the_adapted_matrices_by_low_rank_updates(foundation, lora_run):
    rec, path = lora_run
    before, after = _params(load_model(foundation[0])), _params(load_model(path))
    ranks = adapted_tensors(load_model(foundation[0]), "equitrain")
    assert set(after) == set(before)
    for name, w in after.items():
        if name not in ranks:
            assert torch.equal(w, before[name]), name
            continue
        update = w - before[name]
        s = torch.linalg.svdvals(update)
        assert s[0] > 1e-6, f"{name} did not change"
        assert torch.all(s[ranks[name]:] < 1e-10 * s[0]), f"{name}: update of rank > {ranks[name]}"
    targets = rec["lora"]["targets"]
    assert {n: t["rank"] for n, t in targets.items()} == ranks
    assert rec["trainable_parameters"] == sum(t["rank"] * sum(t["shape"]) for t in targets.values())
    assert rec["total_parameters"] == rec["foundation_parameters"] + rec["trainable_parameters"]


@pytest.mark.slow
def test_export_is_a_plain_mace_model_and_the_record_is_complete(foundation, cu_data, lora_run):
    import json

    rec, path = lora_run
    model, base = load_model(path), load_model(foundation[0])
    assert type(model) is type(base)
    assert model.state_dict().keys() == base.state_dict().keys()  # no adapter left
    assert all(torch.equal(b, base.state_dict()[n]) for n, b in model.named_buffers())  # E0s, scale/shift
    atoms = read_extxyz(cu_data["test"])[0]
    atoms.calc = _calculator(path)
    assert np.isfinite(atoms.get_potential_energy()) and np.isfinite(atoms.get_forces()).all()
    json.dumps(rec)  # JSON-able
    assert rec["epochs_run"] == len(rec["history"]) == RUN["max_epochs"]
    assert rec["optimizer_steps"] == rec["epochs_run"] * math.ceil(rec["n_train"] / RUN["batch_size"])
    best = min(rec["history"], key=lambda r: r["valid_loss"])
    assert (rec["best_epoch"], rec["best_valid_loss"]) == (best["epoch"], best["valid_loss"])
    assert rec["seconds_per_epoch"] > 0 and rec["peak_memory_mb"] > 0


@pytest.mark.slow
@pytest.mark.parametrize("run", ["lora_run", "delta_run"])
def test_fine_tuned_model_stays_rotation_equivariant(run, cu_data, request):
    from scipy.spatial.transform import Rotation

    _, path = request.getfixturevalue(run)
    calc = _calculator(path)
    atoms = read_extxyz(cu_data["test"])[0]
    rot = Rotation.random(random_state=7).as_matrix()
    rotated = atoms.copy()
    rotated.set_cell(atoms.cell.array @ rot.T, scale_atoms=False)
    rotated.positions = atoms.positions @ rot.T
    results = []
    for a in (atoms, rotated):
        a.calc = calc
        results.append((a.get_potential_energy(), a.get_forces(), a.get_stress(voigt=False)))
    (e0, f0, s0), (e1, f1, s1) = results
    assert abs(e1 - e0) <= 1e-6 * abs(e0)
    assert np.linalg.norm(f1 - f0 @ rot.T) <= 1e-6 * np.linalg.norm(f0)
    assert np.linalg.norm(s1 - rot @ s0 @ rot.T) <= 1e-6 * np.linalg.norm(s0)


@pytest.mark.slow
@pytest.mark.parametrize("run", ["lora_run", "delta_run"])
def test_fine_tuning_lowers_the_held_out_force_error(run, foundation, cu_data, request):
    rec, path = request.getfixturevalue(run)
    before, after = _force_mae(foundation[0], cu_data["test"]), _force_mae(path, cu_data["test"])
    assert after < 0.7 * before, (before, after)
    assert rec["history"][rec["best_epoch"] - 1]["valid_mae_f"] < rec["initial_valid"]["mae_f"]


@pytest.mark.slow
def test_delta_trains_every_tensor_of_the_foundation(foundation, delta_run):
    rec, path = delta_run
    base = load_model(foundation[0])
    model = load_model(path)
    assert type(model) is type(base)
    assert rec["trainable_parameters"] == rec["foundation_parameters"] == sum(p.numel() for p in base.parameters())
    assert rec["delta"]["tensors"] == len(list(base.parameters()))
    changed = [n for n, p in _params(model).items() if not torch.equal(p, _params(base)[n])]
    assert len(changed) > len(adapted_tensors(base, "equitrain"))  # more than LoRA's radial MLPs
    assert all(torch.equal(b, base.state_dict()[n]) for n, b in model.named_buffers())


@pytest.mark.slow
def test_same_seed_gives_bit_identical_weights(foundation, cu_data, lora_run, tmp_path):
    rec, path = lora_run
    again = train_with_equitrain(foundation[0], cu_data["train"], cu_data["valid"], tmp_path / "m.model",
                                 wrapper="lora", **RUN)
    assert [r["valid_loss"] for r in again["history"]] == [r["valid_loss"] for r in rec["history"]]
    first, second = _params(load_model(path)), _params(load_model(tmp_path / "m.model"))
    assert all(torch.equal(p, first[n]) for n, p in second.items())


@pytest.mark.slow
def test_engine_equals_equitrain_train_and_export(foundation, cu_data, lora_run, tmp_path, monkeypatch):
    """Without early stopping the engine is Equitrain: ``equitrain.train`` on the same namespace and
    ``equitrain-export --load-best-checkpoint`` give bit-identical weights."""
    from equitrain.backends.torch_utils import set_seeds
    from equitrain.scripts.equitrain_export import export
    from equitrain.train import train  # equitrain.train is the submodule once imported (1.0.0)

    monkeypatch.setenv("ACCELERATE_USE_CPU", "1")
    _, path = lora_run
    data = prepare_hdf5({"train": cu_data["train"], "valid": cu_data["valid"]}, tmp_path / "data")
    previous = torch.get_default_dtype()
    try:
        model = load_model(foundation[0]).double()
        args = equitrain_args("train", train_file=str(data["train"]), valid_file=str(data["valid"]),
                              output_dir=str(tmp_path / "run"), model_wrapper="mace", epochs=RUN["max_epochs"],
                              batch_size=RUN["batch_size"], energy_weight=10.0, forces_weight=100.0,
                              stress_weight=100.0, seed=RUN["seed"], dtype="float64", num_workers=0)
        set_seeds(RUN["seed"])
        args.model = wrap(copy.deepcopy(model), "lora", energy_weight=10.0, forces_weight=100.0,
                          stress_weight=100.0)
        train(args)
        export(equitrain_args("export", model=copy.deepcopy(model), model_wrapper="mace",
                              output_dir=str(tmp_path / "run"), load_best_checkpoint=True,
                              model_export=str(tmp_path / "equitrain.model")))
    finally:
        torch.set_default_dtype(previous)
        from accelerate.state import AcceleratorState

        AcceleratorState._reset_state(reset_partial_state=True)
    ours, theirs = _params(load_model(path)), _params(load_model(tmp_path / "equitrain.model"))
    assert all(torch.equal(p, theirs[n]) for n, p in ours.items())
    assert not all(torch.equal(p, _params(model)[n]) for n, p in ours.items())


@pytest.mark.slow
def test_early_stopping_follows_the_same_trajectory(foundation, cu_data, lora_run, tmp_path):
    """patience=1: the same epochs as the full run until the first epoch without a new best."""
    rec, _ = lora_run
    run = {**RUN, "patience": 1}
    short = train_with_equitrain(foundation[0], cu_data["train"], cu_data["valid"], tmp_path / "m.model",
                                 wrapper="lora", **run)
    best, stop = math.inf, RUN["max_epochs"]
    for row in rec["history"]:
        if row["valid_loss"] < best:
            best = row["valid_loss"]
        else:
            stop = row["epoch"]
            break
    assert short["epochs_run"] == stop
    assert [r["valid_loss"] for r in short["history"]] == [r["valid_loss"] for r in rec["history"][:stop]]
