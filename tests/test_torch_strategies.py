"""Behaviour and physics of the in-process trainer's strategies (equitrain LoRA via peft, L2-SP).

A tiny two-element MACE (Cu, Au; max_L 1, 2 interactions), pretrained for a few seconds on a softened
EMT (E_EMT(R/1.04)), stands in for the foundation; a handful of rattled, strained Cu/Au cells labelled
with plain EMT are the fine-tuning data.
"""

from __future__ import annotations

import contextlib
import copy
import zipfile

import numpy as np
import pytest

import mace  # noqa: F401  (sets the weights-only workaround before torch loads e3nn objects)
import torch

from phononft import peft_lora
from phononft.l2sp import L2SPLoss, L2SPPenalty
from phononft.torch_runtime import NonFiniteLossError, load_model
from phononft.torch_train import load_dataset, train_in_process

torch.set_num_threads(1)

FAST = {"max_num_epochs": 15, "patience": 15, "batch_size": 4}


@contextlib.contextmanager
def _f64():
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        yield
    finally:
        torch.set_default_dtype(previous)


@pytest.fixture(autouse=True)
def _float64():
    with _f64():
        yield


def _tiny_mace(seed: int = 1):
    from e3nn import o3
    from mace import modules

    torch.manual_seed(seed)
    block = modules.interaction_classes["RealAgnosticResidualInteractionBlock"]
    with _f64():
        return _build(modules, o3, block)


def _build(modules, o3, block):
    return modules.ScaleShiftMACE(
        r_max=4.0, num_bessel=6, num_polynomial_cutoff=5, max_ell=1,
        interaction_cls=block, interaction_cls_first=block, num_interactions=2, num_elements=2,
        hidden_irreps=o3.Irreps("8x0e+8x1o"), MLP_irreps=o3.Irreps("8x0e"),
        atomic_energies=np.array([-3.5, -3.8]), avg_num_neighbors=20.0, atomic_numbers=[29, 79],
        correlation=2, gate=torch.nn.functional.silu, radial_MLP=[16, 16],
        atomic_inter_scale=0.5, atomic_inter_shift=0.0,
    )


def _labelled_cells(n: int, seed: int, soft: float = 1.0):
    """Rattled, strained 8-atom Cu/Au cells labelled by E(R) = E_EMT(R / soft) (soft=1: plain EMT)."""
    from ase.build import bulk
    from ase.calculators.emt import EMT

    rng = np.random.default_rng(seed)
    cells = []
    for _ in range(n):
        atoms = bulk("Cu", "fcc", a=3.7, cubic=True).repeat((2, 1, 1))
        atoms.numbers[rng.random(len(atoms)) < 0.3] = 79
        strain = np.eye(3) + rng.normal(0.0, 0.01, (3, 3))
        atoms.set_cell(atoms.cell[:] @ strain, scale_atoms=True)
        atoms.positions += rng.normal(0.0, 0.08, atoms.positions.shape)
        ref = atoms.copy()
        ref.set_cell(atoms.cell[:] / soft, scale_atoms=True)
        ref.calc = EMT()
        atoms.info["REF_energy"] = ref.get_potential_energy()
        atoms.arrays["REF_forces"] = ref.get_forces() / soft
        atoms.info["REF_stress"] = ref.get_stress() / soft**3  # 6-Voigt, ASE sign convention
        cells.append(atoms)
    return cells


