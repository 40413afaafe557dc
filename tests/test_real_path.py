"""The real path without the real codes: VASP labelling (through the fake ``vasp_std``, EMT in VASP's
formats), reference phonons from VASP jobs or from a precomputed DFT phonopy.yaml, Materials Project
structures from the cache, and a foundation model given as a file.

The workflow runs in temporary ``--directory``s with ``-j 2``; each VASP call appends a line to
FAKE_VASP_LOG, so reruns are counted.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from ase.build import bulk
from ase.calculators.emt import EMT

from phononft import layout
from phononft.io import read_extxyz, read_json

REPO = Path(__file__).resolve().parents[1]
FAKE_VASP = REPO / "tests" / "fake_vasp" / "vasp_std"
BENCHMARK = REPO.parent / "shared" / "data" / "phonon-benchmark"
SNAKEMAKE = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "-j", "2"]


def fake_potcar(symbol: str) -> str:
    return (
        f"  PAW_PBE {symbol} 06Sep2000\n 11.0000000000000\n parameters from PSCTR are:\n"
        f"   VRHFIN ={symbol.split('_')[0]}: d s\n   TITEL  = PAW_PBE {symbol} 06Sep2000\n End of Dataset\n"
    )


def make_potcars(root: Path) -> Path:
    for symbol in ("Cu_pv", "Au"):  # Materials Project's choices for Cu and Au
        d = root / "potpaw_PBE" / symbol
        d.mkdir(parents=True, exist_ok=True)
        (d / "POTCAR").write_text(fake_potcar(symbol))
    return root


#: the reference settings of the VASP tests: small supercells, a coarse mode grid, one relaxation amplitude
PHONONS = {"supercell_min_length": 7.0, "relax_fmax": 1e-3}  # 2x2x2 conventional fcc: 32 atoms, 1 displacement
IMAGINARY = {"grid_points": 5, "amplitude_max": 0.2, "relax_amplitudes": [0.1]}


def vasp_config(workdir: Path, **changes) -> dict:
    """tests/data/tiny.yaml with fcc Cu (and bcc Cu: imaginary modes), budget 2, one valid and one test structure,
    labelled by the fake VASP; the reference's relaxation, phonons, EOS, elastic tensor, energy surface and
    relaxations along the modes are VASP jobs too."""
    cfg = yaml.safe_load((REPO / "tests" / "data" / "tiny.yaml").read_text())
    cfg["materials"] = {"Cu": {"bulk": {"name": "Cu", "crystalstructure": "fcc", "a": 3.61, "cubic": True}},
                        "Cu_bcc": {"bulk": {"name": "Cu", "crystalstructure": "bcc", "a": 2.87, "cubic": True}}}
    cfg["strategies"] = ["pretrained", "multihead"]
    cfg["budgets"] = [2]
    cfg["rattle"].update(n_valid=1, n_test=1, supercell_min_length=5.0)
    cfg["labeller"] = {
        "type": "vasp",
        "vasp": {
            "command": str(FAKE_VASP),
            "kpoint_density": 50,
            "potcar": {"pp_path": str(make_potcars(workdir / "pp"))},
            "retries": 0,
            "structures_per_job": 2,  # train: one job of two structures; valid, test: one of one
            "resources": {"threads": 1, "mem_mb": 1000, "runtime": 10},
        },
    }
    cfg["phonons"].update(PHONONS)
    cfg["evaluate"] = {"imaginary": dict(IMAGINARY)}
    cfg.update(changes)
    return cfg


def write_config(workdir: Path, cfg: dict, name: str = "config.yaml") -> Path:
    path = workdir / name
    path.write_text(yaml.safe_dump(cfg))
    return path


def run(workdir: Path, config: Path, targets: list[str], *extra: str, env: dict | None = None, timeout=900):
    full_env = dict(os.environ, PYTHONPATH=str(REPO / "src"), OMP_NUM_THREADS="1",
                    PATH=os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]))
    full_env.pop("FAKE_VASP_MODE", None)
    full_env.update(env or {})
    return subprocess.run([*SNAKEMAKE, "--configfile", str(config), "--directory", str(workdir), *extra, *targets],
                          cwd=workdir, env=full_env, capture_output=True, text=True, timeout=timeout)


def calls(log: Path, under: str = "") -> int:
    """VASP runs so far (those whose directory lies under ``under``, e.g. "label")."""
    lines = log.read_text().splitlines() if log.exists() else []
    return sum(f"/{under}/" in line for line in lines) if under else len(lines)


TRAIN = layout.train_split("random", 0)  # seed 0's training series (the pool's first N)
LABELS = [layout.labelled("Cu", split) for split in (TRAIN, "valid", "test")]
REFERENCES = [layout.reference(m, "metrics.json") for m in ("Cu", "Cu_bcc")]


@pytest.fixture(scope="module")
def vasp_run(tmp_path_factory):
    """One workflow run: the three labelled splits of fcc Cu and the references of fcc and bcc Cu, every
    calculation through the fake VASP."""
    workdir = tmp_path_factory.mktemp("vasp_workflow")
    config = write_config(workdir, vasp_config(workdir))
    log = workdir / "vasp_calls.log"
    res = run(workdir, config, [*LABELS, *REFERENCES], env={"FAKE_VASP_LOG": str(log)}, timeout=1500)
    assert res.returncode == 0, res.stdout[-4000:] + res.stderr[-4000:]
    return workdir, config, log


def test_vasp_labels_one_job_per_structure_equal_emt(vasp_run):
    workdir, _, log = vasp_run
    results = workdir / "results" / "Cu"
    # 2 + 1 + 1 VASP runs, each in its own directory; the two of train in one job
    assert calls(log, "label") == 4
    assert len(read_extxyz(workdir / layout.vasp_label_batch("Cu", TRAIN, 0))) == 2
    for split, n in ((TRAIN, 2), ("valid", 1), ("test", 1)):
        rattled = read_extxyz(workdir / layout.rattled("Cu", layout.pool_split(0) if split == TRAIN else split))
        labelled = read_extxyz(results / "label" / f"{split}.extxyz")
        assert len(labelled) == len(rattled) == n
        for i, (r, lab) in enumerate(zip(rattled, labelled)):
            assert (results / "label" / "vasp" / split / str(i) / "vasprun.xml").is_file()  # job dir kept
            np.testing.assert_allclose(lab.positions, r.positions, atol=1e-10)
            ref = r.copy()
            ref.calc = EMT()
            assert lab.info["REF_energy"] == pytest.approx(ref.get_potential_energy(), abs=1e-6)
            np.testing.assert_allclose(lab.arrays["REF_forces"], ref.get_forces(), atol=1e-6)
            np.testing.assert_allclose(lab.info["REF_stress"], ref.get_stress(), atol=1e-8)
            assert lab.info["label_source"] == "vasp" and lab.info["series_index"] == i
            assert np.abs(ref.get_forces()).max() > 0.05  # rattled: the comparison is not trivial


def test_rerun_reuses_finished_vasp_runs(vasp_run):
    """A lost job output (or any rerun of label_vasp) finds the finished VASP runs in their directories."""
    workdir, config, log = vasp_run
    before = calls(log)
    output = workdir / layout.vasp_label_batch("Cu", TRAIN, 0)
    output.unlink()
    res = run(workdir, config, [str(output.relative_to(workdir)), *LABELS], env={"FAKE_VASP_LOG": str(log)})
    assert res.returncode == 0, res.stdout[-4000:] + res.stderr[-4000:]
    assert "label_vasp" in res.stdout + res.stderr  # the job did run again ...
    assert calls(log) == before  # ... but VASP did not
    assert len(read_extxyz(output)) == 2
    job_log = (workdir / layout.log("label", f"Cu/vasp_{TRAIN}_0")).read_text()
    assert "finished run found, reusing it" in job_log


@pytest.mark.parametrize("material", ["Cu", "Cu_bcc"])
def test_vasp_reference_equals_the_mock_reference(vasp_run, material, tmp_path):
    """The paper path through the fake vasp_std (EMT in VASP's formats) gives every reference property the
    mock labeller (EMT in this process) gives: bands, EOS and elastic tensor, energy surface along the
    imaginary modes, phases the relaxations along them end in."""
    from phononft.config import reference_settings, validate_config
    from phononft.reference import reference_in_process

    workdir, config, log = vasp_run
    ref_dir = workdir / layout.reference(material)
    vasp = read_json(ref_dir / "metrics.json")
    cfg = validate_config({**yaml.safe_load(config.read_text()), "labeller": {"type": "mock"}})
    structure = read_extxyz(workdir / layout.structure(material))[0]
    mock = reference_in_process(structure, EMT(), reference_settings(cfg), tmp_path, log=lambda s: None)
    assert vasp["reference_source"] == "vasp" and mock["reference_source"] == "calculator"
    bands_vasp, bands_mock = read_json(ref_dir / "bands.json"), read_json(tmp_path / "bands.json")
    assert len(bands_vasp["frequencies"]) == len(bands_mock["frequencies"]) > 1  # every segment of the path
    for seg_vasp, seg_mock in zip(bands_vasp["frequencies"], bands_mock["frequencies"]):
        np.testing.assert_allclose(seg_vasp, seg_mock, atol=1e-3)
    assert vasp["max_frequency"] == pytest.approx(mock["max_frequency"], abs=1e-3)
    for key in ("bulk_modulus_eos", "C11", "C12", "C44", "bulk_modulus_vrh", "shear_modulus_vrh", "kappa_slack"):
        assert vasp[key] == pytest.approx(mock[key], rel=0.01), key
    assert vasp["n_imaginary_modes"] == mock["n_imaginary_modes"]
    assert vasp["property_calculations"] == mock["property_calculations"]
    for key in ("final_spacegroup_1e-3", "final_spacegroup_1e-1", "phases_1e-3", "phases_1e-1", "new_phase"):
        assert vasp[key] == mock[key], key
    if material == "Cu_bcc":  # unstable: a surface with a well, relaxations into new phases
        assert vasp["n_imaginary_modes"] > 0 and vasp["new_phase"] is True
        assert vasp["surface_min_meV_per_atom"] == pytest.approx(mock["surface_min_meV_per_atom"], abs=0.05)
        assert vasp["surface_min_meV_per_atom"] < 0 and len(vasp["phases_1e-1"]) >= 1
    else:
        assert vasp["n_imaginary_modes"] == 0 and vasp["new_phase"] is False
    # every calculation was a VASP job in a directory of its own, the relaxation twice (relax-1, relax-2)
    step_dirs = sorted((ref_dir / "vasp").glob("step*/[0-9]*"))
    assert len(step_dirs) == vasp["property_calculations"]
    assert (ref_dir / "vasp" / "step0" / "0" / "relax-2" / "vasprun.xml").is_file()
    relaxed = read_extxyz(ref_dir / "relaxed.extxyz")[0]
    assert relaxed.get_volume() / len(relaxed) == pytest.approx(
        read_extxyz(tmp_path / "relaxed.extxyz")[0].get_volume() / len(relaxed), rel=1e-4)


def test_failed_vasp_run_fails_the_job_naming_its_directory(tmp_path):
    config = write_config(tmp_path, vasp_config(tmp_path))
    # the reference's relaxation (twice: two runs) succeeds, the labelling run after it fails
    res = run(tmp_path, config, [layout.labelled("Cu", "test")],
              env={"FAKE_VASP_LOG": str(tmp_path / "calls.log"), "FAKE_VASP_MODE": "ok,ok,fail"})
    assert res.returncode != 0
    jobdir = (tmp_path / "results" / "Cu" / "label" / "vasp" / "test" / "0").resolve()
    out = res.stdout + res.stderr
    assert "Error in rule label_vasp" in out
    message = f"VASP job in {jobdir} failed"
    job_log = (tmp_path / layout.log("label", "Cu/vasp_test_0")).read_text()
    assert message in job_log and "exited with status 1" in job_log
    assert message in out
    assert (jobdir / "attempt-1" / "vasp.out").is_file()  # the failed run is kept for inspection
    assert not (tmp_path / layout.labelled("Cu", "test")).exists()


@pytest.mark.slow
def test_foundation_model_file_multihead(vasp_run, foundation, tmp_path):
    """A foundation given as a file (the real-world path) with replay data: copied, loaded and fine-tuned."""
    workdir, _, log = vasp_run
    model, replay = foundation
    cfg = vasp_config(workdir)
    cfg["foundation"] = {"model": str(model), "replay": str(replay)}
    cfg["finetune"]["defaults"].update(max_num_epochs=1, patience=1)
    config = write_config(workdir, cfg, "foundation.yaml")
    before = calls(log)
    targets = [layout.job("finetune", "Cu", "multihead"), layout.job("finetune", "Cu", "pretrained")]  # the two jobs' folders
    res = run(workdir, config, targets, env={"FAKE_VASP_LOG": str(log)})
    assert res.returncode == 0, res.stdout[-4000:] + res.stderr[-4000:]
    assert calls(log) == before  # the labels were reused
    assert (workdir / "results" / "foundation" / "model.model").read_bytes() == Path(model).read_bytes()
    record = read_json(workdir / layout.model("Cu", "multihead", 2, 0, "train.json"))
    assert record.get("epochs_run", 1) >= 1

    from phononft.evaluate import mace_calculator

    atoms = bulk("Cu", "fcc", a=3.61, cubic=True)
    atoms.calc = mace_calculator(workdir / layout.model("Cu", "multihead", 2, 0, "model.model"))
    assert math.isfinite(atoms.get_potential_energy())


def test_only_selected_pool_structures_become_vasp_jobs(vasp_run, foundation):
    """selections [random, fps], a pool of 3 x the largest budget: the VASP path labels the largest budget's
    structures of each selection's series -- the fps picks, in pick order -- and never the rest of the pool."""
    workdir, _, log = vasp_run
    model, replay = foundation
    cfg = vasp_config(workdir, selections=["random", "fps"])
    cfg["selection"] = {"pool_factor": 3}
    cfg["foundation"] = {"model": str(model), "replay": str(replay)}
    config = write_config(workdir, cfg, "selection.yaml")
    fps = layout.train_split("fps", 0)
    before = calls(log, "label")
    res = run(workdir, config, [layout.labelled("Cu", fps), layout.labelled("Cu", TRAIN)],
              env={"FAKE_VASP_LOG": str(log)})
    assert res.returncode == 0, res.stdout[-4000:] + res.stderr[-4000:]
    pool = read_extxyz(workdir / layout.rattled("Cu", layout.pool_split(0)))
    assert len(pool) == 3 * 2  # pool_factor x the largest budget
    ranking = read_json(workdir / layout.ranking("Cu", "fps", 0))["ranking"]
    picks = ranking[:2]
    labelled = read_extxyz(workdir / layout.labelled("Cu", fps))
    assert len(labelled) == 2  # the largest budget, not the pool
    for lab, i in zip(labelled, picks):
        np.testing.assert_allclose(lab.positions, pool[i].positions, atol=1e-10)
    # two VASP runs for the fps series (the random one was labelled by the module's first run and reused)
    assert calls(log, "label") - before == 2
    assert sorted(p.name for p in (workdir / "results" / "Cu" / "label" / "vasp" / fps).iterdir()
                  if p.name.isdigit()) == ["0", "1"]


def si_structure_dict() -> dict:
    from pymatgen.core import Lattice, Structure

    s = Structure(Lattice.cubic(5.43), ["Si"] * 8,
                  [[0, 0, 0], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5],
                   [0.25, 0.25, 0.25], [0.75, 0.75, 0.25], [0.75, 0.25, 0.75], [0.25, 0.75, 0.75]])
    return s.as_dict()


