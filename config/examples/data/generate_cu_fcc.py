"""How the example data of config/examples/own_data.yaml were made; EMT stands in for DFT.  From the repository
root: ``PYTHONPATH=src python config/examples/data/generate_cu_fcc.py`` writes into config/examples/data/Cu_fcc/

* ``POSCAR``: fcc Cu, conventional cell, a = 3.59 Å;
* ``labelled.extxyz``: 12 rattled (0.04 Å), strained (±1 %) 2x2x2 supercells (32 atoms) with EMT labels in
  ASE's own calculator keys ``energy`` / ``forces`` / ``stress`` (eV, eV/Å, eV/Å^3, ASE's sign);
* ``vasp/run{0,1}/vasprun.xml``: two more such supercells through the fake VASP of the tests
  (tests/fake_vasp/vasp_std: EMT in VASP's file formats; fake POTCARs, 50 k-points per Å^-3).
"""
import os
import shutil
import sys
import tempfile
from pathlib import Path

import ase.io
import numpy as np
from ase.build import bulk
from ase.calculators.emt import EMT
from ase.calculators.singlepoint import SinglePointCalculator

REPO = Path(__file__).resolve().parents[3]
OUT = REPO / "config" / "examples" / "data" / "Cu_fcc"
sys.path.insert(0, str(REPO / "tests"))
from test_vasp import fake_potcar  # noqa: E402  (the tests' fake POTCAR)

from phononft.vasp import run_vasp  # noqa: E402

unit = bulk("Cu", "fcc", a=3.59, cubic=True)
rng = np.random.default_rng(2026)


def rattled():
    atoms = unit.repeat(2)
    atoms.set_cell(atoms.cell * (1 + rng.uniform(-0.01, 0.01)), scale_atoms=True)
    atoms.positions += rng.normal(0, 0.04, atoms.positions.shape)
    return atoms


OUT.mkdir(parents=True, exist_ok=True)
ase.io.write(OUT / "POSCAR", unit, format="vasp", direct=True)
images = []
for _ in range(12):
    atoms = rattled()
    atoms.calc = EMT()
    results = {"energy": atoms.get_potential_energy(), "forces": atoms.get_forces(), "stress": atoms.get_stress()}
    atoms.calc = SinglePointCalculator(atoms, **results)
    atoms.info["config_type"] = "rattled"
    images.append(atoms)
ase.io.write(OUT / "labelled.extxyz", images, format="extxyz")

tmp = Path(tempfile.mkdtemp())
potcar = tmp / "pp" / "potpaw_PBE" / "Cu_pv"
potcar.mkdir(parents=True)
(potcar / "POTCAR").write_text(fake_potcar("Cu_pv"))
os.environ["VASP_PP_PATH"] = str(tmp / "pp")
os.environ["PATH"] = os.pathsep.join([str(REPO / "tests" / "fake_vasp"), str(Path(sys.executable).parent),
                                      os.environ["PATH"]])
for k in range(2):
    run_vasp(rattled(), tmp / f"run{k}", command="vasp_std", kpoint_density=50.0, log=print)
    (OUT / "vasp" / f"run{k}").mkdir(parents=True, exist_ok=True)
    shutil.copyfile(tmp / f"run{k}" / "vasprun.xml", OUT / "vasp" / f"run{k}" / "vasprun.xml")
shutil.rmtree(tmp)