def _pretrain(model, path, epochs: int = 60):
    """The 'foundation': the tiny MACE fitted to a softened EMT (E_EMT(R/1.04)), plain mace steps."""
    from mace.data.atomic_data import get_data_loader
    from mace.modules.loss import WeightedEnergyForcesStressLoss
    from mace.tools.train import take_step

    torch.manual_seed(0)
    loader = get_data_loader(load_dataset(path, model, ["Default"], "Default"), batch_size=4)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    loss_fn = WeightedEnergyForcesStressLoss(1.0, 100.0, 10.0)
    output_args = {"energy": True, "forces": True, "virials": False, "stress": True}
    for _ in range(epochs):
        for batch in loader:
            take_step(model, loss_fn, batch, opt, None, output_args, 10.0, torch.device("cpu"))
    return model


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    import ase.io

    root = tmp_path_factory.mktemp("torch_strategies")
    foundation = root / "foundation.model"
    ase.io.write(root / "pretrain.extxyz", _labelled_cells(24, seed=3, soft=1.04))
    with _f64():
        torch.save(_pretrain(_tiny_mace(), root / "pretrain.extxyz"), foundation)
    ase.io.write(root / "train.extxyz", _labelled_cells(8, seed=11))
    ase.io.write(root / "valid.extxyz", _labelled_cells(4, seed=12))
    return {"root": root, "foundation": foundation, "train": root / "train.extxyz",
            "valid": root / "valid.extxyz"}


def _run(setup, strategy, name, **hyper):
    out = setup["root"] / f"{name}.model"
    lines = []
    result = train_in_process(strategy, setup["foundation"], setup["train"], setup["valid"], out, seed=0,
                              device="cpu", options={**FAST, **hyper}, recipe="study", log=lines.append)
    return out, result, lines


@pytest.fixture(scope="module")
def trained(setup):
    return {s: _run(setup, s, s) for s in ("equitrain", "l2sp")}


def _calc(path):
    from mace.calculators import MACECalculator

    return MACECalculator(model_paths=str(path), device="cpu", default_dtype="float64")


def _random_rotation(rng):
    q, r = np.linalg.qr(rng.normal(size=(3, 3)))
    q = q @ np.diag(np.sign(np.diag(r)))
    return q if np.linalg.det(q) > 0 else -q


def _energy_forces(calc, atoms):
    atoms = atoms.copy()
    atoms.calc = calc
    return atoms.get_potential_energy(), atoms.get_forces()


# --------------------------------------------------------------------------------------- equitrain LoRA


def test_equitrain_targets_and_ranks():
    model = _tiny_mace()
    targets = peft_lora.lora_targets(model)
    names = [t.name for t in targets]
    assert names and all(".conv_tp_weights.layer" in n and n.endswith(".weight") for n in names)
    assert len(names) == 2 * 3  # 2 interactions x 3 radial-MLP layers
    # rank = ceil(0.25 * min(shape)), scale 1 by default (Equitrain's alpha=None)
    for t in targets:
        assert t.rank == int(np.ceil(0.25 * min(t.shape)))
        assert t.scale == 1.0
    assert peft_lora.equitrain_rank((6, 16), 0.25) == 2
    assert peft_lora.equitrain_rank((16, 16), 0.01) == 1
    assert peft_lora.equitrain_rank((16, 32), 1.0) == 16


