"""VASP relaxations (run_vasp kinds relax_ions / relax_cell / relax_free, relax_twice) through the fake
``vasp_std``, whose relaxations are ASE's with EMT: they must equal the in-process ones
(phononft.tasks.relax), as the workflow requires of any labeller."""

from __future__ import annotations

import numpy as np
import pytest
import spglib
from ase.build import bulk
from ase.calculators.emt import EMT
from ase.io import read
from test_vasp import Fake  # the fake VASP's environment: POTCARs, PATH, call log

from phononft.tasks import relax
from phononft.vasp import KIND_INCAR, VaspError, kpoint_divisions, relax_twice


@pytest.fixture
def fake(tmp_path, monkeypatch):
    return Fake(tmp_path, monkeypatch)


def spacegroup(atoms, symprec=1e-3) -> str:
    return spglib.get_spacegroup((np.asarray(atoms.cell), atoms.get_scaled_positions(), atoms.numbers),
                                 symprec=symprec)


def incar_tags(path) -> dict:
    return dict(line.split(" = ") for line in path.read_text().splitlines())


def emt(atoms):
    a = atoms.copy()
    a.calc = EMT()
    return a.get_potential_energy(), a.get_forces(), a.get_stress()


def fcc_lattice_parameter(primitive) -> float:
    return (4 * primitive.get_volume()) ** (1 / 3)


def test_relax_cell_equals_in_process_relaxation(fake):
    atoms = bulk("Cu", "fcc", a=3.70)  # EMT's a0 is ~3.59
    fmax = 1e-4
    out = fake.run(atoms, kind="relax_cell", fmax=fmax)
    ref, info = relax(atoms, EMT(), fmax=fmax, log=lambda m: None)
    assert info["converged"]
    assert fcc_lattice_parameter(ref) < 3.65  # the relaxation did something
    assert fcc_lattice_parameter(out) == pytest.approx(fcc_lattice_parameter(ref), abs=1e-4)
    np.testing.assert_allclose(out.cell, ref.cell, atol=1e-4)
    assert out.info["REF_energy"] / len(out) == pytest.approx(info["energy_per_atom"], abs=1e-5)
    assert out.info["vasp_ionic_steps"] == info["steps"] + 1  # one ionic step per force evaluation
    assert out.info["vasp_relax_converged"] is True and out.info["vasp_kind"] == "relax_cell"
    # the labels are those of the returned (final) structure
    energy, forces, stress = emt(out)
    assert out.info["REF_energy"] == pytest.approx(energy, abs=1e-6)
    np.testing.assert_allclose(out.arrays["REF_forces"], forces, atol=1e-6)
    np.testing.assert_allclose(out.info["REF_stress"], stress, atol=1e-7)
    assert np.abs(out.info["REF_stress"]).max() < 1e-4  # relaxed cell: (generalised) stress below fmax
    # the fake's vasprun.xml reads as a relaxation to pymatgen and ASE too
    from pymatgen.io.vasp.outputs import Vasprun

    path = fake.tmp / "job" / "vasprun.xml"
    vr = Vasprun(path, parse_potcar_file=False)
    assert vr.converged_ionic and vr.converged_electronic and len(vr.ionic_steps) == info["steps"] + 1
    assert vr.final_energy == pytest.approx(out.info["REF_energy"], abs=1e-8)
    np.testing.assert_allclose(vr.final_structure.lattice.matrix, out.cell, atol=1e-9)
    assert len(read(path, index=":", format="vasp-xml")) == info["steps"] + 1
    tags = incar_tags(fake.tmp / "job" / "INCAR")
    assert (tags["IBRION"], tags["ISIF"], tags["ISYM"], tags["NSW"]) == ("2", "3", "2", "99")
    assert float(tags["EDIFFG"]) == -fmax and float(tags["EDIFF"]) == 1e-7
    assert fake.calls == 1


