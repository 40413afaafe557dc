"""VASP labeller: write a static input set, run VASP, parse ``vasprun.xml`` into labelled ASE atoms.

One call of :func:`run_vasp` labels one structure in its own job directory, so the label stage can
run one Snakemake job (one cluster job) per structure.

Conventions (all checked by ``tests/test_vasp.py`` through a fake ``vasp_std``):

* ``atoms.info["REF_energy"]`` is VASP's *energy(sigma->0)* (``e_0_energy``), the quantity pymatgen's
  ``Vasprun.final_energy`` and ASE's ``get_potential_energy()`` on a vasprun.xml report and the one in
  Materials Project task documents, hence in MPtrj, hence the convention of MACE-MP's training
  energies.  It is *not* ``e_wo_entrp`` (the "energy without entropy", ``e_fr + TS``).  Because VASP
  5.4.x wrote ``e_wo_entrp`` into the ``e_0_energy`` slot of the ``<calculation>`` block, it is
  computed as ASE and pymatgen do: ``e_fr_energy`` of the ionic step (minus the PSTRESS*V term VASP
  adds there) plus ``e_0_energy - e_fr_energy`` of the last electronic step.  The free energy
  (``e_fr_energy``, which the forces are the derivatives of) is kept as ``info["REF_free_energy"]``.
  With ISMEAR 0 / SIGMA 0.05 the two differ by a few meV per cell at most for metals and by ~0 for
  gapped materials.
* ``atoms.arrays["REF_forces"]`` in eV/A; ``atoms.info["REF_stress"]``: 6-Voigt (xx, yy, zz, yz, xz,
  xy) in eV/A^3 with ASE's sign (positive = tensile).  vasprun.xml reports the stress in kBar with the
  opposite sign (positive = compressive, i.e. pressure), so ``REF_stress = -0.1 * GPa * sigma_vasp``.
* VASP needs the atoms grouped by species (one POTCAR per species block).  The POSCAR lists species in
  order of first appearance with a stable grouping; the labels are mapped back so the returned atoms
  have exactly the input order (and the input's positions, cell, info and arrays).  A per-atom
  MAGMOM (``incar={"MAGMOM": [...]}`` in input order, or the atoms' initial magnetic moments) is
  permuted the same way.
* A job directory that already holds a vasprun.xml which parses, is electronically converged, whose
  structure matches the input (same species order, cell and positions within ``MATCH_TOL`` A) and whose
  INCAR/KPOINTS equal the ones that would be written now, is reused without running VASP.
* Failures (nonzero exit, timeout, missing or truncated vasprun.xml, SCF not converged, i.e. NELM
  electronic steps used) raise :class:`VaspError` naming the job directory and the reason.  With
  ``retries=k`` a failed run is repeated up to k times; every failed attempt's outputs (and a copy of
  its inputs) are moved to ``jobdir/attempt-<n>/`` before the next one starts.
"""

from __future__ import annotations

import gzip
import math
import os
import shutil
import signal
import subprocess
import time
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Callable

import numpy as np
from ase import Atoms
from ase.data import chemical_symbols
from ase.units import GPa

__all__ = [
    "DEFAULT_INCAR",
    "INPUT_FILES",
    "MATCH_TOL",
    "VaspError",
    "format_incar",
    "grouped_order",
    "kpoint_divisions",
    "parse_vasprun",
    "resolve_potcars",
    "run_vasp",
    "write_inputs",
]

