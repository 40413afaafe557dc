"""VASP labeller, end to end through ``tests/fake_vasp/vasp_std`` (EMT in VASP's file formats)."""

from __future__ import annotations

import gzip
import os
import sys
from pathlib import Path

import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk
from ase.calculators.emt import EMT
from ase.io import read
from ase.units import GPa

from phononft import vasp
from phononft.vasp import DEFAULT_INCAR, VaspError, kpoint_divisions, parse_vasprun, run_vasp, write_inputs

FAKE_DIR = Path(__file__).parent / "fake_vasp"
TS_PER_ATOM = 1e-3  # the fake's electronic entropy term (e_fr = E - TS/2, e_0 = E)


def fake_potcar(symbol: str) -> str:
    return (
        f"  PAW_PBE {symbol} 06Sep2000\n 11.0000000000000\n parameters from PSCTR are:\n"
        f"   VRHFIN ={symbol.split('_')[0]}: d s\n   TITEL  = PAW_PBE {symbol} 06Sep2000\n End of Dataset\n"
    )


class Fake:
    """Environment of the fake VASP: POTCAR tree, PATH, call log."""

    def __init__(self, tmp_path: Path, monkeypatch):
        self.tmp = tmp_path
        self.pp = tmp_path / "pp"
        for symbol in ("Cu_pv", "Cu", "Au", "Al"):  # MP's choices are Cu_pv, Au, Al
            d = self.pp / "potpaw_PBE" / symbol
            d.mkdir(parents=True)
            (d / "POTCAR").write_text(fake_potcar(symbol))
        self.log = tmp_path / "calls.log"
        monkeypatch.setenv("VASP_PP_PATH", str(self.pp))
        monkeypatch.delenv("PMG_VASP_PSP_DIR", raising=False)
        monkeypatch.setenv("FAKE_VASP_LOG", str(self.log))
        monkeypatch.delenv("FAKE_VASP_MODE", raising=False)
        monkeypatch.delenv("FAKE_VASP_SWAP_E0", raising=False)
        # `vasp_std` found on PATH (as on a cluster); its `#!/usr/bin/env python3` must find this python
        path = os.pathsep.join([str(FAKE_DIR), str(Path(sys.executable).parent), os.environ.get("PATH", "")])
        monkeypatch.setenv("PATH", path)
        self.messages: list[str] = []

    @property
    def calls(self) -> int:
        return len(self.log.read_text().splitlines()) if self.log.exists() else 0

    def run(self, atoms, name="job", **kwargs):
        kwargs.setdefault("kpoint_density", 50.0)  # fewer k-points: the fake lists them all
        return run_vasp(atoms, self.tmp / name, command="vasp_std", log=self.messages.append, **kwargs)


@pytest.fixture
def fake(tmp_path, monkeypatch):
    return Fake(tmp_path, monkeypatch)


def mixed_cell() -> Atoms:
    """Rattled 16-atom Cu/Au cell with interleaved (unsorted) species."""
    atoms = bulk("Cu", "fcc", a=3.7, cubic=True).repeat((2, 2, 1))
    symbols = ["Au", "Cu", "Cu", "Au", "Cu", "Au", "Cu", "Cu", "Au", "Au", "Cu", "Cu", "Cu", "Au", "Cu", "Cu"]
    atoms.set_chemical_symbols(symbols)
    atoms.rattle(0.08, seed=3)
    atoms.info["config_type"] = "rattled"
    return atoms


def emt_labels(atoms):
    a = atoms.copy()
    a.calc = EMT()
    return a.get_potential_energy(), a.get_forces(), a.get_stress(voigt=True)


def test_fake_executable_is_executable():
    exe = FAKE_DIR / "vasp_std"
    assert os.access(exe, os.X_OK)
    assert exe.read_text().startswith("#!/usr/bin/env python3")