@pytest.mark.skipif(not (BENCHMARK / "dft_pbe" / "mp-938.phonopy.yaml").is_file(), reason="benchmark data absent")
def test_precomputed_reference_and_mp_cache_through_the_workflow(tmp_path):
    """reference_phonopy alone: structure = its unit cell, reference read, not recomputed (mp-938: FORCE_SETS
    beside the yaml); mp_id: structure from the cache resources/mp/<id>.json (no key, no network)."""
    import pandas as pd

    from phononft import phonon_io, qpoints

    cache = tmp_path / "resources" / "mp"
    cache.mkdir(parents=True)
    (cache / "mp-149.json").write_text(json.dumps(si_structure_dict()))
    cfg = yaml.safe_load((REPO / "tests" / "data" / "tiny.yaml").read_text())
    cfg["materials"] = {"mp-938": {"reference_phonopy": str(BENCHMARK / "dft_pbe" / "mp-938.phonopy.yaml")},
                        "Si": {"mp_id": "mp-149"}}
    cfg["phonons"].update(mesh=20, band_points=101)
    cfg["evaluate"] = {"elastic": False}  # GeTe: the mock labeller (EMT) cannot compute it; no imaginary mode
    config = write_config(tmp_path, cfg)
    targets = [layout.reference("mp-938", "metrics.json"), layout.structure("mp-938", "json"),
               layout.structure("Si", "json")]
    res = run(tmp_path, config, targets, env={"MP_API_KEY": ""})
    assert res.returncode == 0, res.stdout[-4000:] + res.stderr[-4000:]

    row = pd.read_csv(BENCHMARK / "phonon_properties.csv").set_index("material").loc["mp-938"]
    ref_dir = tmp_path / layout.reference("mp-938")
    metrics = read_json(ref_dir / "metrics.json")
    for key in ("max_frequency", "mean_frequency", "heat_capacity", "entropy", "free_energy"):
        assert metrics[key] == pytest.approx(row[f"benchmark_{key}"], rel=1e-4), key
    assert "bulk_modulus_eos" not in metrics  # switched off: absent, not NaN
    assert metrics["reference_source"].startswith("precomputed") and metrics["property_calculations"] == 0
    assert read_json(tmp_path / layout.structure("mp-938", "json"))["spacegroup"] == row["benchmark_spacegroup"]
    for name in ("bands.json", "thermal.json", "surface.json", "modes.json"):
        assert (ref_dir / name).is_file()
    copied = ref_dir / "phonopy.yaml"
    assert "forces:" in copied.read_text()  # FORCE_SETS folded into the reference's phonopy.yaml
    q = np.array([[0.1, 0.2, 0.3], [0.5, 0.0, 0.0]])
    original = phonon_io.load_phonopy(BENCHMARK / "dft_pbe" / "mp-938.phonopy.yaml")
    np.testing.assert_allclose(qpoints.frequencies_at(phonon_io.load_phonopy(copied), q),
                               qpoints.frequencies_at(original, q), atol=1e-8)
    log = (tmp_path / layout.log("reference", "mp-938")).read_text()
    assert "its phonons are read" in log

    info = read_json(tmp_path / layout.structure("Si", "json"))
    assert info["spacegroup"] == "Fd-3m (227)" and info["natoms_primitive"] == 2
    assert info["source"] == "mp_id: mp-149"


