"""Bad input and failing jobs: clear errors naming the culprit, and nothing half-written."""

from __future__ import annotations

import numpy as np
import pytest
from ase.build import bulk

from phononft.config import ConfigError, validate_config
from phononft.finetune import finetune
from phononft.io import atomic_path, read_extxyz, write_extxyz
from phononft.label import label_structures, make_calculator
from phononft.rattle import make_split
from phononft.structures import StructureError

import yaml
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def demo_config() -> dict:
    return yaml.safe_load((REPO / "config" / "config.yaml").read_text())


@pytest.mark.parametrize("mutate, message", [
    (lambda c: c.update(budgets=[2, -1]), r"budgets\[1\]: -1 is less than the minimum of 1"),
    (lambda c: c.update(strategies=["naive", "loraa"]), r"strategies\[1\]: 'loraa' is not allowed; choose one of"),
    (lambda c: c["labeller"].update(type="dft"), r"labeller.type: 'dft' is not allowed; choose one of \['mock', 'vasp'\]"),
    (lambda c: c.update(seeds="0"), r"seeds: '0' is not of type 'array'"),
    (lambda c: c.update(seeds=["0", "x"]), r"seeds\[1\]: 'x' is not of type 'integer'"),
    (lambda c: c.update(budgets=["2.5"]), r"budgets\[0\]: '2.5' is not of type 'integer'"),
    (lambda c: c["phonons"].update(mesh=2.5), r"phonons.mesh: 2.5 is not of type 'integer'"),
    (lambda c: c["finetune"].update(devise="cpu"), r"finetune: unknown key\(s\) 'devise' \(did you mean 'device'\?\)"),
    (lambda c: c["materials"].update({"bad name": {"bulk": {"name": "Cu"}}}), r"materials: invalid name 'bad name'"),
    (lambda c: c["materials"].update(X={"bulk": {"name": "Cu"}, "file": "x.cif"}), r"materials.X: give exactly one of"),
])
def test_config_errors_name_the_key(mutate, message):
    cfg = demo_config()
    mutate(cfg)
    with pytest.raises(ConfigError, match=message):
        validate_config(cfg)


def test_numbers_given_as_text_on_the_command_line():
    """``snakemake --config seeds=[0,1] budgets=[2,10]`` hands list items over as strings: read as numbers."""
    cfg = demo_config()
    cfg.update(seeds=["0", "1"], budgets=["2", "10"])
    cfg["rattle"]["rattle_std"] = "0.05"
    validate_config(cfg)
    assert cfg["seeds"] == [0, 1] and cfg["budgets"] == [2, 10] and cfg["rattle"]["rattle_std"] == 0.05


def test_atoms_too_close_after_rattling_names_the_material():
    with pytest.raises(StructureError, match=r"material 'Cu_fcc', rattled structure 0: atoms .* closer than"):
        make_split(bulk("Cu", "fcc", a=3.61, cubic=True), "train", 2, seed=0, rattle_std=0.8, d_min=0.1,
                   what="material 'Cu_fcc'")


def test_atomic_write_leaves_old_file_on_failure(tmp_path):
    target = tmp_path / "metrics.json"
    target.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("killed")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.json"]


def test_json_outputs_are_strict_json(tmp_path):
    """NaN or infinite values (numpy's or Python's) are written as null, which jq and JavaScript read."""
    import json

    from phononft.io import write_json

    write_json(tmp_path / "m.json", {"a": np.float64("nan"), "b": float("inf"), "c": np.float32(1.5),
                                     "d": [np.nan, 2.0]})

    def refuse(name):
        raise ValueError(f"non-standard JSON constant {name}")

    data = json.loads((tmp_path / "m.json").read_text(), parse_constant=refuse)
    assert data == {"a": None, "b": None, "c": 1.5, "d": [None, 2.0]}


def test_element_unknown_to_the_foundation(foundation, tmp_path):
    images = make_split(bulk("Ni", "fcc", a=3.52, cubic=True), "train", 2, seed=0, supercell_min_length=5.0)
    write_extxyz(tmp_path / "ni.extxyz", label_structures(images, make_calculator(), log=lambda s: None))
    with pytest.raises(ValueError, match=r"element\(s\) Ni unknown to the foundation model .* knows Cu, Au"):
        finetune("naive", foundation[0], tmp_path / "ni.extxyz", tmp_path / "ni.extxyz", 2, 0,
                 tmp_path / "m.model", tmp_path / "m.json", tmp_path / "w", {"max_num_epochs": 1}, device="cpu",
                 log=lambda s: None)
    assert not (tmp_path / "m.model").exists()


@pytest.mark.parametrize("strategy", ["naive", "l2sp"])
def test_nan_loss_fails_and_writes_no_model(foundation, cu_data, tmp_path, strategy):
    images = read_extxyz(cu_data["train"])[:2]
    images[1].arrays["REF_forces"][0, 0] = np.nan
    write_extxyz(tmp_path / "nan.extxyz", images)
    params = {"max_num_epochs": 2, "batch_size": 2}
    with pytest.raises(Exception, match=r"(?i)non-finite|nan"):
        finetune(strategy, foundation[0], tmp_path / "nan.extxyz", cu_data["valid"], 2, 0, tmp_path / "m.model",
                 tmp_path / "m.json", tmp_path / "w", params, device="cpu", log=lambda s: None)
    assert not (tmp_path / "m.model").exists() and not (tmp_path / "m.json").exists()