def test_labels_equal_emt_and_keep_atom_order(fake):
    atoms = mixed_cell()
    before = atoms.copy()
    out = fake.run(atoms)
    energy, forces, stress = emt_labels(atoms)

    # input order, positions and metadata kept; input not modified
    assert out.get_chemical_symbols() == atoms.get_chemical_symbols()
    np.testing.assert_allclose(out.positions, atoms.positions, atol=0)
    assert out.info["config_type"] == "rattled"
    assert atoms == before and "REF_energy" not in atoms.info
    # the POSCAR really was regrouped (else the order test would be vacuous)
    poscar = read(fake.tmp / "job" / "POSCAR", format="vasp")
    assert poscar.get_chemical_symbols() == sorted(atoms.get_chemical_symbols(), key=["Au", "Cu"].index)
    assert poscar.get_chemical_symbols() != atoms.get_chemical_symbols()

    assert out.info["label_source"] == "vasp"
    assert out.info["REF_energy"] == pytest.approx(energy, abs=1e-7)  # energy(sigma->0)
    assert out.info["REF_free_energy"] == pytest.approx(energy - TS_PER_ATOM * len(atoms) / 2, abs=1e-7)
    np.testing.assert_allclose(out.arrays["REF_forces"], forces, atol=1e-7)
    assert np.abs(forces).max() > 0.1  # non-trivial forces: a wrong order mapping would show
    assert out.info["REF_stress"].shape == (6,)
    np.testing.assert_allclose(out.info["REF_stress"], stress, atol=1e-10)
    assert out.calc is None
    assert fake.calls == 1
    assert {"vasp.out", "vasp.err", "vasprun.xml"} <= {p.name for p in (fake.tmp / "job").iterdir()}


def test_parsers_agree_with_pymatgen_and_ase(fake):
    from pymatgen.io.vasp.outputs import Vasprun

    atoms = mixed_cell()
    fake.run(atoms)
    path = fake.tmp / "job" / "vasprun.xml"
    ours = parse_vasprun(path)  # VASP (POSCAR) order
    vr = Vasprun(path, parse_potcar_file=False)
    assert vr.converged
    assert ours.info["REF_energy"] == pytest.approx(vr.final_energy, abs=1e-8)
    np.testing.assert_allclose(ours.arrays["REF_forces"], vr.ionic_steps[-1]["forces"], atol=0)
    kbar = np.array(vr.ionic_steps[-1]["stress"])
    voigt = kbar.reshape(9)[[0, 4, 8, 5, 2, 1]]
    np.testing.assert_allclose(ours.info["REF_stress"], -0.1 * GPa * voigt, rtol=1e-12)  # sign flips
    assert [str(s) for s in vr.final_structure.species] == ours.get_chemical_symbols()

    ase_atoms = read(path, format="vasp-xml")
    assert ours.info["REF_energy"] == pytest.approx(ase_atoms.get_potential_energy(), abs=1e-8)
    assert ours.info["REF_free_energy"] == pytest.approx(
        ase_atoms.get_potential_energy(force_consistent=True), abs=1e-8
    )
    np.testing.assert_allclose(ours.info["REF_stress"], ase_atoms.get_stress(), rtol=1e-12)
    np.testing.assert_allclose(ours.positions, ase_atoms.positions, atol=1e-9)


def test_stress_sign_compressed_cell(fake):
    atoms = bulk("Cu", "fcc", a=3.50)  # EMT's a0 is ~3.59: compressed, wants to expand
    out = fake.run(atoms, name="compressed")
    assert np.all(out.info["REF_stress"][:3] < -1e-3)  # ASE: compressive stress is negative
    text = (fake.tmp / "compressed" / "vasprun.xml").read_text()
    block = text.split('<varray name="stress" >')[1].split("</varray>")[0]
    kbar = np.array([[float(x) for x in line.split("<v>")[1].split("</v>")[0].split()] for line in block.splitlines()[1:4]])
    assert np.all(np.diag(kbar) > 10)  # VASP: pressure positive, kBar
    np.testing.assert_allclose(out.info["REF_stress"][:3], -np.diag(kbar) * 0.1 * GPa, rtol=1e-12)


def test_energy_uses_scstep_difference_vasp5_bug(fake, monkeypatch):
    """VASP 5.4.x put e_wo_entrp in the <calculation> e_0_energy slot: REF_energy must not take it."""
    monkeypatch.setenv("FAKE_VASP_SWAP_E0", "1")
    atoms = mixed_cell()
    out = fake.run(atoms)
    assert out.info["REF_energy"] == pytest.approx(emt_labels(atoms)[0], abs=1e-7)


def test_pstress_pv_term_removed(fake):
    atoms = bulk("Cu", "fcc", a=3.6)
    out = fake.run(atoms, incar={"PSTRESS": 50.0})
    assert out.info["REF_energy"] == pytest.approx(emt_labels(atoms)[0], abs=1e-7)


