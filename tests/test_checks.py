"""What can be known before any job is checked before any job (phononft.checks.check_inputs, called when the
workflow starts): every broken input is named with its material and a reason, all of them in one error."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from phononft.checks import check_inputs
from phononft.config import ConfigError, validate_config

REPO = Path(__file__).resolve().parents[1]


def _config(materials: dict, **foundation) -> dict:
    cfg = yaml.safe_load((REPO / "tests" / "data" / "tiny.yaml").read_text())
    cfg["materials"] = materials
    cfg["strategies"] = ["pretrained", "naive"]  # (multihead would ask for the replay data of a model file)
    cfg["finetune"]["strategy_params"] = {k: v for k, v in cfg["finetune"]["strategy_params"].items()
                                          if k in cfg["strategies"]}
    cfg["foundation"].update(foundation)
    return validate_config(copy.deepcopy(cfg))


def test_broken_structure_and_reference_files_are_named_before_any_job(tmp_path):
    broken_cif = tmp_path / "broken.cif"
    broken_cif.write_text("data_x\n_cell_length_a 3.6\nloop_\n_atom_site_label\n")  # no cell, no sites
    not_yaml = tmp_path / "bad.phonopy.yaml"
    not_yaml.write_text("phonopy: [unclosed\n")
    no_cell = tmp_path / "nocell.phonopy.yaml"
    no_cell.write_text("phonopy:\n  version: 2.20\n")
    cfg = _config({
        "Cu_ok": {"bulk": {"name": "Cu", "crystalstructure": "fcc", "a": 3.61, "cubic": True}},
        "missing_file": {"file": str(tmp_path / "nowhere.cif")},
        "broken_cif": {"file": str(broken_cif)},
        "missing_ref": {"reference_phonopy": str(tmp_path / "nowhere.phonopy.yaml")},
        "bad_yaml": {"reference_phonopy": str(not_yaml)},
        "no_cell": {"reference_phonopy": str(no_cell)},
    })
    with pytest.raises(ConfigError) as err:
        check_inputs(cfg, cache_dir=tmp_path / "cache")
    lines = [block.strip() for block in str(err.value).split("\n  material ")[1:]]  # one entry per culprit
    by_material = {line.split("'")[1]: line for line in lines}
    assert set(by_material) == {"missing_file", "broken_cif", "missing_ref", "bad_yaml", "no_cell"}  # not Cu_ok
    assert "nowhere.cif" in by_material["missing_file"]
    assert "nowhere.phonopy.yaml does not exist" in by_material["missing_ref"]
    assert "does not parse: not valid YAML" in by_material["bad_yaml"]
    assert "no unit_cell block" in by_material["no_cell"]
    assert "the file's content is not a structure ASE can read" in by_material["broken_cif"]
    for line in lines:  # every message ends in a reason, never in an empty one after a colon
        assert not line.rstrip().endswith(":") and len(line.rsplit(":", 1)[-1].strip()) > 3, line


def test_reference_phonopy_without_forces_is_named(tmp_path):
    import phonopy
    from ase.build import bulk
    from phonopy.structure.atoms import PhonopyAtoms

    cu = bulk("Cu", "fcc", a=3.61)
    ph = phonopy.Phonopy(PhonopyAtoms(symbols=cu.get_chemical_symbols(), cell=cu.cell[:],
                                      scaled_positions=cu.get_scaled_positions()), supercell_matrix=[2, 2, 2])
    ph.generate_displacements(distance=0.01)
    path = tmp_path / "Cu.phonopy.yaml"
    ph.save(str(path))  # displacements, no forces
    cfg = _config({"Cu": {"reference_phonopy": str(path)}})
    with pytest.raises(ConfigError, match=r"'Cu': reference_phonopy .* holds no forces and no FORCE_SETS"):
        check_inputs(cfg, cache_dir=tmp_path / "cache")
    (tmp_path / "Cu.FORCE_SETS").write_text("1\n")  # forces beside it are accepted (the job reads them)
    check_inputs(cfg, cache_dir=tmp_path / "cache")


@pytest.mark.slow  # the session's tiny foundation (pretrained on Cu and Au)
def test_element_unknown_to_a_foundation_file_is_named(foundation, tmp_path):
    model, _ = foundation
    cfg = _config({"Cu": {"bulk": {"name": "Cu", "crystalstructure": "fcc", "a": 3.61, "cubic": True}},
                   "Ni": {"bulk": {"name": "Ni", "crystalstructure": "fcc", "a": 3.52, "cubic": True}}},
                  model=str(model))
    with pytest.raises(ConfigError, match=r"'Ni': element\(s\) Ni unknown to the foundation model") as err:
        check_inputs(cfg, cache_dir=tmp_path / "cache")
    assert "'Cu'" not in str(err.value)
    broken = tmp_path / "broken.model"
    broken.write_bytes(b"not a model")
    with pytest.raises(ConfigError, match=r"foundation.model .*broken.model does not load as a MACE model: \w+"):
        check_inputs(_config({"Cu": {"bulk": {"name": "Cu", "crystalstructure": "fcc", "a": 3.61}}},
                             model=str(broken)), cache_dir=tmp_path / "cache")