#: Static single-point settings equal to the benchmark's DFT settings (data/phonon-benchmark/README.md:
#: atomate2 PhononMaker, VASP PBE, ENCUT 520, EDIFF 1e-7, PREC Accurate, ISMEAR 0, SIGMA 0.05).
#: ``incar=`` entries override these; an override with value ``None`` removes the tag.
DEFAULT_INCAR: dict = {
    "PREC": "Accurate",
    "ENCUT": 520,
    "EDIFF": 1e-7,
    "ISMEAR": 0,
    "SIGMA": 0.05,
    "IBRION": -1,  # static: no ionic update
    "NSW": 0,
    "ISIF": 2,  # full stress tensor computed (cell and ions fixed with NSW 0)
    "NELM": 100,
    "ALGO": "Normal",
    "LASPH": True,  # as Materials Project (MPtrj, the foundation model's data) and atomate2
    "LREAL": False,  # reciprocal-space projectors: accurate forces
    "ISYM": 0,  # rattled / displaced cells: no symmetrisation of forces or density
    "LWAVE": False,
    "LCHARG": False,
}

#: Files this module writes into a job directory; everything else there is a VASP output.
INPUT_FILES = ("INCAR", "KPOINTS", "POSCAR", "POTCAR")

#: Tolerance (A) on cell vectors and (minimum-image) positions when deciding whether a vasprun.xml
#: belongs to the input structure.  vasprun.xml stores fractional coordinates with 8 decimals, so
#: 1e-4 A is far above the round-off and far below any rattle or phonon displacement (0.01 A).
MATCH_TOL = 1e-4

#: Version-independent default POTCAR choice: Materials Project's (pymatgen ``MPRelaxSet``), the set
#: used for MPtrj, i.e. for the data the MACE-MP foundation models were trained on.
_MP_POTCAR_SETUPS: dict[str, str] | None = None


class VaspError(RuntimeError):
    """A VASP labelling job failed; ``jobdir`` and ``reason`` say where and why."""

    def __init__(self, jobdir, reason: str):
        self.jobdir = Path(jobdir) if jobdir is not None else None
        self.reason = reason
        where = f"VASP job in {self.jobdir}" if self.jobdir is not None else "VASP"
        super().__init__(f"{where} failed: {reason}")


# --------------------------------------------------------------------------------------------------
# inputs
# --------------------------------------------------------------------------------------------------


def grouped_order(symbols) -> np.ndarray:
    """Permutation grouping atoms by species, species in order of first appearance, stable within.

    ``atoms[perm]`` is the POSCAR order; ``np.argsort(perm)`` maps POSCAR order back to the input's.
    """
    symbols = list(symbols)
    species = list(dict.fromkeys(symbols))
    rank = {s: i for i, s in enumerate(species)}
    return np.array(sorted(range(len(symbols)), key=lambda i: (rank[symbols[i]], i)), dtype=int)


def _merged_incar(incar: dict | None) -> dict:
    merged = {k.upper(): v for k, v in DEFAULT_INCAR.items()}
    for key, value in (incar or {}).items():
        key = key.upper()
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = value
    return merged


def _incar_value(value) -> str:
    if isinstance(value, (bool, np.bool_)):
        return ".TRUE." if value else ".FALSE."
    if isinstance(value, (list, tuple, np.ndarray)):
        return " ".join(_incar_value(v) for v in value)
    if isinstance(value, (float, np.floating)):
        return repr(float(value))
    return str(value)


def format_incar(incar: dict | None = None) -> str:
    """INCAR text for DEFAULT_INCAR updated by ``incar``."""
    return "".join(f"{key} = {_incar_value(value)}\n" for key, value in _merged_incar(incar).items())