def test_rerun_skips_finished_job_and_reruns_changed_ones(fake):
    atoms = mixed_cell()
    first = fake.run(atoms)
    assert fake.calls == 1
    again = fake.run(atoms.copy())
    assert fake.calls == 1, "a finished, matching job must not run VASP again"
    assert any("reusing" in m for m in fake.messages)
    assert again.info["REF_energy"] == first.info["REF_energy"]
    np.testing.assert_array_equal(again.arrays["REF_forces"], first.arrays["REF_forces"])

    # another structure in the same directory: rerun, old outputs archived
    moved = atoms.copy()
    moved.positions[5] += [0.01, 0.0, 0.0]
    out = fake.run(moved)
    assert fake.calls == 2
    assert (fake.tmp / "job" / "attempt-1" / "vasprun.xml").is_file()
    np.testing.assert_allclose(out.arrays["REF_forces"], emt_labels(moved)[1], atol=1e-7)

    # other settings (INCAR, POTCAR choice): rerun
    fake.run(moved, incar={"ENCUT": 600})
    assert fake.calls == 3
    assert "ENCUT = 600" in (fake.tmp / "job" / "INCAR").read_text()
    fake.run(moved, incar={"ENCUT": 600}, potcar={"Cu": "Cu"})
    assert fake.calls == 4
    fake.run(moved, incar={"ENCUT": 600}, potcar={"Cu": "Cu"})
    assert fake.calls == 4


def test_stale_truncated_output_is_not_reused(fake):
    atoms = bulk("Cu", "fcc", a=3.6)
    job = fake.tmp / "job"
    job.mkdir()
    (job / "vasprun.xml").write_text('<?xml version="1.0"?>\n<modeling>\n <generator>\n')
    out = fake.run(atoms)
    assert fake.calls == 1
    assert out.info["REF_energy"] == pytest.approx(emt_labels(atoms)[0], abs=1e-7)
    assert (job / "attempt-1" / "vasprun.xml").read_text().startswith("<?xml")


@pytest.mark.parametrize(
    "mode, reason",
    [
        ("fail", "exited with status 1"),
        ("crash", "exited with status 139"),
        ("truncated", "truncated or malformed"),
        ("unconverged", "electronic SCF not converged"),
        ("noxml", "no vasprun.xml"),
    ],
)
def test_failed_run_raises_naming_jobdir(fake, monkeypatch, mode, reason):
    monkeypatch.setenv("FAKE_VASP_MODE", mode)
    with pytest.raises(VaspError) as info:
        fake.run(bulk("Cu", "fcc", a=3.6), name=f"job-{mode}")
    job = (fake.tmp / f"job-{mode}").resolve()
    assert str(job) in str(info.value)
    assert reason in str(info.value)
    assert info.value.jobdir == job
    assert fake.calls == 1
    assert (job / "attempt-1" / "vasp.out").is_file()  # failed attempt kept
    assert not (job / "vasprun.xml").exists()


def test_retries_recover_from_a_failed_attempt(fake, monkeypatch):
    monkeypatch.setenv("FAKE_VASP_MODE", "crash,ok")
    atoms = mixed_cell()
    out = fake.run(atoms, retries=1)
    assert fake.calls == 2
    job = fake.tmp / "job"
    assert "SIGSEGV" in (job / "attempt-1" / "vasp.err").read_text()
    assert (job / "attempt-1" / "INCAR").is_file()
    assert not (job / "attempt-2").exists()
    np.testing.assert_allclose(out.arrays["REF_forces"], emt_labels(atoms)[1], atol=1e-7)


def test_retries_exhausted(fake, monkeypatch):
    monkeypatch.setenv("FAKE_VASP_MODE", "unconverged")
    with pytest.raises(VaspError, match=r"not converged.*attempt 2/2"):
        fake.run(bulk("Cu", "fcc", a=3.6), retries=1)
    assert fake.calls == 2
    assert all((fake.tmp / "job" / f"attempt-{k}" / "vasprun.xml").is_file() for k in (1, 2))


def test_timeout(fake, monkeypatch):
    monkeypatch.setenv("FAKE_VASP_MODE", "sleep")
    monkeypatch.setenv("FAKE_VASP_SLEEP", "30")
    with pytest.raises(VaspError, match="timed out after 1 s"):
        fake.run(bulk("Cu", "fcc", a=3.6), timeout=1)


def test_missing_potcar_element(fake):
    atoms = bulk("Pd", "fcc", a=3.9)
    with pytest.raises(FileNotFoundError, match=r"element Pd .*potpaw_PBE/Pd/POTCAR"):
        fake.run(atoms)
    assert fake.calls == 0