def test_equitrain_adapters_only_and_merge_matches(setup):
    """Only adapter tensors train, base weights stay bit-identical, merged == unmerged to 1e-8."""
    from mace.data.atomic_data import get_data_loader
    from mace.modules.loss import WeightedHuberEnergyForcesStressLoss
    from mace.tools.train import take_step

    model = load_model(setup["foundation"])
    base_before = {n: p.detach().clone() for n, p in model.named_parameters()}
    pm = peft_lora.wrap_lora(model, generator=torch.Generator().manual_seed(0))
    adapters = peft_lora.adapter_parameters(pm)
    trainable = [(n, p) for n, p in pm.named_parameters() if p.requires_grad]
    assert [n for n, _ in trainable] == [n for n, _ in adapters]
    n_trainable, n_total = peft_lora.count_parameters(pm)
    expected = sum(t.rank * (t.shape[0] + t.shape[1]) for t in pm.lora_targets)
    assert n_trainable == expected == sum(p.numel() for _, p in adapters)
    assert n_total == sum(base_before[n].numel() for n in base_before) + expected

    data = load_dataset(setup["train"], model, ["Default"], "Default")
    loader = get_data_loader(data, batch_size=4, shuffle=False)
    loss_fn = WeightedHuberEnergyForcesStressLoss(10.0, 100.0, 100.0, huber_delta=0.01)
    opt = torch.optim.AdamW([p for _, p in trainable], lr=1e-2, weight_decay=0.0)
    output_args = {"energy": True, "forces": True, "virials": False, "stress": True}
    for batch in list(loader) * 2:
        take_step(pm, loss_fn, batch, opt, None, output_args, 10.0, torch.device("cpu"))
    assert any(p.abs().max() > 0 for n, p in adapters if ".lora_B." in n)  # B moved off zero

    base_after = {n.replace("base_model.model.", "").replace(".base_layer", ""): p
                  for n, p in pm.named_parameters() if ".lora_" not in n}
    assert base_after.keys() == base_before.keys()
    for name, before in base_before.items():
        assert torch.equal(before, base_after[name]), name

    batch = next(iter(get_data_loader(data, batch_size=8, shuffle=False))).to_dict()
    out_adapted = pm(batch, training=False, compute_force=True, compute_stress=True)
    e_adapted, f_adapted = out_adapted["energy"].detach(), out_adapted["forces"].detach()
    merged = peft_lora.merge_lora(pm)
    assert type(merged) is type(model)
    out_merged = merged(batch, training=False, compute_force=True, compute_stress=True)
    assert torch.allclose(out_merged["energy"], e_adapted, atol=1e-8, rtol=0)
    assert torch.allclose(out_merged["forces"], f_adapted, atol=1e-8, rtol=0)
    assert not (out_merged["energy"] - out_merged["energy"]).isnan().any()


def test_equitrain_run_changes_only_targets_by_low_rank(setup, trained):
    out, result, lines = trained["equitrain"]
    foundation = load_model(setup["foundation"])
    tuned = load_model(out)
    assert type(tuned) is type(foundation)
    targets = {t.name: t for t in peft_lora.lora_targets(foundation)}
    for (name, p0), (name1, p1) in zip(foundation.named_parameters(), tuned.named_parameters()):
        assert name == name1
        if name in targets:
            delta = (p1 - p0).detach()
            assert delta.abs().max() > 0, name
            assert torch.linalg.matrix_rank(delta, atol=1e-10) <= targets[name].rank, name
        else:
            assert torch.equal(p0, p1), name  # everything else is the foundation's, bit for bit
    assert torch.equal(foundation.atomic_energies_fn.atomic_energies,
                       tuned.atomic_energies_fn.atomic_energies)  # E0s kept
    with zipfile.ZipFile(out) as archive:  # a plain pickle: no peft class or parametrization inside
        pickled = b"".join(archive.read(n) for n in archive.namelist() if n.endswith("data.pkl"))
    assert pickled and b"peft" not in pickled and b"parametriz" not in pickled
    assert result["trainable_parameters"] == sum(t.n_adapter_params for t in targets.values())
    assert result["foundation_parameters"] == sum(p.numel() for p in foundation.parameters())
    assert result["total_parameters"] == result["foundation_parameters"] + result["trainable_parameters"]


# --------------------------------------------------------------------------------------------- L2-SP


def test_l2sp_penalty_zero_at_pretrained_and_grows():
    model = _tiny_mace()
    assert L2SPPenalty(model, lam=0.5)().item() == 0.0
    direction = [torch.randn_like(p) for p in model.parameters()]
    n_weights = sum(p.numel() for p in model.parameters())

    def moved(eps):
        m = copy.deepcopy(model)
        pen = L2SPPenalty(m, lam=0.5)  # anchored at the pretrained weights
        with torch.no_grad():
            for p, d in zip(m.parameters(), direction):
                p.add_(eps * d)
        return m, pen

    values = [moved(eps)[1]().item() for eps in (1e-3, 2e-3, 4e-3)]
    expected = 0.5 * sum((1e-3 * d).pow(2).sum().item() for d in direction) / n_weights  # lambda x mean
    assert values[0] == pytest.approx(expected, rel=1e-10)
    assert values[1] == pytest.approx(4 * values[0], rel=1e-8)
    assert values[2] == pytest.approx(16 * values[0], rel=1e-8)
    # its gradient is 2 lambda (w - w0) / n_weights
    m, pen = moved(1e-3)
    pen().backward()
    for p, d in zip(m.parameters(), direction):
        assert torch.allclose(p.grad, 2 * 0.5 * 1e-3 * d / n_weights, atol=1e-16)