def kpoint_divisions(atoms: Atoms, kpoint_density: float = 300.0, gamma_only: bool = False) -> tuple[int, int, int]:
    """Gamma-centred mesh with ``kpoint_density`` k-points per A^-3 of reciprocal volume.

    Materials Project / atomate2 ``reciprocal_density`` (pymatgen ``Kpoints.automatic_density_by_vol``,
    reciprocal volume including the 2*pi factors): the grid holds at most about
    ``kpoint_density * V_recip`` points (divisions rounded down, at least 1), the division along
    reciprocal vector i inversely proportional to the length of real-space lattice vector i
    (pymatgen's rule; same divisions as ``automatic_density_by_vol(..., force_gamma=True)``).
    """
    if gamma_only:
        return (1, 1, 1)
    if kpoint_density <= 0:
        raise ValueError(f"kpoint_density must be positive, got {kpoint_density}")
    # pymatgen's Kpoints.automatic_density_by_vol / automatic_density, without its spglib call
    cell = np.asarray(atoms.cell, dtype=float)
    volume = abs(np.linalg.det(cell))
    kppa = kpoint_density * (2 * np.pi) ** 3 / volume * len(atoms)
    if abs(math.floor(kppa ** (1 / 3) + 0.5) ** 3 - kppa) < 1:
        kppa += kppa * 0.01
    lengths = np.linalg.norm(cell, axis=1)
    mult = (kppa / len(atoms) * np.prod(lengths)) ** (1 / 3)
    return tuple(int(math.floor(max(mult / length, 1))) for length in lengths)


def _format_kpoints(atoms: Atoms, kpoint_density: float, gamma_only: bool) -> str:
    n = kpoint_divisions(atoms, kpoint_density, gamma_only)
    what = "Gamma only" if gamma_only else f"reciprocal density {kpoint_density:g} per A^-3"
    return f"phononft: {what}\n0\nGamma\n{n[0]} {n[1]} {n[2]}\n0 0 0\n"


def _mp_setups() -> dict[str, str]:
    global _MP_POTCAR_SETUPS
    if _MP_POTCAR_SETUPS is None:
        from pymatgen.io.vasp.sets import MPRelaxSet

        _MP_POTCAR_SETUPS = dict(MPRelaxSet.CONFIG["POTCAR"])
    return _MP_POTCAR_SETUPS


_COMPRESSED = ("", ".gz", ".bz2", ".xz", ".Z")


def _read_potcar_file(path: Path) -> str:
    if path.suffix in (".bz2", ".xz", ".Z"):
        from monty.io import zopen

        with zopen(path, "rt") as fh:
            return fh.read()
    if path.suffix == ".gz":
        with gzip.open(path, "rt") as fh:
            return fh.read()
    return path.read_text()


