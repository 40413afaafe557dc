"""Parse VASP's ``vasprun.xml`` into labelled ASE atoms (VASP's atom order).

* ``info["REF_energy"]`` is VASP's *energy(sigma->0)* (``e_0_energy``), the quantity pymatgen's
  ``Vasprun.final_energy`` and ASE's ``get_potential_energy()`` on a vasprun.xml report and the one in
  Materials Project task documents, hence in MPtrj, hence the convention of MACE-MP's training
  energies.  It is *not* ``e_wo_entrp`` (the "energy without entropy", ``e_fr + TS``).  Because VASP
  5.4.x wrote ``e_wo_entrp`` into the ``e_0_energy`` slot of the ``<calculation>`` block, it is
  computed as ASE and pymatgen do: ``e_fr_energy`` of the ionic step (minus the PSTRESS*V term VASP
  adds there) plus ``e_0_energy - e_fr_energy`` of the last electronic step.  The free energy
  (``e_fr_energy``, which the forces are the derivatives of) is kept as ``info["REF_free_energy"]``.
  With ISMEAR 0 / SIGMA 0.05 the two differ by a few meV per cell at most for metals and by ~0 for
  gapped materials.
* For a relaxation these are the labels of the final ionic step (the final ``<calculation>``: its
  structure, energy, forces and stress); ``info`` also records the ionic steps, NSW and whether VASP
  stopped before NSW (pymatgen's ``Vasprun.converged_ionic``).
* ``arrays["REF_forces"]`` in eV/A; ``info["REF_stress"]``: 6-Voigt (xx, yy, zz, yz, xz, xy) in eV/A^3
  with ASE's sign (positive = tensile).  vasprun.xml reports the stress in kBar with the opposite sign
  (positive = compressive, i.e. pressure), so ``REF_stress = -0.1 * GPa * sigma_vasp``.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
from ase import Atoms
from ase.units import GPa

__all__ = ["VaspError", "initial_structure", "parse_vasprun"]


class VaspError(RuntimeError):
    """A VASP labelling job failed; ``jobdir`` and ``reason`` say where and why."""

    def __init__(self, jobdir, reason: str):
        self.jobdir = Path(jobdir).resolve() if jobdir is not None else None  # absolute: found from anywhere
        self.reason = reason
        where = f"VASP job in {self.jobdir}" if self.jobdir is not None else "VASP"
        super().__init__(f"{where} failed: {reason}")



def _floats(text) -> list[float]:
    return [float(x) for x in (text or "").split()]


def _varray(elem, name):
    block = elem.find(f"varray[@name='{name}']")
    if block is None:
        return None
    return np.array([_floats(v.text) for v in block.findall("v")], dtype=float)


def _energy(block, name):
    node = block.find(f"i[@name='{name}']")
    if node is None or node.text is None:
        return None
    try:
        return float(node.text)
    except ValueError:  # "*******" overflow
        return float("nan")


def _element(symbol: str) -> str:
    symbol = symbol.strip()
    # vasprun.xml truncates some names (pymatgen's fixes)
    return {"X": "Xe", "r": "Zr"}.get(symbol, symbol)


def _param(root, name):
    node = root.find(f"parameters//i[@name='{name}']")
    if node is None:
        node = root.find(f"incar/i[@name='{name}']")
    return None if node is None or node.text is None else node.text.strip()


def parse_vasprun(path, *, check_converged: bool = True) -> Atoms:
    """Labelled atoms (VASP's atom order) from the final ionic step of a vasprun.xml.

    Sets ``info["REF_energy"]`` (energy(sigma->0), eV), ``info["REF_free_energy"]`` (e_fr, eV),
    ``arrays["REF_forces"]`` (eV/A), ``info["REF_stress"]`` (6-Voigt, eV/A^3, ASE sign; absent if VASP did
    not compute the stress), ``info["label_source"] = "vasp"`` and the diagnostics
    ``info["vasp_scf_steps"]``, ``info["vasp_nelm"]``, ``info["vasp_converged"]`` (electronic) and the
    ionic ones: ``vasp_ionic_steps`` (number of ``<calculation>`` blocks), ``vasp_nsw``, ``vasp_ibrion``,
    ``vasp_isif``, ``vasp_ediffg``, ``vasp_max_force`` (largest atomic force of the final step, eV/A) and
    ``vasp_ionic_converged``: for a relaxation (IBRION 1-3, NSW > 1) whether VASP met EDIFFG before NSW
    ionic steps (pymatgen's ``converged_ionic``: fewer than NSW steps); True otherwise.

    Raises :class:`VaspError` (naming the file's directory) when the file is missing, truncated or
    malformed, holds no finished ionic step, or, with ``check_converged``, when the electronic SCF of
    the final ionic step used all NELM steps (pymatgen's ``converged_electronic`` criterion).
    """
    path = Path(path)
    jobdir = path.parent
    if not path.is_file():
        raise VaspError(jobdir, f"no {path.name} written")
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError as err:
        raise VaspError(jobdir, f"{path.name} is truncated or malformed ({err}); VASP did not finish") from None

    try:
        return _parse_root(root, path, check_converged)
    except (ValueError, TypeError) as err:  # e.g. "*******" where VASP overflowed a number
        raise VaspError(jobdir, f"{path.name}: unreadable value ({err})") from None


def _parse_root(root, path: Path, check_converged: bool) -> Atoms:
    jobdir = path.parent
    try:
        symbols = [_element(rc.find("c").text) for rc in root.find("atominfo/array[@name='atoms']/set")]
    except (AttributeError, TypeError):
        raise VaspError(jobdir, f"{path.name} has no atominfo block") from None
    calcs = root.findall("calculation")
    if not calcs:
        raise VaspError(jobdir, f"{path.name} holds no ionic step (<calculation>)")
    calc = calcs[-1]
    structure = calc.find("structure")
    energy_block = calc.find("energy")
    scsteps = calc.findall("scstep")
    forces = _varray(calc, "forces")
    if structure is None or energy_block is None or not scsteps or forces is None:
        raise VaspError(jobdir, f"{path.name}: final ionic step incomplete (structure/energy/scstep/forces missing)")

    cell = _varray(structure.find("crystal"), "basis")
    frac = _varray(structure, "positions")
    if cell is None or frac is None or cell.shape != (3, 3) or frac.shape != (len(symbols), 3):
        raise VaspError(jobdir, f"{path.name}: cannot read the final structure")
    if forces.shape != (len(symbols), 3):
        raise VaspError(jobdir, f"{path.name}: forces have shape {forces.shape} for {len(symbols)} atoms")

    volume = abs(np.linalg.det(cell))
    pstress = float(_param(root, "PSTRESS") or 0.0)  # kBar
    free_energy = _energy(energy_block, "e_fr_energy")
    if free_energy is None:
        raise VaspError(jobdir, f"{path.name}: no e_fr_energy in the final ionic step")
    # calculation/energy/e_fr_energy includes the PV term (ASE MR 2685); scstep energies do not
    free_energy -= pstress * 0.1 * GPa * volume
    last = scsteps[-1].find("energy")
    e_fr_last = _energy(last, "e_fr_energy") if last is not None else None
    e_0_last = _energy(last, "e_0_energy") if last is not None else None
    if e_fr_last is None or e_0_last is None:
        raise VaspError(jobdir, f"{path.name}: last electronic step has no energies")
    energy = free_energy + (e_0_last - e_fr_last)
    if not np.isfinite(energy) or not np.all(np.isfinite(forces)):
        raise VaspError(jobdir, f"{path.name}: non-finite energy or forces")

    nelm = int(float(_param(root, "NELM") or 60))
    n_scf = len(scsteps)
    converged = n_scf < nelm
    if check_converged and not converged:
        raise VaspError(
            jobdir,
            f"electronic SCF not converged: {n_scf} electronic steps = NELM {nelm} in the final ionic step "
            f"of {path.name}",
        )

    atoms = Atoms(symbols, cell=cell, scaled_positions=frac, pbc=True)
    atoms.info["REF_energy"] = float(energy)
    atoms.info["REF_free_energy"] = float(free_energy)
    atoms.arrays["REF_forces"] = forces
    stress = _varray(calc, "stress")
    if stress is not None and stress.shape == (3, 3):
        stress = -0.1 * GPa * stress  # kBar, VASP sign -> eV/A^3, ASE sign
        atoms.info["REF_stress"] = stress.reshape(9)[[0, 4, 8, 5, 2, 1]].copy()
    atoms.info["label_source"] = "vasp"
    atoms.info["vasp_scf_steps"] = n_scf
    atoms.info["vasp_nelm"] = nelm
    atoms.info["vasp_converged"] = bool(converged)
    atoms.info.update(_ionic_info(root, len(calcs)))
    atoms.info["vasp_max_force"] = float(np.linalg.norm(forces, axis=1).max())
    return atoms


def _ionic_info(root, n_steps: int) -> dict:
    """Ionic settings of the run (VASP's defaults where absent) and pymatgen's ionic convergence."""
    nsw = int(float(_param(root, "NSW") or 0))
    ibrion = int(float(_param(root, "IBRION") or (-1 if nsw <= 1 else 0)))
    ediff = float(_param(root, "EDIFF") or 1e-4)
    relaxation = ibrion in (1, 2, 3) and nsw > 1
    return {
        "vasp_ionic_steps": n_steps,
        "vasp_nsw": nsw,
        "vasp_ibrion": ibrion,
        "vasp_isif": int(float(_param(root, "ISIF") or 2)),
        "vasp_ediffg": float(_param(root, "EDIFFG") or 10 * ediff),
        "vasp_ionic_converged": bool(not relaxation or n_steps < nsw),
    }


def initial_structure(path) -> Atoms:
    """The structure VASP started from (``<structure name="initialpos">``, else the first ionic step's).

    Species, cell and positions in VASP's order; raises :class:`VaspError` like :func:`parse_vasprun`.
    """
    path = Path(path)
    if not path.is_file():
        raise VaspError(path.parent, f"no {path.name} written")
    try:
        root = ET.parse(path).getroot()
        symbols = [_element(rc.find("c").text) for rc in root.find("atominfo/array[@name='atoms']/set")]
        structure = root.find("structure[@name='initialpos']")
        if structure is None:
            structure = root.find("calculation/structure")
        cell = _varray(structure.find("crystal"), "basis")
        frac = _varray(structure, "positions")
    except ET.ParseError as err:
        raise VaspError(path.parent, f"{path.name} is truncated or malformed ({err}); VASP did not finish") from None
    except (AttributeError, TypeError, ValueError):
        raise VaspError(path.parent, f"{path.name}: cannot read the initial structure") from None
    if cell is None or frac is None or cell.shape != (3, 3) or frac.shape != (len(symbols), 3):
        raise VaspError(path.parent, f"{path.name}: cannot read the initial structure")
    return Atoms(symbols, cell=cell, scaled_positions=frac, pbc=True)