@pytest.mark.skipif(not (BENCHMARK / "dft_pbe" / "mp-1000.phonopy.yaml").is_file(), reason="benchmark data absent")
def test_precomputed_reference_forces_inside(tmp_path):
    from conftest import stage_settings
    from phononft.reference import reference_in_process
    from phononft.structures import read_structure_file

    cfg = stage_settings(phonons={"mesh": 20, "band_points": 101}, evaluate={"elastic": False})
    src = BENCHMARK / "dft_pbe" / "mp-1000.phonopy.yaml"
    metrics = reference_in_process(read_structure_file(src), EMT(), cfg, tmp_path, precomputed_path=src,
                                   log=lambda s: None)
    assert (tmp_path / "phonopy.yaml").read_bytes() == src.read_bytes()  # forces inside: copied verbatim
    import pandas as pd

    row = pd.read_csv(BENCHMARK / "phonon_properties.csv").set_index("material").loc["mp-1000"]
    assert metrics["max_frequency"] == pytest.approx(row["benchmark_max_frequency"], rel=1e-6)
    assert metrics["new_phase"] is False and metrics["n_imaginary_modes"] == 0

# --------------------------------------------------------------------------------------------------
# Materials Project
# --------------------------------------------------------------------------------------------------


def test_mp_id_without_cache_or_key_names_the_material(tmp_path, monkeypatch):
    from phononft.materials_project import MPStructureError
    from phononft.structures import prepare_structure

    monkeypatch.delenv("MP_API_KEY", raising=False)
    with pytest.raises(MPStructureError) as info:
        prepare_structure("silicon", {"mp_id": "mp-149"}, base_dir=tmp_path)
    msg = str(info.value)
    assert "material 'silicon'" in msg and "mp-149" in msg
    assert "MP_API_KEY" in msg and str(tmp_path / "resources" / "mp" / "mp-149.json") in msg