def resolve_potcars(species, potcar: dict | None = None) -> list[Path]:
    """POTCAR file for each species (in the given order).

    ``potcar`` (all keys optional):

    * ``setups``: ``{element: POTCAR symbol}``, e.g. ``{"Cs": "Cs_sv"}``; element keys given at the top
      level (``{"Cs": "Cs_sv"}``) are read as setups too.  Elements not named use ``defaults``.
    * ``defaults``: ``"materialsproject"`` (default: pymatgen MPRelaxSet's choice, e.g. Cu -> Cu_pv,
      Cs -> Cs_sv, consistent with the MPtrj data behind MACE-MP) or ``"element"`` (bare symbol).
    * ``source``: ``"ase"`` (``<pp_path>/<set>/<symbol>/POTCAR``), ``"pymatgen"``
      (``<psp_dir>/<functional dir>/POTCAR.<symbol>`` or ``.../<symbol>/POTCAR``) or ``"auto"``
      (default: ASE layout when ``pp_path``/``VASP_PP_PATH`` is set, else pymatgen's).
    * ``pp_path`` (default ``$VASP_PP_PATH``, ``os.pathsep``-separated list allowed) and ``set``
      (default ``"potpaw_PBE"``) for the ASE layout.
    * ``psp_dir`` (default ``$PMG_VASP_PSP_DIR``, then pymatgen's settings) and ``functional``
      (default ``"PBE"``, pymatgen's names: PBE, PBE_52, PBE_54, PBE_64, ...) for pymatgen's layout.

    Compressed files (.gz, .bz2, .xz, .Z) are accepted.  Raises ``FileNotFoundError`` naming the element,
    the POTCAR symbol and every path tried.
    """
    opts = dict(potcar or {})
    setups = dict(opts.pop("setups", None) or {})
    for key in list(opts):
        if key in chemical_symbols:
            setups[key] = opts.pop(key)
    defaults = opts.pop("defaults", "materialsproject")
    source = opts.pop("source", "auto")
    pp_path = opts.pop("pp_path", None)
    pp_set = opts.pop("set", "potpaw_PBE")
    psp_dir = opts.pop("psp_dir", None)
    functional = opts.pop("functional", "PBE")
    if opts:
        raise ValueError(f"unknown potcar option(s) {sorted(opts)}")
    if defaults not in ("materialsproject", "element"):
        raise ValueError(f"potcar defaults must be 'materialsproject' or 'element', got {defaults!r}")

    if source == "auto":
        if pp_path or os.environ.get("VASP_PP_PATH"):
            source = "ase"
        elif psp_dir or os.environ.get("PMG_VASP_PSP_DIR") or _pmg_setting("PMG_VASP_PSP_DIR"):
            source = "pymatgen"
        else:
            raise FileNotFoundError(
                "no POTCAR library configured: set VASP_PP_PATH (ASE layout <pp_path>/potpaw_PBE/<El>/POTCAR) "
                "or PMG_VASP_PSP_DIR (pymatgen layout), or pass potcar={'pp_path': ...}"
            )

    if source == "ase":
        roots_str = pp_path or os.environ.get("VASP_PP_PATH")
        if not roots_str:
            raise FileNotFoundError("potcar source 'ase' needs pp_path or the VASP_PP_PATH environment variable")
        roots = [Path(p).expanduser() / pp_set for p in str(roots_str).split(os.pathsep) if p]

        def candidates(symbol):
            return [root / symbol / "POTCAR" for root in roots]

    elif source == "pymatgen":
        root_str = psp_dir or os.environ.get("PMG_VASP_PSP_DIR") or _pmg_setting("PMG_VASP_PSP_DIR")
        if not root_str:
            raise FileNotFoundError("potcar source 'pymatgen' needs psp_dir or PMG_VASP_PSP_DIR")
        from pymatgen.io.vasp.inputs import POTCAR_FUNCTIONAL_MAP

        subdirs = dict(POTCAR_FUNCTIONAL_MAP)
        subdirs.update(_pmg_setting("PMG_VASP_PSP_SUB_DIRS") or {})
        if functional not in subdirs:
            raise ValueError(f"unknown POTCAR functional {functional!r}; known: {sorted(subdirs)}")
        root = Path(root_str).expanduser() / subdirs[functional]

        def candidates(symbol):
            return [root / f"POTCAR.{symbol}", root / symbol / "POTCAR"]

    else:
        raise ValueError(f"potcar source must be 'auto', 'ase' or 'pymatgen', got {source!r}")

    paths = []
    for element in species:
        if element in setups:
            symbol = setups[element]
        elif defaults == "materialsproject":
            symbol = _mp_setups().get(element, element)
        else:
            symbol = element
        tried = []
        found = None
        for base in candidates(symbol):
            for ext in _COMPRESSED:
                path = Path(str(base) + ext)
                tried.append(str(path))
                if path.is_file():
                    found = path
                    break
            if found:
                break
        if found is None:
            raise FileNotFoundError(
                f"POTCAR for element {element} (setup {symbol!r}, {source} layout) not found; tried: "
                + ", ".join(tried)
            )
        paths.append(found)
    return paths


def _pmg_setting(key):
    try:
        from pymatgen.core import SETTINGS
    except Exception:  # pragma: no cover - pymatgen is a dependency
        return None
    return SETTINGS.get(key)


def _bare(atoms: Atoms) -> Atoms:
    """Species, cell and positions only (no calculator, constraints, magnetic moments, ...)."""
    return Atoms(atoms.get_chemical_symbols(), cell=atoms.cell, positions=atoms.positions, pbc=True)


