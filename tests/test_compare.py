"""Tests of phononft.compare and the ``phononft compare`` CLI.

The real-data tests reproduce the published ``phonon_properties.csv`` of the MACE-MP-0b3 phonon
benchmark (8 materials in /work/shared/data/phonon-benchmark); every expected number is read from
that CSV.  They are skipped when the shared data folder is absent.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from functools import lru_cache
from pathlib import Path

import numpy as np
import pytest

from phononft import compare as C
from phononft import phonon_io as P
from phononft import qpoints as Q
from phononft import thermal as T
from phononft.cli import main

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
BENCH = SHARED / "data" / "phonon-benchmark"
CSV = BENCH / "phonon_properties.csv"
MATERIALS = ["mp-1000", "mp-1564", "mp-2534", "mp-2612", "mp-2809", "mp-603640", "mp-7436", "mp-938"]

needs_bench = pytest.mark.skipif(
    not CSV.is_file(), reason=f"benchmark data not found at {BENCH} (shared data folder absent)"
)


@lru_cache(maxsize=None)
def _csv():
    import pandas as pd

    return pd.read_csv(CSV).set_index("material")


@lru_cache(maxsize=None)
def _load(kind: str, mid: str, symprec: float = 1e-4, symmetrize_fc: bool = False):
    return P.load_phonopy(BENCH / kind / f"{mid}.phonopy.yaml", symprec=symprec, symmetrize_fc=symmetrize_fc)


@lru_cache(maxsize=None)
def _metrics(mid: str, convention: str = "benchmark"):
    return C.phonon_metrics(_load("dft_pbe", mid), _load("mace_mp_0b3", mid), convention=convention)


# Tolerances: the brief's for thermal properties (0.5 %) and band rmse (0.005 THz); the rest are
# reproduced to ~1e-12 except k_diff (exact k_B instead of the benchmark's 1.3806e-23: 3.5e-5).
REL_TOL = {"heat_capacity": 5e-3, "entropy": 5e-3, "free_energy": 5e-3}
ABS_TOL = {"rmse": 5e-3, "rmsd": 1e-6, "maxd": 1e-6}


@needs_bench
@pytest.mark.parametrize("mid", MATERIALS)
def test_reproduces_published_benchmark(mid):
    row = _csv().loc[mid]
    out = _metrics(mid)
    for col in C.BENCHMARK_COLUMNS:
        expected, got = row[col], out[col]
        if isinstance(expected, str):
            assert got == expected, col
            continue
        base = col.removeprefix("benchmark_")
        if base in ABS_TOL:
            assert abs(got - expected) <= ABS_TOL[base], (col, got, expected)
        elif base in ("min_frequency",):  # can be ~1e-5 THz (acoustic modes at Gamma)
            assert abs(got - expected) <= 1e-6 + 1e-4 * abs(expected), (col, got, expected)
        else:
            rel = REL_TOL.get(base, 1e-4)
            assert got == pytest.approx(expected, rel=rel), (col, got, expected)


@needs_bench
def test_mp603640_why_the_model_lands_in_another_space_group():
    """mp-603640 (GaAs, Imm2 in DFT) is reproduced, but only with the benchmark's exact choices.

    Findings:
    * MACE-MP-0b3 relaxed the body-centred orthorhombic cell to b = c within 1e-5 A (DFT:
      b = 5.115, c = 5.141 A), so at the benchmark's symprec 1e-4 spglib sees I-4m2 (119) while
      the DFT cell stays Imm2 (44); at 1e-5 the model is still Imm2 - the "new phase" is the
      tetragonal limit of the DFT structure, decided by the tolerance.
    * atomate2 generated the model's displacements in I-4m2 (4 displaced supercells, one
      direction per site): its force constants exist only under I-4m2.  Loading with
      symprec 1e-5 (Imm2) leaves directions undetermined and gives nonsense (|f| > 30 THz).
    * The model's own seekpath path (tI lattice) has fewer segments than the DFT's (oI lattice),
      so the published band errors must be (and are) on the DFT path for both.
    * The irreducible 20^3 meshes of Imm2 and I-4m2 differ in size, so the benchmark fell back to
      the full, unsymmetrised mesh for both phonons (the only material where this happens).
    * The published force constants are *not* symmetrised; symmetrising the model's changes its
      band rmse by > 0.1 THz.  This, not the space group, is why a "phonopy.load with default
      symmetrisation" recipe reproduces 7 of the 8 materials but not this one.
    * The two primitive cells differ (different primitive matrices), but they are related by a
      point operation of both structures: mapping q-points between them ("mapped" convention)
      leaves band and mesh errors unchanged.
    """
    row = _csv().loc["mp-603640"]
    ref, mod = _load("dft_pbe", "mp-603640"), _load("mace_mp_0b3", "mp-603640")

    # space groups vs tolerance, and the lattice behind it
    assert C.space_group(mod, 1e-4) == row["spacegroup"] == "I-4m2 (119)"
    assert C.space_group(ref, 1e-4) == row["benchmark_spacegroup"] == "Imm2 (44)"
    assert C.space_group(mod, 1e-5) == "Imm2 (44)"
    b, c = np.linalg.norm(mod.unitcell.cell, axis=1)[1:]
    b_ref, c_ref = np.linalg.norm(ref.unitcell.cell, axis=1)[1:]
    assert abs(b - c) < 1e-4 < abs(b_ref - c_ref)

    # model force constants need the I-4m2 symmetry of its displacement set
    assert len(mod.dataset["first_atoms"]) == 4
    tight = _load("mace_mp_0b3", "mp-603640", symprec=1e-5)
    q = np.concatenate(Q.band_qpoints(ref))
    assert np.abs(Q.frequencies_at(tight, q)).max() > 30.0
    assert np.abs(Q.frequencies_at(mod, q)).max() == pytest.approx(row["max_frequency"], rel=1e-6)

    # the model's own band path is a different one: comparison on the reference path
    assert len(Q.band_qpoints(mod)) != len(Q.band_qpoints(ref))
    # irreducible meshes differ -> full mesh fallback
    assert len(Q.mesh_sampling(ref, 20)[0]) != len(Q.mesh_sampling(mod, 20)[0])

    # symmetrised force constants do not reproduce the published numbers
    sym = C.phonon_metrics(ref, _load("mace_mp_0b3", "mp-603640", symmetrize_fc=True), extras=False)
    assert abs(sym["rmse"] - row["rmse"]) > 0.1
    assert abs(_metrics("mp-603640")["rmse"] - row["rmse"]) < 1e-6

    # different primitive matrices, but symmetry-equivalent: mapped q-points give the same errors
    assert not np.allclose(ref.primitive_matrix, mod.primitive_matrix)
    mapped = _metrics("mp-603640", "mapped")
    for col in ("rmse", "mae", "r2", "phonon_rmse", "phonon_mae", "phonon_scaled_rmse"):
        assert mapped[col] == pytest.approx(row[col], rel=1e-6), col
    # the 'mapped' convention reports the unscaled model mean frequency
    assert mapped["mean_frequency"] == pytest.approx(mapped["mean_frequency_unscaled"])
    assert mapped["mean_frequency"] < row["mean_frequency"]


@needs_bench
def test_extras_and_self_comparison():
    ph = _load("dft_pbe", "mp-938")
    same = C.phonon_metrics(ph, ph)
    assert same["rmse"] == 0 and same["phonon_rmse"] == 0 and same["r2"] == 1
    assert same["rmse_matched"] == pytest.approx(0, abs=1e-9)
    assert same["dos_overlap"] == pytest.approx(1.0, abs=1e-9)
    out = _metrics("mp-938")
    assert out["rmse_matched"] >= out["rmse"] - 1e-12  # sorting is the optimal pairing
    assert 0.0 < out["dos_overlap"] < 1.0
    # stable material: no imaginary modes; mp-603640's DFT and model are unstable (-2.3/-2.5 THz)
    assert not out["has_imaginary"] and not out["benchmark_has_imaginary"]
    unstable = _metrics("mp-603640")
    assert unstable["has_imaginary"] and unstable["benchmark_has_imaginary"]
    assert unstable["min_frequency_nonacoustic"] < -2.0


@needs_bench
def test_thermal_properties_match_phonopy_and_curves():
    ph = _load("mace_mp_0b3", "mp-938")
    q, w = Q.mesh_sampling(ph, 8, sampling="phonopy")
    mine = T.thermal_properties(Q.frequencies_at(ph, q), w, [0, 150, 300, 900])
    ph.run_mesh([8, 8, 8])
    ph.run_thermal_properties(temperatures=[0, 150, 300, 900])
    ref = ph.thermal_properties
    for key in ("heat_capacity", "entropy", "free_energy"):
        np.testing.assert_allclose(mine[key], getattr(ref, key), rtol=1e-9, atol=1e-9)
    curves = T.thermal_curves(ph, mesh=8)
    assert curves["temperatures"][0] == 0 and curves["temperatures"][-1] == 1000
    assert curves["heat_capacity"][0] == 0 and curves["entropy"][0] == 0
    # Dulong-Petit: C_v -> 3 n R (n = 2 atoms per primitive cell) from below
    assert 0.97 * 3 * 2 * 8.314462618 < curves["heat_capacity"][-1] < 3 * 2 * 8.314462618
    assert np.all(np.diff(curves["entropy"]) > 0)


@needs_bench
def test_force_sets_lookup_and_errors(tmp_path):
    src_yaml, src_fs = BENCH / "dft_pbe" / "mp-938.phonopy.yaml", BENCH / "dft_pbe" / "mp-938.FORCE_SETS"
    yaml_path = tmp_path / "GeTe.phonopy.yaml"
    shutil.copy(src_yaml, yaml_path)
    # no forces anywhere: a clear error naming the file
    assert P.find_force_sets(yaml_path) is None
    with pytest.raises(P.PhononLoadError, match="GeTe.phonopy.yaml"):
        P.load_phonopy(yaml_path)
    # <stem>.FORCE_SETS beside it
    shutil.copy(src_fs, tmp_path / "GeTe.FORCE_SETS")
    assert P.find_force_sets(yaml_path) == tmp_path / "GeTe.FORCE_SETS"
    ph = P.load_phonopy(yaml_path)
    assert ph.force_constants is not None
    # plain FORCE_SETS in the same folder
    (tmp_path / "GeTe.FORCE_SETS").rename(tmp_path / "FORCE_SETS")
    assert P.find_force_sets(yaml_path) == tmp_path / "FORCE_SETS"
    ph2 = P.load_phonopy(yaml_path)
    np.testing.assert_allclose(ph2.force_constants, ph.force_constants)
    # malformed / missing files
    bad = tmp_path / "bad.phonopy.yaml"
    bad.write_text("phonopy:\n  version: [unclosed\n")
    with pytest.raises(P.PhononLoadError, match="bad.phonopy.yaml"):
        P.load_phonopy(bad)
    with pytest.raises(P.PhononLoadError, match="missing.yaml"):
        P.load_phonopy(tmp_path / "missing.yaml")


@needs_bench
def test_cli_compare_end_to_end(tmp_path, capsys):
    out_json = tmp_path / "sub" / "metrics.json"
    rc = main(["compare", str(BENCH / "dft_pbe" / "mp-938.phonopy.yaml"),
               str(BENCH / "mace_mp_0b3" / "mp-938.phonopy.yaml"), "--json", str(out_json),
               "--temperature", "300", "--mesh", "20"])
    assert rc == 0
    printed = json.loads(capsys.readouterr().out)
    written = json.loads(out_json.read_text())
    assert printed == written
    row = _csv().loc["mp-938"]
    assert written["rmse"] == pytest.approx(row["rmse"], abs=5e-3)
    assert written["entropy"] == pytest.approx(row["entropy"], rel=5e-3)
    assert written["benchmark_spacegroup"] == row["benchmark_spacegroup"]
    assert not [p for p in out_json.parent.iterdir() if p.name.endswith(".tmp")]  # atomic write


@needs_bench
def test_cli_subprocess_reports_missing_forces(tmp_path):
    yaml_path = tmp_path / "noforces.phonopy.yaml"
    shutil.copy(BENCH / "dft_pbe" / "mp-938.phonopy.yaml", yaml_path)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    res = subprocess.run([sys.executable, "-m", "phononft.cli", "compare", str(yaml_path), str(yaml_path)],
                         capture_output=True, text=True, env=env, timeout=120)
    assert res.returncode == 2
    assert "noforces.phonopy.yaml" in res.stderr and "FORCE_SETS" in res.stderr


def _emt_phonon(structure: str, a: float, dim: int):
    """Phonopy object of an EMT Cu crystal (no file) - as the evaluate stage builds them."""
    from ase.build import bulk
    from ase.calculators.emt import EMT
    from phonopy import Phonopy
    from phonopy.structure.atoms import PhonopyAtoms

    atoms = bulk("Cu", structure, a=a)
    unit = PhonopyAtoms(symbols=atoms.get_chemical_symbols(), cell=atoms.cell[:], scaled_positions=atoms.get_scaled_positions())
    ph = Phonopy(unit, supercell_matrix=np.eye(3, dtype=int) * dim, primitive_matrix="auto")
    ph.generate_displacements(distance=0.01)
    forces = []
    for sc in ph.supercells_with_displacements:
        from ase import Atoms

        at = Atoms(sc.symbols, cell=sc.cell, scaled_positions=sc.scaled_positions, pbc=True)
        at.calc = EMT()
        forces.append(at.get_forces())
    ph.forces = np.array(forces)
    return ph


def test_phonopy_objects_small_emt_cells_fast():
    """phonon_metrics takes Phonopy objects directly and is fast on 1-atom cells.

    fcc Cu is stable under EMT; bcc Cu at the same volume is not (Bain path to fcc).
    """
    import time

    a_fcc = 3.59
    a_bcc = (2 * a_fcc**3 / 4) ** (1 / 3)
    fcc = _emt_phonon("fcc", a_fcc, 3)
    fcc_soft = _emt_phonon("fcc", a_fcc * 1.02, 3)
    bcc = _emt_phonon("bcc", a_bcc, 4)
    t0 = time.perf_counter()
    out = C.phonon_metrics(fcc, fcc_soft)
    assert time.perf_counter() - t0 < 10
    assert out["spacegroup"] == out["benchmark_spacegroup"] == "Fm-3m (225)"
    assert out["max_frequency"] < out["benchmark_max_frequency"]  # expanded lattice is softer
    assert out["rmse"] > 0 and out["heat_capacity"] == pytest.approx(3 * 8.314462618, rel=0.05)
    assert out["volume"] == pytest.approx(out["benchmark_volume"] * 1.02**3, rel=1e-9)
    assert not out["has_imaginary"] and not out["benchmark_has_imaginary"]
    info = C.imaginary_modes(bcc, np.concatenate(Q.band_qpoints(bcc)))
    assert info["has_imaginary"] and info["min_frequency_nonacoustic"] < -0.1
