"""Fine-tuning strategies run through mace_run_train: behaviour and physics of the resulting models."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from phononft.evaluate import mace_calculator, split_errors
from phononft.finetune import finetune, load_model
from phononft.io import read_extxyz, read_json

TRAINED = ("scratch", "naive", "frozen", "multihead", "lora")
PARAMS = {
    "common": {"max_num_epochs": 8, "patience": 8, "batch_size": 2, "energy_weight": 10, "forces_weight": 100,
               "stress_weight": 100, "ema_decay": 0.99, "lr": 0.005},
    "scratch": {"lr": 0.01},
    "naive": {},
    "frozen": {"freeze": 5},
    "multihead": {"force_mh_ft_lr": True, "num_samples_pt": 20},
    "lora": {"lora_rank": 2, "lora_alpha": 1.0, "lr": 0.01},
}
BUDGET = 6


@pytest.fixture(scope="module")
def models(foundation, cu_data, tmp_path_factory):
    torch.set_num_threads(1)
    model, replay = foundation
    d = tmp_path_factory.mktemp("models")
    out = {}
    for strategy in ("pretrained", *TRAINED):
        params = {} if strategy == "pretrained" else {**PARAMS["common"], **PARAMS[strategy]}
        rec = finetune(strategy, model, cu_data["train"], cu_data["valid"], BUDGET, 0, d / f"{strategy}.model",
                       d / f"{strategy}.json", d / f"work_{strategy}", params, recipe="study", device="cpu",
                       replay_file=replay, log=lambda s: None)
        out[strategy] = (d / f"{strategy}.model", rec)
    return out


def test_pretrained_is_the_foundation_unchanged(models, foundation):
    path, rec = models["pretrained"]
    assert path.read_bytes() == foundation[0].read_bytes()
    assert rec["trainable_parameters"] == 0 and rec["epochs_run"] == 0


def test_training_logs(models):
    for strategy in TRAINED:
        path, rec = models[strategy]
        log = read_json(path.with_suffix(".json"))
        assert log["strategy"] == strategy and log["budget"] == 6 and log["device"] == "cpu"
        assert log["epochs_run"] >= 1 and log["wall_time_s"] > 0 and log["seconds_per_epoch"] > 0
        assert 0 < log["trainable_parameters"] <= log["total_parameters"]
        assert log["valid_curve"] and all(np.isfinite(r["loss"]) for r in log["valid_curve"])
        assert log["recipe"] == "study" and log["tool"] == "mace_run_train"
        assert log["learning_rate"] == {**PARAMS["common"], **PARAMS[strategy]}["lr"]
        assert log["optimizer_steps"] >= log["epochs_run"] * (BUDGET // 2)  # mace: floor(N / batch) per epoch
    assert models["naive"][1]["optimizer_steps"] == PARAMS["common"]["max_num_epochs"] * BUDGET // 2
    # multihead repeats the N structures up to 10 % of the replay set: more steps per epoch, recorded
    mh = models["multihead"][1]
    assert mh["optimizer_steps"] / mh["epochs_run"] > models["naive"][1]["optimizer_steps"] / models["naive"][1]["epochs_run"]
    # adapters and frozen blocks train far fewer parameters than full fine-tuning
    full = models["naive"][1]["trainable_parameters"]
    assert models["lora"][1]["trainable_parameters"] < 0.5 * full
    assert models["frozen"][1]["trainable_parameters"] < full


def test_fine_tuning_lowers_held_out_force_error(models, cu_data):
    zero = split_errors(mace_calculator(models["pretrained"][0]), cu_data["test"])
    tuned = split_errors(mace_calculator(models["naive"][0]), cu_data["test"])
    assert tuned["force_mae"] < 0.7 * zero["force_mae"], (zero, tuned)


def test_frozen_blocks_are_bit_identical(models, foundation):
    base = load_model(foundation[0])
    tuned = load_model(models["frozen"][0])
    for block in ("node_embedding", "interactions"):
        for (n, a), (_, b) in zip(getattr(base, block).named_parameters(), getattr(tuned, block).named_parameters()):
            assert torch.equal(a, b), f"{block}.{n} changed"
    changed = [n for (n, a), (_, b) in zip(base.products.named_parameters(), tuned.products.named_parameters())
               if not torch.equal(a, b)]
    assert changed, "the unfrozen product blocks must train"


def test_lora_updates_are_low_rank(models, foundation):
    base = dict(load_model(foundation[0]).named_parameters())
    tuned = dict(load_model(models["lora"][0]).named_parameters())
    assert not [n for n in tuned if "lora" in n.lower()]  # merged: a plain MACE, no adapter tensors left
    assert set(base) <= set(tuned)
    ranks = []
    for name, w in tuned.items():
        if name not in base:
            continue
        delta = (w - base[name]).detach()
        if delta.abs().max() == 0:
            continue
        if delta.ndim == 2:
            ranks.append(int(torch.linalg.matrix_rank(delta, atol=1e-10)))
    assert ranks, "LoRA changed nothing"
    assert max(ranks) <= PARAMS["lora"]["lora_rank"]


def test_multihead_model_is_the_fine_tuned_head(models, cu_data):
    model = load_model(models["multihead"][0])
    heads = getattr(model, "heads", ["Default"])
    assert list(heads) == ["Default"]
    zero = split_errors(mace_calculator(models["pretrained"][0]), cu_data["test"])
    tuned = split_errors(mace_calculator(models["multihead"][0]), cu_data["test"])
    assert tuned["force_mae"] < zero["force_mae"]


@pytest.mark.parametrize("strategy", ("pretrained", *TRAINED))
def test_models_are_rotation_equivariant(models, cu_data, strategy):
    atoms = read_extxyz(cu_data["test"])[0]
    calc = mace_calculator(models[strategy][0])
    atoms.calc = calc
    e, f = atoms.get_potential_energy(), atoms.get_forces()
    rot = Rotation.random(random_state=7).as_matrix()
    turned = atoms.copy()
    turned.set_cell(atoms.cell[:] @ rot.T, scale_atoms=False)
    turned.positions = atoms.positions @ rot.T
    turned.calc = calc
    assert turned.get_potential_energy() == pytest.approx(e, abs=1e-6)
    np.testing.assert_allclose(turned.get_forces(), f @ rot.T, atol=1e-6)


def test_mace_lora_trains_only_adapters_and_merge_reproduces_the_adapted_model(foundation, cu_data):
    """The `lora` strategy's mechanics (mace-torch's inject_LoRAs / merge_lora_weights): only adapter
    tensors are trainable, and the merged plain model gives the adapted model's energies and forces."""
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        _check_lora_merge(foundation, cu_data)
    finally:
        torch.set_default_dtype(previous)