def _input_texts(atoms, *, incar, kpoint_density, gamma_only, potcar):
    """(POSCAR-ordered atoms, {file name: text}) of the input set."""
    if len(atoms) == 0:
        raise ValueError("cannot label an empty structure")
    if not np.all(atoms.pbc):
        raise ValueError("VASP labelling needs a periodic cell (pbc all True)")
    perm = grouped_order(atoms.get_chemical_symbols())
    sorted_atoms = _bare(atoms)[perm]
    species = list(dict.fromkeys(sorted_atoms.get_chemical_symbols()))

    import io

    from ase.io.vasp import write_vasp

    buf = io.StringIO()
    write_vasp(buf, sorted_atoms, direct=True, sort=False)
    potcar_text = "".join(_read_potcar_file(p) for p in resolve_potcars(species, potcar))
    if not potcar_text.endswith("\n"):
        potcar_text += "\n"
    texts = {
        "POSCAR": buf.getvalue(),
        "INCAR": format_incar(_per_atom_tags(atoms, incar, perm)),
        "KPOINTS": _format_kpoints(sorted_atoms, kpoint_density, gamma_only),
        "POTCAR": potcar_text,
    }
    return perm, sorted_atoms, texts


def _per_atom_tags(atoms: Atoms, incar: dict | None, perm: np.ndarray) -> dict:
    """INCAR overrides with per-atom MAGMOM in POSCAR order.

    A MAGMOM given as one value per atom (input order) is permuted like the atoms; without MAGMOM,
    nonzero ``atoms.get_initial_magnetic_moments()`` become MAGMOM with ISPIN 2 (as ASE's Vasp does).
    """
    incar = {k.upper(): v for k, v in (incar or {}).items()}
    magmom = incar.get("MAGMOM")
    if isinstance(magmom, (list, tuple, np.ndarray)):
        if len(magmom) != len(atoms):
            raise ValueError(f"MAGMOM has {len(magmom)} values for {len(atoms)} atoms")
        incar["MAGMOM"] = [float(magmom[i]) for i in perm]
    elif "MAGMOM" not in incar and atoms.has("initial_magmoms"):
        moments = atoms.get_initial_magnetic_moments()
        if moments.ndim == 1 and np.any(moments != 0):
            incar["MAGMOM"] = [float(moments[i]) for i in perm]
            incar.setdefault("ISPIN", 2)
    return incar


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_text(text)
    os.replace(tmp, path)


def write_inputs(
    atoms: Atoms,
    jobdir,
    *,
    incar: dict | None = None,
    kpoint_density: float = 300.0,
    gamma_only: bool = False,
    potcar: dict | None = None,
) -> None:
    """Write POSCAR (species grouped), INCAR, KPOINTS (Gamma-centred) and POTCAR into ``jobdir``."""
    jobdir = Path(jobdir)
    _, _, texts = _input_texts(atoms, incar=incar, kpoint_density=kpoint_density, gamma_only=gamma_only, potcar=potcar)
    jobdir.mkdir(parents=True, exist_ok=True)
    for name, text in texts.items():
        _write_atomic(jobdir / name, text)


# --------------------------------------------------------------------------------------------------
# parsing
# --------------------------------------------------------------------------------------------------


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
    ``info["vasp_scf_steps"]``, ``info["vasp_nelm"]``, ``info["vasp_converged"]``.

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
    return atoms


# --------------------------------------------------------------------------------------------------
# running
# --------------------------------------------------------------------------------------------------


def _structure_mismatch(reference: Atoms, other: Atoms, tol: float = MATCH_TOL) -> str | None:
    """None when same species order, cell and positions (minimum image) within ``tol`` A; else why not."""
    if len(reference) != len(other):
        return f"{len(other)} atoms instead of {len(reference)}"
    if reference.get_chemical_symbols() != other.get_chemical_symbols():
        return "species (order) differ"
    dcell = np.abs(np.asarray(reference.cell) - np.asarray(other.cell)).max()
    if dcell > tol:
        return f"cell differs by {dcell:.2e} A"
    dfrac = other.get_scaled_positions(wrap=False) - reference.get_scaled_positions(wrap=False)
    dfrac -= np.round(dfrac)
    dpos = np.linalg.norm(dfrac @ np.asarray(reference.cell), axis=1).max()
    if dpos > tol:
        return f"positions differ by up to {dpos:.2e} A"
    return None