def test_no_potcar_library(fake, monkeypatch):
    monkeypatch.delenv("VASP_PP_PATH")
    monkeypatch.setattr(vasp.inputs, "_pmg_setting", lambda key: None)
    with pytest.raises(FileNotFoundError, match="VASP_PP_PATH"):
        write_inputs(bulk("Cu"), fake.tmp / "x")


def test_potcar_choice_ase_layout(fake):
    atoms = mixed_cell()  # Au first
    write_inputs(atoms, fake.tmp / "mp")
    titles = [line.split("=")[1].strip() for line in (fake.tmp / "mp" / "POTCAR").read_text().splitlines() if "TITEL" in line]
    assert titles == ["PAW_PBE Au 06Sep2000", "PAW_PBE Cu_pv 06Sep2000"]  # MP defaults, POSCAR order
    write_inputs(atoms, fake.tmp / "plain", potcar={"setups": {"Cu": "Cu"}})
    assert "PAW_PBE Cu 06Sep2000" in (fake.tmp / "plain" / "POTCAR").read_text()
    write_inputs(atoms, fake.tmp / "plain2", potcar={"Cu": "Cu"})  # shorthand
    assert (fake.tmp / "plain2" / "POTCAR").read_text() == (fake.tmp / "plain" / "POTCAR").read_text()
    with pytest.raises(FileNotFoundError, match="Cu_sv"):
        write_inputs(atoms, fake.tmp / "sv", potcar={"Cu": "Cu_sv"})
    with pytest.raises(FileNotFoundError, match="potpaw_PBE.54"):
        write_inputs(atoms, fake.tmp / "sv", potcar={"set": "potpaw_PBE.54"})
    with pytest.raises(ValueError, match="unknown potcar option"):
        write_inputs(atoms, fake.tmp / "sv", potcar={"functionl": "PBE"})


def test_potcar_choice_pymatgen_layout(fake, monkeypatch):
    """pymatgen's PMG_VASP_PSP_DIR layout (POTCAR.<symbol>[.gz] or <symbol>/POTCAR); files are read raw."""
    monkeypatch.delenv("VASP_PP_PATH")
    psp = fake.tmp / "psp"
    (psp / "POT_GGA_PAW_PBE").mkdir(parents=True)
    (psp / "POT_GGA_PAW_PBE" / "POTCAR.Cu_pv").write_text(fake_potcar("Cu_pv"))
    with gzip.open(psp / "POT_GGA_PAW_PBE" / "POTCAR.Au.gz", "wt") as fh:
        fh.write(fake_potcar("Au"))
    (psp / "POT_GGA_PAW_PBE_54" / "Cu_pv").mkdir(parents=True)
    (psp / "POT_GGA_PAW_PBE_54" / "Cu_pv" / "POTCAR").write_text(fake_potcar("Cu_pv").replace("06Sep2000", "54"))
    monkeypatch.setenv("PMG_VASP_PSP_DIR", str(psp))
    paths = vasp.resolve_potcars(["Au", "Cu"])
    assert [p.name for p in paths] == ["POTCAR.Au.gz", "POTCAR.Cu_pv"]
    atoms = mixed_cell()
    out = fake.run(atoms)  # the fake VASP checks POTCAR order against the POSCAR
    assert out.info["REF_energy"] == pytest.approx(emt_labels(atoms)[0], abs=1e-7)
    assert "PAW_PBE Cu_pv 54" in "".join(
        p.read_text() for p in vasp.resolve_potcars(["Cu"], {"functional": "PBE_54"})
    )
    with pytest.raises(FileNotFoundError, match=r"element Au .*POT_GGA_PAW_PBE_54"):
        vasp.resolve_potcars(["Au"], {"functional": "PBE_54"})