def test_relax_ions_keeps_the_cell(fake):
    atoms = bulk("Cu", "fcc", a=3.6, cubic=True).repeat((2, 1, 1))
    atoms.set_cell(atoms.cell @ np.array([[1.02, 0.01, 0.0], [0.0, 0.99, 0.0], [0.0, 0.0, 1.0]]), scale_atoms=True)
    atoms.rattle(0.05, seed=1)
    assert np.linalg.norm(emt(atoms)[1], axis=1).max() > 0.1
    fmax = 1e-3
    out = fake.run(atoms, kind="relax_ions", fmax=fmax)
    np.testing.assert_allclose(out.cell, atoms.cell, atol=1e-7)
    assert out.info["vasp_max_force"] < fmax
    assert np.linalg.norm(emt(out)[1], axis=1).max() < fmax
    moved = np.linalg.norm(out.positions - atoms.positions, axis=1)
    assert 0.01 < moved.max() < 0.3  # relaxed, each atom next to where it started (no wrapped images)
    assert abs(out.info["REF_stress"]).max() > 1e-3  # strained cell kept: stress remains
    tags = incar_tags(fake.tmp / "job" / "INCAR")
    assert (tags["ISIF"], tags["ISYM"]) == ("2", "0")


def test_relax_free_breaks_symmetry_relax_cell_keeps_it(fake):
    """bcc Cu (unstable under EMT) with an orthorhombic strain of 1e-4, below the symmetry tolerance."""
    bcc = bulk("Cu", "bcc", a=2.87, cubic=True)
    bcc.set_cell(bcc.cell @ np.diag([1 + 1e-4, 1 - 1e-4, 1.0]), scale_atoms=True)
    assert spacegroup(bcc) == "Im-3m (229)"
    fmax = 1e-5
    kept = fake.run(bcc, name="cell", kind="relax_cell", fmax=fmax)
    free = fake.run(bcc, name="free", kind="relax_free", fmax=fmax)
    assert spacegroup(kept) == "Im-3m (229)"
    assert spacegroup(free) == "Fm-3m (225)"  # down the Bain path into fcc: a new phase
    assert free.info["REF_energy"] / 2 < kept.info["REF_energy"] / 2 - 0.03
    ref, _ = relax(bcc, EMT(), fmax=fmax, keep_symmetry=False, log=lambda m: None)
    assert free.info["REF_energy"] / 2 == pytest.approx(emt(ref)[0] / 2, abs=1e-5)
    assert incar_tags(fake.tmp / "free" / "INCAR")["ISYM"] == "0"


def test_finished_relaxation_is_reused(fake):
    atoms = bulk("Cu", "fcc", a=3.70)
    first = fake.run(atoms, kind="relax_cell", fmax=1e-3)
    again = fake.run(atoms.copy(), kind="relax_cell", fmax=1e-3)
    assert fake.calls == 1 and any("reusing" in m for m in fake.messages)
    np.testing.assert_array_equal(again.cell, first.cell)
    assert again.info["REF_energy"] == first.info["REF_energy"]
    fake.run(atoms, kind="relax_cell", fmax=5e-4)  # other EDIFFG: run again
    assert fake.calls == 2
    other = atoms.copy()
    other.set_cell(other.cell * 1.01, scale_atoms=True)  # other start: run again
    fake.run(other, kind="relax_cell", fmax=5e-4)
    assert fake.calls == 3


def test_unconverged_relaxation_raises_naming_the_directory(fake):
    atoms = bulk("Cu", "fcc", a=3.70)
    with pytest.raises(VaspError, match=r"ionic relaxation not converged after 2 steps \(NSW 2") as info:
        fake.run(atoms, kind="relax_cell", fmax=1e-4, incar={"NSW": 2})
    job = (fake.tmp / "job").resolve()
    assert info.value.jobdir == job and str(job) in str(info.value)
    assert (job / "attempt-1" / "CONTCAR").is_file()
    with pytest.raises(VaspError, match="not converged"):  # not taken for a finished run
        fake.run(atoms, kind="relax_cell", fmax=1e-4, incar={"NSW": 2})
    assert fake.calls == 2