def _labelled(atoms: Atoms, parsed: Atoms, perm: np.ndarray) -> Atoms:
    """The input atoms (input order) carrying the labels of ``parsed`` (POSCAR order)."""
    inverse = np.argsort(perm)
    out = atoms.copy()
    out.calc = None
    for key in ("REF_energy", "REF_free_energy", "REF_stress"):
        out.info.pop(key, None)
    out.info["REF_energy"] = parsed.info["REF_energy"]
    out.info["REF_free_energy"] = parsed.info["REF_free_energy"]
    if "REF_stress" in parsed.info:
        out.info["REF_stress"] = np.array(parsed.info["REF_stress"])
    if "REF_forces" in out.arrays:
        del out.arrays["REF_forces"]
    out.arrays["REF_forces"] = np.array(parsed.arrays["REF_forces"][inverse])
    out.info["label_source"] = "vasp"
    return out


def _outputs(jobdir: Path) -> list[Path]:
    return sorted(
        p
        for p in jobdir.iterdir()
        if p.name not in INPUT_FILES and not p.name.startswith("attempt-") and not p.name.startswith(".")
    )


def _archive_outputs(jobdir: Path) -> Path | None:
    """Move VASP outputs (and a copy of the inputs) to the next ``attempt-<n>``; its path or None."""
    outputs = _outputs(jobdir)
    if not outputs:
        return None
    taken = [int(p.name.split("-", 1)[1]) for p in jobdir.glob("attempt-*") if p.name.split("-", 1)[1].isdigit()]
    dest = jobdir / f"attempt-{max(taken, default=0) + 1}"
    dest.mkdir()
    for name in INPUT_FILES:
        if (jobdir / name).is_file():
            shutil.copy2(jobdir / name, dest / name)
    for p in outputs:
        shutil.move(str(p), str(dest / p.name))
    return dest


def _tail(path: Path, n: int = 5) -> str:
    try:
        lines = [line for line in path.read_text(errors="replace").splitlines() if line.strip()]
    except OSError:
        return ""
    return " | ".join(lines[-n:])


def _execute(command: str, jobdir: Path, timeout: float | None) -> str | None:
    """Run ``command`` in ``jobdir``; None on exit status 0, else the failure reason."""
    with open(jobdir / "vasp.out", "wb") as out, open(jobdir / "vasp.err", "wb") as err:
        proc = subprocess.Popen(
            command, shell=True, cwd=jobdir, stdout=out, stderr=err, stdin=subprocess.DEVNULL, start_new_session=True
        )
        try:
            rc = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            _kill_group(proc)
            return f"timed out after {timeout:g} s (command {command!r})"
        except BaseException:  # interrupted (e.g. Snakemake cancelling the job): take VASP down with us
            _kill_group(proc)
            raise
    if rc != 0:
        detail = _tail(jobdir / "vasp.err") or _tail(jobdir / "vasp.out")
        return f"command {command!r} exited with status {rc}" + (f": {detail}" if detail else "")
    return None