def test_l2sp_loss_adds_penalty(setup):
    from mace.modules.loss import WeightedHuberEnergyForcesStressLoss

    model = load_model(setup["foundation"])
    base = WeightedHuberEnergyForcesStressLoss(10.0, 100.0, 100.0, huber_delta=0.01)
    pen = L2SPPenalty(model, lam=2.0)
    with torch.no_grad():
        model.readouts[0].linear.weight.add_(0.1)
    n = model.readouts[0].linear.weight.numel()
    n_weights = sum(p.numel() for p in model.parameters())
    data = load_dataset(setup["train"], model, ["Default"], "Default")
    from mace.data.atomic_data import get_data_loader

    batch = next(iter(get_data_loader(data, batch_size=8, shuffle=False)))
    pred = model(batch.to_dict(), training=False, compute_force=True, compute_stress=True)
    total = L2SPLoss(base, pen)(ref=batch, pred=pred)
    assert total.item() == pytest.approx(base(ref=batch, pred=pred).item() + 2.0 * n * 0.01 / n_weights, rel=1e-10)


def _distance2(a, b):
    return sum((pa - pb).pow(2).sum().item() for pa, pb in zip(a.parameters(), b.parameters()))


def test_l2sp_huge_lambda_keeps_weights_near_pretrained(setup):
    foundation = load_model(setup["foundation"])
    free, _, _ = _run(setup, "l2sp", "l2sp_lam0", l2sp_lambda=0.0, max_num_epochs=4, patience=4)
    tied, res, _ = _run(setup, "l2sp", "l2sp_lam_huge", l2sp_lambda=1e6, max_num_epochs=4, patience=4)
    d_free = _distance2(load_model(free), foundation)
    d_tied = _distance2(load_model(tied), foundation)
    assert d_free > 0
    assert d_tied < 0.05 * d_free
    assert res["l2sp_lambda"] == 1e6


# ------------------------------------------------------------------------------- both strategies


@pytest.mark.parametrize("strategy", ["equitrain", "l2sp"])
def test_trained_model_is_equivariant_and_loads(setup, trained, strategy):
    out, result, lines = trained[strategy]
    calc = _calc(out)  # loads in MACE's ASE calculator
    atoms = _labelled_cells(1, seed=99)[0]
    rng = np.random.default_rng(5)
    rot = _random_rotation(rng)
    e0, f0 = _energy_forces(calc, atoms)
    rotated = atoms.copy()
    rotated.set_cell(atoms.cell[:] @ rot.T, scale_atoms=False)
    rotated.positions = atoms.positions @ rot.T
    e1, f1 = _energy_forces(calc, rotated)
    assert abs(e1 - e0) < 1e-6
    assert np.abs(f1 - f0 @ rot.T).max() < 1e-6
    # a translation too, for good measure
    shifted = atoms.copy()
    shifted.positions += np.array([0.3, -0.2, 0.7])
    e2, f2 = _energy_forces(calc, shifted)
    assert abs(e2 - e0) < 1e-8 and np.abs(f2 - f0).max() < 1e-8