def test_kpoints_density():
    cu = bulk("Cu", "fcc", a=3.6)  # primitive, 11.7 A^3
    n = np.array(kpoint_divisions(cu, 300.0))
    v_recip = (2 * np.pi) ** 3 / cu.get_volume()
    assert len(set(n)) == 1  # equivalent directions, equal divisions
    assert 0.6 < n.prod() / (300.0 * v_recip) <= 1.0 + 1e-9  # about density * V_recip points, rounded down
    assert 15 <= n[0] <= 19  # 300/A^-3 on fcc Cu: ~17^3 mesh (k-spacing ~0.02 2pi/A)
    # supercells: the same k-point density of the crystal
    n2 = np.array(kpoint_divisions(cu.repeat((2, 2, 2)), 300.0))
    assert np.all(np.abs(n2 - n / 2) <= 1)
    # a cubic cell with a 2:1:1 shape gets 1:2:2 divisions
    cubic = bulk("Cu", "fcc", a=3.6, cubic=True).repeat((2, 1, 1))
    a, b, c = kpoint_divisions(cubic, 300.0)
    assert b == c and abs(2 * a - b) <= 1
    # large supercells (>= 20 A, as the benchmark's) get very few k-points; gamma_only gives exactly one
    big = bulk("Cu", "fcc", a=3.6, cubic=True).repeat((6, 6, 6))
    assert max(kpoint_divisions(big, 300.0)) <= 3
    assert kpoint_divisions(big, 300.0, gamma_only=True) == (1, 1, 1)
    assert np.prod(kpoint_divisions(cu, 1000.0)) > np.prod(n)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # spglib, inside pymatgen
def test_kpoints_same_as_pymatgen():
    from pymatgen.io.ase import AseAtomsAdaptor
    from pymatgen.io.vasp.inputs import Kpoints

    tri = bulk("Cu", "fcc", a=3.6).repeat((1, 2, 3))
    tri.set_cell(tri.cell + [[0.3, 0.1, 0.0], [0.0, 0.2, -0.4], [0.5, 0.0, 0.1]], scale_atoms=True)
    cells = [bulk("Cu", "fcc", a=3.6), bulk("Mg", "hcp", a=3.2, c=5.2), tri, bulk("Al", cubic=True).repeat(5)]
    for atoms in cells:
        for density in (50.0, 300.0, 1000.0):
            ref = Kpoints.automatic_density_by_vol(AseAtomsAdaptor.get_structure(atoms), density, force_gamma=True)
            assert kpoint_divisions(atoms, density) == tuple(ref.kpts[0])


def test_kpoints_file_gamma_centred(fake):
    write_inputs(bulk("Cu", "fcc", a=3.6), fake.tmp / "k")
    lines = (fake.tmp / "k" / "KPOINTS").read_text().splitlines()
    assert lines[1:3] == ["0", "Gamma"]
    assert lines[3].split() == [str(x) for x in kpoint_divisions(bulk("Cu", "fcc", a=3.6), 300.0)]
    assert lines[4].split() == ["0", "0", "0"]
    write_inputs(bulk("Cu", "fcc", a=3.6), fake.tmp / "g", gamma_only=True)
    lines = (fake.tmp / "g" / "KPOINTS").read_text().splitlines()
    assert lines[2:4] == ["Gamma", "1 1 1"]


def test_incar_defaults_are_the_benchmark_settings(fake):
    assert DEFAULT_INCAR["ENCUT"] == 520
    assert DEFAULT_INCAR["EDIFF"] == 1e-7
    assert DEFAULT_INCAR["PREC"] == "Accurate"
    assert DEFAULT_INCAR["ISMEAR"] == 0 and DEFAULT_INCAR["SIGMA"] == 0.05
    assert DEFAULT_INCAR["NSW"] == 0 and DEFAULT_INCAR["IBRION"] == -1
    assert DEFAULT_INCAR["ISIF"] >= 1  # stress computed
    assert DEFAULT_INCAR["LREAL"] is False and DEFAULT_INCAR["LWAVE"] is False and DEFAULT_INCAR["LCHARG"] is False
    write_inputs(bulk("Cu"), fake.tmp / "i", incar={"ncore": 4, "ISYM": None, "EDIFF": 1e-6})
    text = (fake.tmp / "i" / "INCAR").read_text()
    tags = dict(line.split(" = ") for line in text.splitlines())
    assert tags["ENCUT"] == "520" and tags["PREC"] == "Accurate" and tags["LREAL"] == ".FALSE."
    assert tags["NCORE"] == "4" and tags["EDIFF"] == "1e-06" and "ISYM" not in tags
    from pymatgen.io.vasp.inputs import Incar

    parsed = Incar.from_str(text)
    assert parsed["EDIFF"] == 1e-6 and parsed["LREAL"] is False and parsed["SIGMA"] == 0.05