def test_mp_cache_roundtrip(tmp_path):
    from pymatgen.core import Structure

    from phononft.materials_project import load_mp_structure, write_cache

    write_cache(Structure.from_dict(si_structure_dict()), tmp_path / "mp-149.json")
    atoms = load_mp_structure("mp-149", cache_dir=tmp_path, log=lambda s: None)
    assert atoms.get_chemical_formula() == "Si8" and atoms.get_volume() == pytest.approx(5.43**3)
    assert not list(tmp_path.glob(".*tmp*"))


# --------------------------------------------------------------------------------------------------
# the paper configuration
# --------------------------------------------------------------------------------------------------


def test_paper_config_matrix():
    from phononft.config import load_config, model_runs

    cfg = load_config(REPO / "config" / "paper.yaml")
    assert len(cfg["materials"]) == 68
    with_dft = {m for m, spec in cfg["materials"].items() if "reference_phonopy" in spec}
    assert len(with_dft) == 8
    for m in with_dft:
        assert (REPO / cfg["materials"][m]["reference_phonopy"]).is_file() or not BENCHMARK.is_dir()
    assert all(spec.get("mp_id", m) == m for m, spec in cfg["materials"].items())
    assert cfg["budgets"] == [1, 2, 5, 10, 20, 50] and cfg["seeds"] == [0, 1, 2]
    assert cfg["labeller"]["type"] == "vasp" and cfg["labeller"]["vasp"]["command"] == "srun vasp_std"
    assert cfg["phonons"]["supercell_min_length"] >= 20 and cfg["phonons"]["band_points"] == 101
    assert cfg["phonons"]["mesh"] == 20 and cfg["finetune"]["gpus"] == 1
    # 8 trained strategies (the study's 7 and Equitrain's delta) x 6 budgets x 3 seeds, zero-shot once per seed
    assert len(model_runs(cfg)) == 68 * (8 * 6 * 3 + 3)
