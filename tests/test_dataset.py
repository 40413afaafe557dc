"""Own data (materials.<m>.data, phononft.dataset): reading with units and signs, VASP files through ASE, the
seeded nested split, mixing with labelled rattled structures, checks before any job, one real label job."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import ase.io
import numpy as np
import pytest
import yaml
from ase.build import bulk
from ase.calculators.emt import EMT
from ase.units import GPa

from phononft import layout

TRAIN = layout.train_split("random", 0)  # seed 0's training series
from phononft.checks import check_inputs
from phononft.config import ConfigError, resolve_material_paths, validate_config
from phononft.dataset import (
    DataError,
    assemble_split,
    data_summary,
    first_structure,
    material_plan,
    read_labelled,
    split_params,
    split_plan,
)
from phononft.io import get_labels, read_extxyz
from phononft.vasp import write_inputs

from test_vasp import Fake  # noqa: E402  (the fake VASP's environment: POTCARs, PATH)

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "config" / "examples" / "data" / "Cu_fcc"
#: the reading settings of a data block as the schema fills them in, for the tests that bypass validation
DEFAULTS = {"format": "auto", "ionic_steps": "last", "energy_key": "REF_energy", "forces_key": "REF_forces",
            "stress_key": "REF_stress", "stress_unit": "eV/Å^3", "stress_sign": "ase", "valid_test": "data",
            "mix": False}


def rattled_cu(n: int, seed: int = 0, repeat: int = 1) -> list:
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        atoms = bulk("Cu", "fcc", a=3.6, cubic=True).repeat(repeat)
        atoms.set_cell(atoms.cell * (1 + rng.uniform(-0.01, 0.01)), scale_atoms=True)
        atoms.positions += rng.normal(0, 0.05, atoms.positions.shape)
        out.append(atoms)
    return out


def emt(atoms):
    a = atoms.copy()
    a.calc = EMT()
    return a.get_potential_energy(), a.get_forces(), a.get_stress()


def write_custom(path: Path, images, *, unit: float = 1.0, sign: float = 1.0, stress=True, forces=True) -> None:
    """extxyz with keys dft_E / dft_F / dft_S, the stress divided by ``unit`` (eV/Å^3 per unit) times ``sign``
    and written as a 3x3 tensor."""
    out = []
    for atoms in images:
        e, f, s = emt(atoms)
        a = atoms.copy()
        a.info["dft_E"] = e
        if forces:
            a.arrays["dft_F"] = f
        if stress:
            a.info["dft_S"] = sign * _voigt_to_3x3(s) / unit
        out.append(a)
    ase.io.write(path, out, format="extxyz")


def _voigt_to_3x3(s):
    xx, yy, zz, yz, xz, xy = s
    return np.array([[xx, xy, xz], [xy, yy, yz], [xz, yz, zz]])


def settings(**kw) -> dict:
    return {**DEFAULTS, **kw}


# ---- reading -----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("unit, factor, sign", [("GPa", GPa, "ase"), ("kBar", 0.1 * GPa, "vasp"),
                                                ("eV/Å^3", 1.0, "ase")])
def test_extxyz_custom_keys_units_and_sign(tmp_path, unit, factor, sign):
    images = rattled_cu(3)
    path = tmp_path / "own.extxyz"
    write_custom(path, images, unit=factor, sign=-1.0 if sign == "vasp" else 1.0)
    got = read_labelled(path, "extxyz", settings(energy_key="dft_E", forces_key="dft_F", stress_key="dft_S",
                                                 stress_unit=unit, stress_sign=sign))
    assert len(got) == 3
    for atoms, ref in zip(got, images):
        e, f, s = emt(ref)
        energy, forces, stress = get_labels(atoms)
        assert energy == pytest.approx(e, abs=1e-9)
        np.testing.assert_allclose(forces, f, rtol=0, atol=1e-8)  # extxyz writes arrays with 8 decimals
        np.testing.assert_allclose(stress, s, rtol=0, atol=1e-12)  # eV/Å^3, ASE's sign (6-Voigt)
        assert np.abs(s).max() > 1e-3  # a real stress: a wrong factor or sign would show
        assert not {"dft_E", "dft_S"} & set(atoms.info) and "dft_F" not in atoms.arrays
        assert atoms.info["label_source"] == "data" and atoms.info["data_file"] == str(path)


def test_ase_calculator_results_are_read(tmp_path):
    """Files written by ASE from a calculator (energy=, forces, stress=): keys energy / forces / stress."""
    got = read_labelled(EXAMPLE / "labelled.extxyz", "extxyz",
                        settings(energy_key="energy", forces_key="forces", stress_key="stress"))
    assert len(got) == 12
    for atoms in got:
        e, f, s = emt(atoms)
        energy, forces, stress = get_labels(atoms)
        assert energy == pytest.approx(e, abs=1e-6)
        np.testing.assert_allclose(forces, f, atol=1e-6)  # positions are written with 8 decimals
        np.testing.assert_allclose(stress, s, atol=1e-8)


def test_no_stress_when_stress_key_is_null(tmp_path):
    path = tmp_path / "nostress.extxyz"
    write_custom(path, rattled_cu(2), stress=False)
    s = settings(energy_key="dft_E", forces_key="dft_F")
    with pytest.raises(DataError, match=r"structure 0: no stress under data.stress_key 'REF_stress'.*null"):
        read_labelled(path, "extxyz", s)
    got = read_labelled(path, "extxyz", {**s, "stress_key": None})
    assert get_labels(got[0])[2] is None


@pytest.fixture(scope="module")
def vasp_runs(tmp_path_factory):
    """Two static runs and one relaxation (several ionic steps) of the fake VASP; their inputs."""
    tmp_path = tmp_path_factory.mktemp("vasp")
    with pytest.MonkeyPatch.context() as monkeypatch:
        fake = Fake(tmp_path, monkeypatch)
        static = rattled_cu(2, seed=3)
        for k, atoms in enumerate(static):
            fake.run(atoms, name=f"static{k}")
        # a relaxation stopped after NSW = 4 ionic steps (run directly: run_vasp refuses an unconverged one)
        write_inputs(rattled_cu(1, seed=4)[0], tmp_path / "relax", kind="relax_ions",
                     incar={"NSW": 4, "EDIFFG": -1e-4}, kpoint_density=50.0)
        subprocess.run(["vasp_std"], cwd=tmp_path / "relax", check=True, capture_output=True)
    return tmp_path, static


@pytest.mark.parametrize("fmt, name", [("vasprun", "vasprun.xml"), ("outcar", "OUTCAR")])
def test_vasp_files_give_emt_labels(vasp_runs, fmt, name):
    root, static = vasp_runs
    for k, atoms in enumerate(static):
        got = read_labelled(root / f"static{k}" / name, fmt, settings())
        assert len(got) == 1
        e, f, s = emt(atoms)
        energy, forces, stress = get_labels(got[0])
        np.testing.assert_allclose(got[0].positions, atoms.positions, atol=1e-6)
        assert energy == pytest.approx(e, abs=1e-6)  # energy(sigma->0), not the free energy (0.5 meV/atom off)
        np.testing.assert_allclose(forces, f, atol=1e-6)
        np.testing.assert_allclose(stress, s, atol=1e-8)  # kBar, VASP's sign -> eV/Å^3, ASE's sign
        assert np.abs(s).max() > 1e-3
    steps = read_labelled(root / "relax" / name, fmt, settings(ionic_steps="all"))
    last = read_labelled(root / "relax" / name, fmt, settings())
    assert len(steps) == 4 and len(last) == 1  # NSW 4 ionic steps, every one or the last
    np.testing.assert_allclose(last[0].positions, steps[-1].positions)
    assert steps[0].info["REF_energy"] > steps[-1].info["REF_energy"]  # a relaxation: the energy drops
    for atoms in steps:
        e, f, s = emt(atoms)
        assert atoms.info["REF_energy"] == pytest.approx(e, abs=1e-6)
        np.testing.assert_allclose(atoms.arrays["REF_forces"], f, atol=1e-6)
        np.testing.assert_allclose(atoms.info["REF_stress"], s, atol=1e-8)


def test_auto_format_and_first_structure(tmp_path):
    data = settings(files=[str(EXAMPLE / "vasp" / "*" / "vasprun.xml"), str(EXAMPLE / "labelled.extxyz")],
                    energy_key="energy", forces_key="forces", stress_key="stress")
    summary = data_summary(data, tmp_path / "cache")
    assert [fmt for _, fmt in summary["files"]] == ["vasprun", "vasprun", "extxyz"]
    assert summary["counts"] == [1, 1, 12] and summary["n"] == 14 and summary["elements"] == ["Cu"]
    first = first_structure(data)
    vasp_first = ase.io.read(EXAMPLE / "vasp" / "run0" / "vasprun.xml", format="vasp-xml")
    np.testing.assert_allclose(first.positions, vasp_first.positions)
    assert first.calc is None and "REF_energy" not in first.info


# ---- the split -----------------------------------------------------------------------------------------------
def test_split_is_seeded_disjoint_and_nested():
    plan = split_plan(30, n_train=10, n_valid=4, n_test=3, seed=7)
    assert plan == split_plan(30, n_train=10, n_valid=4, n_test=3, seed=7)  # deterministic
    assert plan != split_plan(30, n_train=10, n_valid=4, n_test=3, seed=8)
    idx = {s: plan[s]["data"] for s in plan}
    assert [len(idx[s]) for s in ("train", "valid", "test")] == [10, 4, 3]
    assert len(set(idx["train"]) | set(idx["valid"]) | set(idx["test"])) == 17  # disjoint
    assert all(plan[s]["rattled"] == 0 for s in plan)
    bigger = split_plan(30, n_train=20, n_valid=4, n_test=3, seed=7)
    assert bigger["train"]["data"][:10] == idx["train"]  # nested: budget N is the first N of the series
    assert bigger["valid"] == plan["valid"] and bigger["test"] == plan["test"]  # budgets never move valid/test
    assert sorted(idx["train"]) != idx["train"]  # shuffled, not file order


def test_too_few_structures_named_with_the_numbers():
    with pytest.raises(DataError, match=r"^7 training structures in data.files \(11 structures, 2 valid \+ 2 test "
                                        r"held out\), budgets need 10"):
        split_plan(11, n_train=10, n_valid=2, n_test=2, seed=0)
    with pytest.raises(DataError, match="3 structures in data.files, but n_valid 2 \\+ n_test 2"):
        split_plan(3, n_train=1, n_valid=2, n_test=2, seed=0)


def test_mixing_puts_the_users_structures_first(tmp_path):
    path = tmp_path / "own.extxyz"
    write_custom(path, rattled_cu(7), stress=True)
    data = settings(files=[str(path)], energy_key="dft_E", forces_key="dft_F", stress_key="dft_S", mix=True)
    rattle = {"n_valid": 2, "n_test": 2, "seed": 42}
    plan = material_plan(data, n_train=6, rattle=rattle, cache_dir=tmp_path / "cache")
    assert len(plan["splits"]["train"]["data"]) == 3 and plan["splits"]["train"]["rattled"] == 3
    rattled = rattled_cu(5, seed=9)
    for atoms in rattled:
        e, f, s = emt(atoms)
        atoms.info.update(REF_energy=e, REF_stress=s, label_source="mock")
        atoms.arrays["REF_forces"] = f
    train = assemble_split(split_params(plan, "train"), "train", rattled, log=lambda s: None)
    assert [a.info["label_source"] for a in train] == ["data"] * 3 + ["mock"] * 3
    assert [a.info["series_index"] for a in train] == list(range(6))
    assert [a.info["data_index"] for a in train[:3]] == plan["splits"]["train"]["data"]
    np.testing.assert_allclose(train[3].positions, rattled[0].positions)  # the first rattled ones, in order
    # valid and test from the labeller: every own structure trains
    labeller = material_plan({**data, "valid_test": "labeller"}, n_train=8, rattle=rattle, cache_dir=tmp_path / "c")
    assert sorted(labeller["splits"]["train"]["data"]) == list(range(7)) and labeller["splits"]["train"]["rattled"] == 1
    assert labeller["splits"]["valid"] == {"data": [], "rattled": 2} == {**labeller["splits"]["test"], "rattled": 2}


# ---- checks before any job ---------------------------------------------------------------------------------
def data_config(tmp_path: Path, data: dict, material: dict | None = None, budgets=(2, 5)) -> dict:
    cfg = yaml.safe_load((REPO / "tests" / "data" / "tiny.yaml").read_text())
    cfg["materials"] = {"Cu_own": {**(material or {}), "data": data}}
    cfg["budgets"] = list(budgets)
    validate_config(cfg)
    resolve_material_paths(cfg["materials"], REPO)
    return cfg


def refused(cfg, tmp_path) -> str:
    with pytest.raises(ConfigError) as info:
        check_inputs(cfg, cache_dir=tmp_path / "cache")
    return str(info.value)


def test_example_data_pass_the_checks(tmp_path):
    cfg = yaml.safe_load((REPO / "config" / "examples" / "own_data.yaml").read_text())
    validate_config(cfg)
    resolve_material_paths(cfg["materials"], REPO)
    cfg["foundation"]["model"] = None  # the example's model file is not shipped
    check_inputs(cfg, cache_dir=tmp_path / "cache")
    assert (tmp_path / "cache" / "data_files.json").is_file()  # parsed once, then read from the cache


def test_bad_inputs_are_refused_naming_material_and_culprit(tmp_path):
    good = tmp_path / "good.extxyz"
    write_custom(good, rattled_cu(9))
    keys = {"energy_key": "dft_E", "forces_key": "dft_F", "stress_key": "dft_S"}
    # a missing file
    msg = refused(data_config(tmp_path, {"files": [str(tmp_path / "missing*.extxyz")], **keys}), tmp_path)
    assert "material 'Cu_own'" in msg and "missing*.extxyz" in msg and "matches no file" in msg
    # a missing forces key
    noforces = tmp_path / "noforces.extxyz"
    write_custom(noforces, rattled_cu(2), forces=False)
    msg = refused(data_config(tmp_path, {"files": [str(good), str(noforces)], **keys}), tmp_path)
    assert "material 'Cu_own'" in msg and "noforces.extxyz, structure 0: no forces under data.forces_key 'dft_F'" in msg
    # a wrong element
    gold = tmp_path / "gold.extxyz"
    images = rattled_cu(2)
    images[1].symbols[0] = "Au"
    write_custom(gold, images)
    msg = refused(data_config(tmp_path, {"files": [str(good), str(gold)], **keys},
                              {"bulk": {"name": "Cu", "crystalstructure": "fcc", "a": 3.6, "cubic": True}}), tmp_path)
    assert "material 'Cu_own': data file" in msg and "gold.extxyz holds element(s) Au, not the material's (Cu)" in msg
    # too few structures for the budgets: 9 - 2 valid - 2 test = 5 < 10
    msg = refused(data_config(tmp_path, {"files": [str(good)], **keys}, budgets=(2, 10)), tmp_path)
    assert "material 'Cu_own': 5 training structures in data.files" in msg and "budgets need 10" in msg
    # ... which mixing with rattled structures allows
    check_inputs(data_config(tmp_path, {"files": [str(good)], "mix": True, **keys}, budgets=(2, 10)),
                 cache_dir=tmp_path / "cache")
    # per-material sizes apply to data-held-out splits only
    msg = refused(data_config(tmp_path, {"files": [str(good)], "valid_test": "labeller", "n_valid": 3, **keys}),
                  tmp_path)
    assert "data.n_valid applies to valid_test: data only" in msg


def run_snakemake(args, cwd, timeout=600):
    env = dict(os.environ, PYTHONPATH=str(REPO / "src"))
    return subprocess.run([sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), *args], cwd=cwd,
                          env=env, capture_output=True, text=True, timeout=timeout)


def test_workflow_refuses_bad_data_before_any_job(tmp_path):
    cfg = data_config(tmp_path, {"files": [str(EXAMPLE / "labelled.extxyz")], "energy_key": "energy",
                                 "forces_key": "forces", "stress_key": "stress"}, budgets=(2, 10))
    path = tmp_path / "few.yaml"
    path.write_text(yaml.safe_dump(cfg, allow_unicode=True))
    res = run_snakemake(["-n", "--configfile", str(path), "--directory", str(tmp_path)], tmp_path)
    assert res.returncode != 0
    assert "material 'Cu_own': 8 training structures in data.files (12 structures, 2 valid + 2 test held out), " \
           "budgets need 10" in res.stdout + res.stderr
    assert not (tmp_path / "results").exists()


# ---- real label jobs -------------------------------------------------------------------------------------------
EXAMPLE_DATA = {"files": ["config/examples/data/Cu_fcc/labelled.extxyz",
                          "config/examples/data/Cu_fcc/vasp/*/vasprun.xml"],
                "energy_key": "energy", "forces_key": "forces", "stress_key": "stress"}


def tiny_with(materials: dict, tmp_path: Path) -> tuple[dict, Path, Path]:
    """tests/data/tiny.yaml with these materials, budgets 2 and 5: (config, its file, a working directory)."""
    cfg = yaml.safe_load((REPO / "tests" / "data" / "tiny.yaml").read_text())
    cfg.update(materials=materials, budgets=[2, 5], strategies=["pretrained", "naive"])
    path = tmp_path / "own.yaml"
    path.write_text(yaml.safe_dump(cfg, allow_unicode=True))
    work = tmp_path / "run"
    work.mkdir()
    return cfg, path, work


def test_label_job_builds_the_training_series_from_own_data(tmp_path):
    """results/Cu_own/label/train.extxyz by Snakemake from the example's 14 structures (its structure: the first
    data structure): the plan's structures with their own labels; no rattled structure, no reference."""
    cfg, path, work = tiny_with({"Cu_own": {"data": EXAMPLE_DATA}}, tmp_path)
    targets = [layout.labelled("Cu_own", TRAIN), layout.structure("Cu_own", "json")]
    res = run_snakemake(["--configfile", str(path), "--directory", str(work), "-j", "2", *targets], work)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    assert "rattle" not in res.stdout + res.stderr and "reference" not in res.stdout + res.stderr

    validate_config(cfg)
    resolve_material_paths(cfg["materials"], REPO)
    plan = material_plan(cfg["materials"]["Cu_own"]["data"], n_train=5, rattle=cfg["rattle"],
                         cache_dir=tmp_path / "cache")
    pool = read_labelled(EXAMPLE / "labelled.extxyz", "extxyz", settings(energy_key="energy", forces_key="forces",
                                                                         stress_key="stress"))
    pool += [read_labelled(EXAMPLE / "vasp" / f"run{k}" / "vasprun.xml", "vasprun", settings())[0] for k in range(2)]
    got = read_extxyz(work / layout.labelled("Cu_own", TRAIN))
    assert len(got) == 5 and len(plan["splits"]["train"]["data"]) == 5
    held_out = plan["splits"]["test"]["data"] + plan["splits"]["valid"]["data"]
    assert set(plan["splits"]["train"]["data"]).isdisjoint(held_out)
    for k, (atoms, i) in enumerate(zip(got, plan["splits"]["train"]["data"])):
        assert atoms.info["label_source"] == "data" and atoms.info["series_index"] == k
        np.testing.assert_allclose(atoms.positions, pool[i].positions, atol=1e-8)
        e, f, s = get_labels(atoms)
        assert e == pytest.approx(get_labels(pool[i])[0], abs=1e-9) == pytest.approx(emt(atoms)[0], abs=1e-6)
        np.testing.assert_allclose(f, emt(atoms)[1], atol=1e-6)
        np.testing.assert_allclose(s, emt(atoms)[2], atol=1e-8)
    summary = yaml.safe_load((work / layout.structure("Cu_own", "json")).read_text())
    assert summary["source"] == "data" and summary["elements"] == ["Cu"] and summary["spacegroup_number"] == 1