def _check_lora_merge(foundation, cu_data):
    import copy

    from mace import data as mdata
    from mace.modules.lora import inject_LoRAs, merge_lora_weights
    from mace.tools import AtomicNumberTable, torch_geometric

    base = load_model(foundation[0]).double()
    adapted = inject_LoRAs(copy.deepcopy(base), rank=2, alpha=1.0)
    trainable = [n for n, p in adapted.named_parameters() if p.requires_grad]
    assert trainable and all("lora" in n for n in trainable)
    torch.manual_seed(0)
    with torch.no_grad():  # give the adapters a non-zero update, as training would
        for n, p in adapted.named_parameters():
            if "lora_B" in n:
                p.normal_(0, 0.05)
    z_table = AtomicNumberTable([int(z) for z in base.atomic_numbers])
    atoms = read_extxyz(cu_data["test"])[0]
    cfg = mdata.config_from_atoms(atoms)
    batch = next(iter(torch_geometric.dataloader.DataLoader(
        [mdata.AtomicData.from_config(cfg, z_table=z_table, cutoff=float(base.r_max), heads=["Default"])],
        batch_size=1))).to_dict()
    out_adapted = adapted(copy.copy(batch), training=False, compute_force=True)
    merged = merge_lora_weights(copy.deepcopy(adapted))
    assert not [n for n, _ in merged.named_parameters() if "lora" in n]
    out_merged = merged(copy.copy(batch), training=False, compute_force=True)
    out_base = base(copy.copy(batch), training=False, compute_force=True)
    assert not torch.allclose(out_adapted["energy"], out_base["energy"], atol=1e-6)  # the adapters matter
    torch.testing.assert_close(out_merged["energy"], out_adapted["energy"], atol=1e-8, rtol=0)
    torch.testing.assert_close(out_merged["forces"], out_adapted["forces"], atol=1e-8, rtol=0)


def _force_mae(model_path, data_file) -> float:
    """Mean absolute force-component error (eV/Å) of a saved model on a labelled file (the evaluate stage's)."""
    return split_errors(mace_calculator(model_path), data_file)["force_mae"] / 1000.0


def test_naive_through_mace_run_train_and_the_in_process_trainer_agree(models, foundation, cu_data, tmp_path):
    """The matched recipe is mace_run_train's recipe in one process: on the same data and options, naive
    fine-tuning reaches the same validation force error (within 10 %) both ways, in the same number of steps."""
    params = {**PARAMS["common"], **PARAMS["naive"]}
    rec = finetune("naive", foundation[0], cu_data["train"], cu_data["valid"], BUDGET, 0, tmp_path / "m.model",
                   tmp_path / "m.json", tmp_path / "work", params, recipe="matched", device="cpu",
                   log=lambda s: None)
    mace_path, mace_rec = models["naive"]
    by_mace, in_process = _force_mae(mace_path, cu_data["valid"]), _force_mae(tmp_path / "m.model", cu_data["valid"])
    zero = _force_mae(models["pretrained"][0], cu_data["valid"])
    print(f"validation force MAE (meV/Å): foundation {1000 * zero:.2f}, naive mace_run_train {1000 * by_mace:.2f}, "
          f"in-process {1000 * in_process:.2f}; s/epoch {mace_rec['seconds_per_epoch']:.2f} vs "
          f"{rec['seconds_per_epoch']:.2f}")
    assert in_process < 0.7 * zero and by_mace < 0.7 * zero  # both learned something
    assert abs(in_process - by_mace) <= 0.1 * by_mace
    assert rec["tool"] == "in-process" and rec["recipe"] == "matched"
    assert rec["optimizer_steps"] == mace_rec["optimizer_steps"] == params["max_num_epochs"] * BUDGET // 2
    assert rec["learning_rate"] == mace_rec["learning_rate"] == params["lr"]
