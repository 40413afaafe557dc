"""The metrics dictionary (phononft.metrics) against the code that produces the metrics and against docs/metrics.md.

* docs/metrics.md must be the text generated from phononft.metrics (edit the module, then regenerate);
* every metric the producers write into the tidy table has an entry, and every entry is produced: the real
  producers run on a tiny case -- the reference and a model of bcc Cu evaluated with EMT (the model's MACE
  calculator swapped for EMT, so ``evaluate_model`` runs unchanged otherwise), the published MACE-MP-0b3 vs
  DFT pair of mp-938 (precomputed reference + ``compare.phonon_metrics``) -- and are aggregated by
  ``summary.collect`` as the workflow does;
* ``unit_of`` keeps the units the table had before the dictionary existed (aggregate.UNITS/PATTERN_UNITS).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from conftest import stage_settings
from phononft import metrics
from phononft.metrics import METRICS, entry, markdown, undocumented, unit_of, unused

REPO = Path(__file__).resolve().parents[1]
BENCH = REPO.parent / "shared" / "data" / "phonon-benchmark"
REGENERATE = "python tools/write_metrics_doc.py"


def test_doc_is_generated_from_the_module():
    doc = REPO / "docs" / "metrics.md"
    assert doc.is_file(), f"docs/metrics.md is missing: run {REGENERATE}"
    assert doc.read_text(encoding="utf-8") == markdown(), (
        f"docs/metrics.md differs from src/phononft/metrics.py: edit the module, then run {REGENERATE}")


def test_write_tool_check_detects_a_stale_file(tmp_path):
    import importlib.util

    spec = importlib.util.spec_from_file_location("write_metrics_doc", REPO / "tools" / "write_metrics_doc.py")
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    out = tmp_path / "metrics.md"
    assert tool.main(["--check", "--out", str(out)]) == 1  # absent
    assert tool.main(["--out", str(out)]) == 0
    assert tool.main(["--check", "--out", str(out)]) == 0
    out.write_text(out.read_text(encoding="utf-8").replace("| THz |", "| meV |", 1), encoding="utf-8")
    assert tool.main(["--check", "--out", str(out)]) == 1


def test_every_entry_is_complete_and_unique():
    names = [m.name for m in METRICS]
    assert len(names) == len(set(names))
    for m in METRICS:
        assert m.family in metrics.FAMILIES, m.name
        assert m.better in ("lower", "higher", "closer", "same", ""), m.name
        assert m.unit and m.description.endswith("."), m.name
        assert m.pattern is not None or re.fullmatch(r"[A-Za-z0-9_]+", m.name), m.name
    for family in metrics.FAMILIES:
        assert any(m.family == family for m in METRICS), family


# The units of the table before phononft.metrics existed (aggregate.UNITS / PATTERN_UNITS / unit_of, verbatim).
_OLD_UNITS = {
    "rmse": "THz", "mae": "THz", "r2": "1", "rmse_matched": "THz",
    "phonon_rmse": "THz", "phonon_mae": "THz", "phonon_scaled_rmse": "THz", "phonon_rrmse": "1",
    "phonon_rrmse_unscaled": "1", "dos_overlap": "1",
    "min_frequency": "THz", "max_frequency": "THz", "mean_frequency": "THz", "mean_frequency_unscaled": "THz",
    "min_frequency_nonacoustic": "THz", "imaginary_fraction": "1",
    "volume": "Å^3", "rmsd": "1", "maxd": "1",
    "heat_capacity": "J/K/mol", "entropy": "J/K/mol", "free_energy": "kJ/mol",
    "k_diff_high_temp_limit": "W/m/K",
    "energy_mae": "meV/atom", "force_mae": "meV/Å", "stress_mae": "GPa",
    "bulk_modulus_eos": "GPa", "bulk_modulus_vrh": "GPa", "shear_modulus_vrh": "GPa",
    "youngs_modulus": "GPa", "poisson_ratio": "1", "debye_temperature": "K", "kappa_slack": "W/m/K",
    "train_seconds": "s", "eval_seconds": "s", "cpu_seconds": "s", "reference_calculations": "1",
    "trainable_parameters": "1", "total_parameters": "1", "epochs": "1", "spacegroup_number": "1",
    "new_phase": "1", "has_imaginary": "1", "same_final_phase": "1", "final_spacegroup_number": "1",
    "energy_gain_meV_per_atom": "meV/atom", "surface_min_meV_per_atom": "meV/atom",
    "min_imaginary_frequency": "THz", "C11": "GPa", "C12": "GPa", "C44": "GPa",
}
_OLD_PATTERNS = [
    (re.compile(r"^C[1-6][1-6]$"), "GPa"), (re.compile(r"_modulus_(voigt|reuss|vrh)$|^cij_min_eigenvalue$"), "GPa"),
    (re.compile(r"^v_(longitudinal|transverse|mean)$"), "m/s"), (re.compile(r"^density$"), "kg/m^3"),
    (re.compile(r"^v0_per_atom$"), "Å^3"), (re.compile(r"^e0_per_atom$"), "eV"),
    (re.compile(r"temperature"), "K"), (re.compile(r"^mean_atomic_mass$"), "amu"),
    (re.compile(r"_seconds$"), "s"), (re.compile(r"^(elastic_delta|final_volume_change)$"), "1"),
]


def _old_unit_of(metric: str) -> str:
    base = metric.removeprefix("benchmark_")
    if base in _OLD_UNITS:
        return _OLD_UNITS[base]
    for pattern, unit in _OLD_PATTERNS:
        if pattern.search(base):
            return unit
    return "1"


def test_unit_of_keeps_the_previous_units():
    from phononft import summary

    names = set(_OLD_UNITS) | {f"C{i}{j}" for i in range(1, 8) for j in range(1, 8)}  # metrics of that time
    names |= {"new_stage_wall_seconds", "some_temperature", "bulk_modulus_other", "no_such_metric", "cij"}
    names |= {f"benchmark_{n}" for n in list(names)}
    corrected = {"e0_per_atom": "eV/atom", "cij_asymmetry": "GPa", "slack_A": "W/m/K/(amu K^3 Å)",
                 "imaginary_threshold": "THz"}  # wrong before the dictionary existed
    expected = {n: corrected.get(n.removeprefix("benchmark_"), _old_unit_of(n)) for n in names}
    assert {n: unit_of(n) for n in names} == expected
    assert summary.unit_of is unit_of


def test_undocumented_and_twins():
    assert undocumented(["rmse", "C13", "benchmark_heat_capacity", "heat_capacity", "rmse"]) == []
    # benchmark_ only for metrics the comparison reports for both sides; lower triangle C_ij is never written
    assert undocumented(["benchmark_rmse", "C31", "made_up", "rmse"]) == ["C31", "benchmark_rmse", "made_up"]
    assert entry("benchmark_volume") is entry("volume") and entry("volume").unit == "Å^3"
    assert entry("C66").unit == "GPa" and entry("C67") is None
    assert "kappa_slack" in unused(["rmse"]) and "rmse" not in unused(["rmse"])


# --------------------------------------------------------------------------------------------------
# The producers, on a tiny case
# --------------------------------------------------------------------------------------------------
def _config(stage: str, elastic: bool = True) -> dict:
    return stage_settings(stage, phonons={"supercell_min_length": 5.0, "mesh": 4, "band_points": 5},
                          evaluate={"elastic": elastic, "imaginary": {"grid_points": 3, "amplitude_max": 0.2,
                                                                      "fmax": 0.1, "relax_amplitudes": [0.1]}})


@pytest.fixture(scope="module")
def table(tmp_path_factory):
    from ase.build import bulk

    from phononft import compare, evaluate, layout, phonon_io, summary
    from phononft.config import Run
    from phononft.io import read_extxyz, read_json, write_extxyz, write_json
    from phononft.label import label_structures, make_calculator
    from phononft.rattle import make_split
    from phononft.reference import reference_in_process
    from phononft.structures import read_structure_file

    root = tmp_path_factory.mktemp("metrics_doc")
    results = root / "results"
    calc = make_calculator()  # EMT, the demo's mock labeller
    cu = bulk("Cu", "bcc", a=2.87, cubic=True)  # unstable under EMT: imaginary modes, a new phase
    ref_dir = root / layout.reference("Cu_bcc")
    ref_dir.mkdir(parents=True)
    reference_in_process(cu, calc, _config("reference"), ref_dir, log=lambda s: None)
    cu = read_extxyz(ref_dir / "relaxed.extxyz")[0]

    test_file = root / "test.extxyz"
    write_extxyz(test_file, label_structures(make_split(cu, "test", 2, seed=1, supercell_min_length=5.0),
                                             calc, log=lambda s: None))
    model_dir = root / layout.evaluation("Cu_bcc", "naive", 2, 0)
    model_dir.mkdir(parents=True)
    train_log = {"total_wall_time_s": 1.0, "total_cpu_seconds": 2.0, "trainable_parameters": 10,
                 "total_parameters": 20, "epochs_run": 2, "optimizer_steps": 2, "learning_rate": 0.01,
                 "budget": 2}  # finetune.finetune's record keys
    mp = pytest.MonkeyPatch()
    mp.setattr(evaluate, "mace_calculator", lambda model, **kw: make_calculator())
    try:
        evaluate.evaluate_model(root / "no.model", cu, ref_dir / "phonopy.yaml", test_file, _config("evaluate"), model_dir,
                                train_log=train_log, reference_modes=read_json(ref_dir / "modes.json"),
                                general_file=test_file,
                                log=lambda s: None)
    finally:
        mp.undo()

    # the published pair: DFT-PBE as a precomputed reference, MACE-MP-0b3 compared with it
    dft, mace = BENCH / "dft_pbe" / "mp-938.phonopy.yaml", BENCH / "mace_mp_0b3" / "mp-938.phonopy.yaml"
    # (GeTe: EMT knows neither element; phonons read, no elastic tensor, no imaginary mode to probe)
    reference_in_process(read_structure_file(dft), calc, _config("reference", elastic=False),
                         root / layout.reference("mp-938"), precomputed_path=dft, log=lambda s: None)
    pair = compare.phonon_metrics(phonon_io.load_phonopy(dft), phonon_io.load_phonopy(mace), mesh=4, npoints=5)
    write_json(root / layout.evaluation("mp-938", "pretrained", 0, 0, "metrics.json"), pair)

    bench = root / "label.tsv"  # a Snakemake benchmark file of the labelling job
    bench.write_text("s\th:m:s\tmax_rss\tcpu_time\n4.0\t0:00:04\t100.0\t3.0\n")
    runs = [Run("Cu_bcc", "naive", 2, 0), Run("mp-938", "pretrained", 0, 0)]  # selection: random
    files = [str(root / layout.evaluation_of(run, "metrics.json")) for run in runs]
    refs = sorted(str(p) for p in results.glob("*/reference/metrics.json"))
    return summary.collect(files, refs, runs, {runs[0]: {"label": (str(bench), 1.0)}})


def test_every_produced_metric_is_documented(table):
    names = set(table["metric"])
    # the producers ran: each family of the table is there
    for name in ("rmse", "benchmark_heat_capacity", "C11", "kappa_slack", "new_phase", "final_spacegroup_number",
                 "same_final_phase", "new_phase_f1", "force_mae", "label_wall_seconds", "trainable_parameters"):
        assert name in names, name
    assert undocumented(names) == [], "metrics without an entry in src/phononft/metrics.py"
    assert unused(names) == [], "entries in src/phononft/metrics.py that no producer writes"
    assert (table["unit"] == table["metric"].map(unit_of)).all()


# --------------------------------------------------------------------------------------------------
# LICENSE, CITATION.cff, docs/citing.md
# --------------------------------------------------------------------------------------------------
_DOI = re.compile(r"^10\.\d{4,9}(\.\d+)?/[A-Za-z0-9:/_;\-.()\[\]\\]+$")  # CFF 1.2.0's doi pattern


def test_citation_cff_is_valid_cff_1_2_and_matches_citing_md():
    cff = yaml.safe_load((REPO / "CITATION.cff").read_text(encoding="utf-8"))
    assert cff["cff-version"] == "1.2.0"
    for key in ("message", "title", "authors"):  # required by CFF 1.2.0
        assert cff[key], key
    assert cff["type"] == "software" and cff["license"] == "MIT"
    assert "MIT License" in (REPO / "LICENSE").read_text(encoding="utf-8")

    def person_or_entity(a):
        return bool(a.get("family-names") or a.get("name"))

    assert all(person_or_entity(a) for a in cff["authors"])
    citing = (REPO / "docs" / "citing.md").read_text(encoding="utf-8")
    bib_dois = set(re.findall(r"doi\s*=\s*\{([^}]+)\}", citing))
    cff_dois = set()
    for ref in cff["references"]:
        for key in ("type", "title", "authors"):  # required of a reference
            assert ref.get(key), (ref.get("title"), key)
        assert all(person_or_entity(a) for a in ref["authors"]), ref["title"]
        if "doi" in ref:
            assert _DOI.match(ref["doi"]), ref["doi"]
            cff_dois.add(ref["doi"])
        assert ref.get("doi") or ref.get("url"), f"{ref['title']}: neither DOI nor URL"
    assert cff_dois == bib_dois, "CITATION.cff and docs/citing.md cite different DOIs"
    for arxiv in ("2604.01017", "2401.00096"):
        assert arxiv in citing and any(arxiv in str(r.get("url")) for r in cff["references"])