@pytest.mark.parametrize("strategy", ["equitrain", "l2sp"])
def test_training_lowers_validation_force_error(setup, trained, strategy):
    import ase.io

    out, result, lines = trained[strategy]
    # the driver's own bookkeeping ...
    best = result["history"][result["best_epoch"] - 1]
    assert best["valid_loss"] == result["best_valid_loss"]
    assert best["valid_mae_f"] < result["initial_valid"]["mae_f"]
    # ... and an independent check with MACE's calculator on the validation file
    valid = ase.io.read(setup["valid"], ":")

    def force_mae(path):
        calc = _calc(path)
        errs = [np.abs(_energy_forces(calc, a)[1] - a.arrays["REF_forces"]) for a in valid]
        return float(np.mean(np.concatenate(errs)))

    before, after = force_mae(setup["foundation"]), force_mae(out)
    assert after < 0.9 * before
    assert after == pytest.approx(best["valid_mae_f"], rel=1e-6)


@pytest.mark.parametrize("strategy", ["equitrain", "l2sp"])
def test_result_record(trained, strategy):
    import json

    out, result, lines = trained[strategy]
    json.dumps(result)  # the caller writes it as JSON
    assert result["strategy"] == strategy and result["device"] == "cpu" and result["dtype"] == "float64"
    assert 1 <= result["best_epoch"] <= result["epochs_run"] <= FAST["max_num_epochs"]
    assert result["optimizer_steps"] == result["epochs_run"] * 2  # ceil(8 structures / batch 4) per epoch
    assert result["learning_rate"] == 5e-3 and result["tool"] == "in-process"
    assert len(result["history"]) == result["epochs_run"]
    assert len([ln for ln in lines if " epoch " in ln]) == result["epochs_run"]
    assert result["seconds_per_epoch"] > 0 and result["wall_time_s"] > 0
    assert result["peak_memory_mb"] > 0
    assert 0 < result["trainable_parameters"] <= result["total_parameters"]
    if strategy == "l2sp":
        assert result["trainable_parameters"] == result["total_parameters"]
    else:
        assert result["trainable_parameters"] < 0.5 * result["foundation_parameters"]
    assert not list(out.parent.glob(f".{out.name}.*"))  # no temporary left behind


def test_same_seed_same_result(setup):
    a, ra, _ = _run(setup, "equitrain", "det_a", max_num_epochs=2)
    b, rb, _ = _run(setup, "equitrain", "det_b", max_num_epochs=2)
    assert [r["train_loss"] for r in ra["history"]] == [r["train_loss"] for r in rb["history"]]
    assert [r["valid_loss"] for r in ra["history"]] == [r["valid_loss"] for r in rb["history"]]
    for pa, pb in zip(load_model(a).parameters(), load_model(b).parameters()):
        assert torch.equal(pa, pb)


def test_nan_loss_raises_and_writes_nothing(setup):
    import ase.io

    bad = ase.io.read(setup["train"], ":")
    bad[0].arrays["REF_forces"][0, 0] = np.nan
    bad_file = setup["root"] / "bad.extxyz"
    ase.io.write(bad_file, bad)
    out = setup["root"] / "nan" / "never.model"
    for strategy in ("equitrain", "l2sp"):
        with pytest.raises(NonFiniteLossError):
            train_in_process(strategy, setup["foundation"], bad_file, setup["valid"], out,
                             device="cpu", options={"max_num_epochs": 2}, log=lambda s: None)
        assert not out.exists()
        assert not out.parent.exists() or not any(out.parent.iterdir())


def test_rejects_unknown_strategy_and_options(setup):
    with pytest.raises(ValueError, match="unknown strategy 'lorra' \\(did you mean 'lora'\\?\\)"):
        train_in_process("lorra", setup["foundation"], setup["train"], setup["valid"],
                         setup["root"] / "x.model", device="cpu")
    with pytest.raises(ValueError, match="unknown option\\(s\\) l2sp_lamda \\(did you mean 'l2sp_lambda'\\?\\)"):
        train_in_process("l2sp", setup["foundation"], setup["train"], setup["valid"],
                         setup["root"] / "x.model", device="cpu", options={"l2sp_lamda": 1.0})
    assert not (setup["root"] / "x.model").exists()