def test_retry_continues_an_unconverged_relaxation_from_its_contcar(fake):
    atoms = bulk("Cu", "fcc", a=3.70)
    fmax = 1e-4
    out = fake.run(atoms, kind="relax_cell", fmax=fmax, incar={"NSW": 4}, retries=20)
    job = fake.tmp / "job"
    assert fake.calls >= 2
    second_start = read(job / ("attempt-2" if fake.calls > 2 else "") / "POSCAR")
    first_end = read(job / "attempt-1" / "CONTCAR")
    np.testing.assert_allclose(second_start.cell, first_end.cell, atol=1e-12)
    assert out.info["vasp_max_force"] < fmax
    ref, _ = relax(atoms, EMT(), fmax=fmax, log=lambda m: None)
    assert fcc_lattice_parameter(out) == pytest.approx(fcc_lattice_parameter(ref), abs=1e-4)
    calls = fake.calls
    again = fake.run(atoms, kind="relax_cell", fmax=fmax, incar={"NSW": 4}, retries=20)
    assert fake.calls == calls, "a relaxation continued from CONTCARs is still the input's"
    np.testing.assert_array_equal(again.cell, out.cell)


def test_failed_relaxation_retried_from_the_same_start(fake, monkeypatch):
    monkeypatch.setenv("FAKE_VASP_MODE", "crash,ok")
    atoms = bulk("Cu", "fcc", a=3.70)
    out = fake.run(atoms, kind="relax_ions", fmax=1e-3, retries=1)
    job = fake.tmp / "job"
    assert fake.calls == 2 and "SIGSEGV" in (job / "attempt-1" / "vasp.err").read_text()
    assert (job / "POSCAR").read_text() == (job / "attempt-1" / "POSCAR").read_text()
    np.testing.assert_allclose(out.cell, atoms.cell, atol=1e-7)


def test_relax_twice_two_directories_reused_on_rerun(fake):
    atoms = bulk("Cu", "fcc", a=3.70)

    def double():
        return relax_twice(atoms, fake.tmp / "double", command="vasp_std", fmax=1e-4, kpoint_density=50.0,
                           log=fake.messages.append)

    out = double()
    assert fake.calls == 2
    first = read(fake.tmp / "double" / "relax-1" / "CONTCAR")
    start2 = read(fake.tmp / "double" / "relax-2" / "POSCAR")
    np.testing.assert_allclose(start2.cell, first.cell, atol=1e-7)  # relax-2 starts where relax-1 ended
    kpts = (fake.tmp / "double" / "relax-2" / "KPOINTS").read_text().splitlines()[3].split()
    assert tuple(int(k) for k in kpts) == kpoint_divisions(start2, 50.0)  # k-points of the new cell
    assert out.info["vasp_ionic_steps_relax1"] > out.info["vasp_ionic_steps"]
    assert out.info["vasp_max_force"] < 1e-4
    again = double()
    assert fake.calls == 2
    np.testing.assert_array_equal(again.cell, out.cell)
    assert again.info["REF_energy"] == out.info["REF_energy"]


def test_kind_and_fmax_checked(fake):
    atoms = bulk("Cu", "fcc", a=3.6)
    with pytest.raises(ValueError, match="unknown VASP run kind 'relax'"):
        fake.run(atoms, kind="relax")
    with pytest.raises(ValueError, match="static run has none"):
        fake.run(atoms, fmax=1e-3)
    with pytest.raises(ValueError, match="fmax must be positive"):
        fake.run(atoms, kind="relax_ions", fmax=0.0)
    assert set(KIND_INCAR) == {"static", "relax_ions", "relax_cell", "relax_free"}
    assert fake.calls == 0