def test_magmom_follows_atom_order(fake):
    atoms = mixed_cell()
    moments = np.arange(len(atoms), dtype=float)
    write_inputs(atoms, fake.tmp / "m", incar={"ISPIN": 2, "MAGMOM": moments})
    tags = dict(line.split(" = ") for line in (fake.tmp / "m" / "INCAR").read_text().splitlines())
    perm = vasp.grouped_order(atoms.get_chemical_symbols())
    assert [float(x) for x in tags["MAGMOM"].split()] == list(moments[perm])
    atoms.set_initial_magnetic_moments(moments)
    write_inputs(atoms, fake.tmp / "m2")
    tags2 = dict(line.split(" = ") for line in (fake.tmp / "m2" / "INCAR").read_text().splitlines())
    assert tags2["MAGMOM"] == tags["MAGMOM"] and tags2["ISPIN"] == "2"
    write_inputs(mixed_cell(), fake.tmp / "m3")
    assert "MAGMOM" not in (fake.tmp / "m3" / "INCAR").read_text()


def test_parse_vasprun_errors(tmp_path):
    with pytest.raises(VaspError, match="no vasprun.xml"):
        parse_vasprun(tmp_path / "vasprun.xml")
    (tmp_path / "vasprun.xml").write_text("<modeling><atominfo>")
    with pytest.raises(VaspError, match=f"{tmp_path}.*truncated"):
        parse_vasprun(tmp_path / "vasprun.xml")
    (tmp_path / "vasprun.xml").write_text("<modeling><generator/></modeling>")
    with pytest.raises(VaspError, match="no atominfo"):
        parse_vasprun(tmp_path / "vasprun.xml")


def test_overflowed_numbers_are_a_vasp_error(fake):
    fake.run(bulk("Cu", "fcc", a=3.6))
    path = fake.tmp / "job" / "vasprun.xml"
    text = path.read_text()
    block_start = text.index('<varray name="forces" >')
    first_v = text.index("<v>", block_start)
    path.write_text(text[: first_v + 3] + "  ************  0.0 0.0 " + text[text.index("</v>", first_v) :])
    with pytest.raises(VaspError, match="unreadable value"):
        parse_vasprun(path)


def test_batch_indices_split_a_series_into_jobs():
    from phononft.vasp.jobs import batch_indices

    assert [list(batch_indices(k, 5, 12)) for k in range(3)] == [[0, 1, 2, 3, 4], [5, 6, 7, 8, 9], [10, 11]]
    assert list(batch_indices(3, 1, 4)) == [3]
    with pytest.raises(IndexError, match="past the split's 12 structures"):
        batch_indices(3, 5, 12)


def test_magmom_per_element_fits_every_cell_and_is_checked_before_any_job():
    """``incar: {MAGMOM: {El: μB}}``: one moment per atom in POSCAR order for any cell, ISPIN 2; a per-atom
    list or a non-element key is refused by the config check."""
    import copy

    from ase.build import bulk

    from phononft.config import ConfigError, load_config, validate_config
    from phononft.vasp.inputs import _per_atom_tags, grouped_order

    cell = bulk("FeO", "rocksalt", a=4.3, cubic=True).repeat(2)  # Fe, O alternating: POSCAR groups them
    perm = grouped_order(cell.get_chemical_symbols())
    tags = _per_atom_tags(cell, {"magmom": {"Fe": 4.0, "O": 0.6}}, perm)
    symbols = [cell.get_chemical_symbols()[i] for i in perm]
    assert tags["ISPIN"] == 2 and len(tags["MAGMOM"]) == len(cell) == 64
    assert tags["MAGMOM"] == [4.0 if s == "Fe" else 0.6 for s in symbols]
    assert _per_atom_tags(cell, {"MAGMOM": {"Fe": 4.0}, "ISPIN": 1}, perm)["ISPIN"] == 1  # given ISPIN kept
    assert set(_per_atom_tags(cell, {"MAGMOM": {"Fe": 4.0}}, perm)["MAGMOM"]) == {4.0, 0.0}  # O not listed: 0

    base = load_config(Path(__file__).resolve().parents[1] / "config" / "paper.yaml")
    for magmom, ok in [({"Fe": 4.0, "O": 0.6}, True), (5.0, True), ([4.0, 0.6], False), ({"Xx": 1.0}, False),
                       ({"Fe": "up"}, False)]:
        cfg = copy.deepcopy(base)
        cfg["labeller"]["vasp"]["incar"] = {"MAGMOM": magmom}
        if ok:
            validate_config(cfg)
        else:
            with pytest.raises(ConfigError, match="labeller.vasp.incar.MAGMOM"):
                validate_config(cfg)