@pytest.mark.slow
def test_label_jobs_mix_own_and_rattled_structures(tmp_path):
    """(23-31 s measured: reference relaxation, rattle and label jobs) Cu_mix: 3 own structures, then rattled
    ones labelled by the mock EMT labeller (data.mix), valid and test from the labeller (valid_test: labeller)."""
    three = tmp_path / "three.extxyz"
    write_custom(three, rattled_cu(3, seed=5, repeat=2))
    cfg, path, work = tiny_with({"Cu_mix": {
        "bulk": {"name": "Cu", "crystalstructure": "fcc", "a": 3.6, "cubic": True},
        "data": {"files": [str(three)], "energy_key": "dft_E", "forces_key": "dft_F", "stress_key": "dft_S",
                 "mix": True, "valid_test": "labeller"}}}, tmp_path)
    targets = [layout.labelled("Cu_mix", s) for s in (TRAIN, "valid")]
    res = run_snakemake(["--configfile", str(path), "--directory", str(work), "-j", "2", *targets], work)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    mix = read_extxyz(work / layout.labelled("Cu_mix", TRAIN))
    assert [a.info["label_source"] == "data" for a in mix] == [True] * 3 + [False] * 2
    own = read_extxyz(three)
    assert sorted(a.info["data_index"] for a in mix[:3]) == [0, 1, 2]
    for atoms in mix[:3]:
        np.testing.assert_allclose(atoms.positions, own[atoms.info["data_index"]].positions)
    rattled = read_extxyz(work / layout.rattled("Cu_mix", layout.pool_split(0)))
    for atoms, source in zip(mix[3:], rattled):  # the first rattled ones, labelled by the mock EMT labeller
        np.testing.assert_allclose(atoms.positions, source.positions)
        e, f, _ = emt(atoms)
        assert atoms.info["REF_energy"] == pytest.approx(e, abs=1e-9)
        np.testing.assert_allclose(atoms.arrays["REF_forces"], f, rtol=0, atol=1e-7)  # 8 decimals in extxyz
    valid = read_extxyz(work / layout.labelled("Cu_mix", "valid"))
    assert len(valid) == cfg["rattle"]["n_valid"] and all(a.info["label_source"] != "data" for a in valid)