def _kill_group(proc: subprocess.Popen) -> None:
    """Terminate the process group started for this run (and only it)."""
    for sig, wait in ((signal.SIGTERM, 10.0), (signal.SIGKILL, 10.0)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


def _check_result(jobdir: Path, sorted_atoms: Atoms) -> Atoms:
    parsed = parse_vasprun(jobdir / "vasprun.xml")
    why = _structure_mismatch(sorted_atoms, parsed)
    if why:
        raise VaspError(
            jobdir,
            f"final structure in vasprun.xml does not match the input ({why}); labelling must be a static "
            "run (NSW 0, IBRION -1)",
        )
    return parsed


def _reusable(jobdir: Path, sorted_atoms: Atoms, texts: dict) -> tuple[Atoms | None, str]:
    vasprun = jobdir / "vasprun.xml"
    if not vasprun.is_file():
        return None, "no vasprun.xml"
    try:
        parsed = parse_vasprun(vasprun)
    except VaspError as err:
        return None, err.reason
    why = _structure_mismatch(sorted_atoms, parsed)
    if why:
        return None, f"vasprun.xml is for another structure ({why})"
    for name in ("INCAR", "KPOINTS", "POTCAR"):  # the structure itself is compared numerically above
        path = jobdir / name
        if not path.is_file() or path.read_text() != texts[name]:
            return None, f"{name} differs from the requested settings"
    return parsed, "done"


def run_vasp(
    atoms: Atoms,
    jobdir,
    *,
    command: str,
    incar: dict | None = None,
    kpoint_density: float = 300.0,
    gamma_only: bool = False,
    potcar: dict | None = None,
    retries: int = 0,
    timeout: float | None = None,
    log: Callable[[str], object] = print,
) -> Atoms:
    """Label ``atoms`` with a static VASP run in ``jobdir``; returns a copy with REF_* labels.

    ``command`` is a shell string (e.g. ``"srun vasp_std"``) run with cwd ``jobdir``; its stdout/stderr
    go to ``vasp.out`` / ``vasp.err`` there.  See the module docstring for the label conventions, the
    reuse of finished runs and the failure handling.  Raises :class:`VaspError`.
    """
    if not command or not str(command).strip():
        raise ValueError("run_vasp needs a command (e.g. 'srun vasp_std')")
    if retries < 0:
        raise ValueError(f"retries must be >= 0, got {retries}")
    jobdir = Path(jobdir).resolve()
    perm, sorted_atoms, texts = _input_texts(
        atoms, incar=incar, kpoint_density=kpoint_density, gamma_only=gamma_only, potcar=potcar
    )
    jobdir.mkdir(parents=True, exist_ok=True)

    parsed, why = _reusable(jobdir, sorted_atoms, texts)
    if parsed is not None:
        log(f"[vasp] {jobdir}: finished run found, reusing it")
        return _labelled(atoms, parsed, perm)
    if (jobdir / "vasprun.xml").exists() or _outputs(jobdir):
        dest = _archive_outputs(jobdir)
        log(f"[vasp] {jobdir}: previous outputs not reusable ({why}); moved to {dest}")

    attempts = retries + 1
    for attempt in range(1, attempts + 1):
        for name, text in texts.items():
            _write_atomic(jobdir / name, text)
        start = time.monotonic()
        log(f"[vasp] {jobdir}: running {command!r} (attempt {attempt}/{attempts})")
        reason = _execute(command, jobdir, timeout)
        try:
            if reason is not None:
                raise VaspError(jobdir, reason)
            parsed = _check_result(jobdir, sorted_atoms)
        except VaspError as err:
            dest = _archive_outputs(jobdir)
            msg = f"{err.reason} (attempt {attempt}/{attempts}; outputs kept in {dest})"
            if attempt < attempts:
                log(f"[vasp] {jobdir}: failed: {msg}; retrying")
                continue
            raise VaspError(jobdir, msg) from None
        if "REF_stress" not in parsed.info:
            log(f"[vasp] {jobdir}: warning: vasprun.xml has no stress (ISIF 0?); REF_stress not set")
        log(
            f"[vasp] {jobdir}: done in {time.monotonic() - start:.1f} s, "
            f"{parsed.info['vasp_scf_steps']} electronic steps, E = {parsed.info['REF_energy']:.6f} eV"
        )
        return _labelled(atoms, parsed, perm)
    raise AssertionError("unreachable")  # pragma: no cover

