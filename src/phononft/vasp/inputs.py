"""VASP input sets: INCAR, KPOINTS (Gamma-centred, by reciprocal density), POSCAR (species grouped), POTCAR.

VASP needs the atoms grouped by species (one POTCAR per species block).  The POSCAR lists species in order
of first appearance with a stable grouping (:func:`grouped_order`); a per-atom MAGMOM (``incar={"MAGMOM":
[...]}`` in input order, or the atoms' initial magnetic moments) is permuted the same way.
"""

from __future__ import annotations

import gzip
import io
import math
import os
from pathlib import Path

import numpy as np
from ase import Atoms
from ase.data import chemical_symbols
from ase.io.vasp import write_vasp
from monty.io import zopen

from ..io import write_text

__all__ = [
    "DEFAULT_INCAR",
    "INPUT_FILES",
    "KINDS",
    "KIND_INCAR",
    "format_incar",
    "grouped_order",
    "kind_incar",
    "kpoint_divisions",
    "resolve_potcars",
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

#: What a run computes, as INCAR tags on top of DEFAULT_INCAR (``incar=`` overrides still apply last).
#: The relaxation settings are atomate2's tight relaxations (materialsproject/atomate2,
#: src/atomate2/vasp/sets/core.py ``TightRelaxSetGenerator``, the ``TightRelaxMaker`` that ``PhononMaker``
#: runs twice as its ``bulk_relax_maker = DoubleRelaxMaker.from_relax_maker(TightRelaxMaker())``;
#: src/atomate2/vasp/jobs/elastic.py ``ElasticRelaxMaker`` for the fixed-cell ISIF 2 one): IBRION 2
#: (conjugate gradient), NSW 99, EDIFF 1e-7, EDIFFG -0.001 (forces below 1e-3 eV/A), LREAL False,
#: ALGO Normal, LCHARG False (the last four are DEFAULT_INCAR's already).  Not taken over: their
#: ENCUT 700 (the benchmark's relaxations used ENCUT 520 like its displacement runs, see
#: data/phonon-benchmark/README.md) and the benchmark's EDIFFG +1e-6 (an energy criterion; pass
#: ``incar={"EDIFFG": 1e-6}`` for it): here EDIFFG = -fmax, the same force criterion (eV/A) as the
#: in-process ASE relaxations (phononft.tasks.relax).
#:
#: * ``static``: single point (DEFAULT_INCAR: IBRION -1, NSW 0, ISYM 0);
#: * ``relax_ions``: positions only, cell fixed (ISIF 2), no symmetrisation (ISYM 0), e.g. the strained
#:   cells of the elastic tensor;
#: * ``relax_cell``: cell and positions (ISIF 3) with VASP's symmetry on (ISYM 2, VASP's PAW default; the
#:   benchmark's INCAR leaves it unset), the reference relaxation;
#: * ``relax_free``: cell and positions (ISIF 3) without symmetry (ISYM 0), relaxation along imaginary
#:   modes into a new phase.
KIND_INCAR: dict[str, dict] = {
    "static": {},
    "relax_ions": {"IBRION": 2, "ISIF": 2, "NSW": 99, "EDIFFG": -1e-3, "ISYM": 0},
    "relax_cell": {"IBRION": 2, "ISIF": 3, "NSW": 99, "EDIFFG": -1e-3, "ISYM": 2},
    "relax_free": {"IBRION": 2, "ISIF": 3, "NSW": 99, "EDIFFG": -1e-3, "ISYM": 0},
}
KINDS = tuple(KIND_INCAR)

#: Files this module writes into a job directory; everything else there is a VASP output.
INPUT_FILES = ("INCAR", "KPOINTS", "POSCAR", "POTCAR")

#: Version-independent default POTCAR choice: Materials Project's (pymatgen ``MPRelaxSet``), the set
#: used for MPtrj, i.e. for the data the MACE-MP foundation models were trained on.
_MP_POTCAR_SETUPS: dict[str, str] | None = None


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
        from pymatgen.io.vasp.sets import MPRelaxSet  # heavy (pymatgen, ~1 s): the EMT path imports vasp too

        _MP_POTCAR_SETUPS = dict(MPRelaxSet.CONFIG["POTCAR"])
    return _MP_POTCAR_SETUPS


_COMPRESSED = ("", ".gz", ".bz2", ".xz", ".Z")


def _read_potcar_file(path: Path) -> str:
    if path.suffix in (".bz2", ".xz", ".Z"):
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
        from pymatgen.io.vasp.inputs import POTCAR_FUNCTIONAL_MAP  # heavy (pymatgen): see _mp_setups

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
        from pymatgen.core import SETTINGS  # heavy (pymatgen): see _mp_setups
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

    potcar_text = "".join(_read_potcar_file(p) for p in resolve_potcars(species, potcar))
    if not potcar_text.endswith("\n"):
        potcar_text += "\n"
    texts = {
        "POSCAR": poscar_text(sorted_atoms),
        "INCAR": format_incar(_per_atom_tags(atoms, incar, perm)),
        "KPOINTS": _format_kpoints(sorted_atoms, kpoint_density, gamma_only),
        "POTCAR": potcar_text,
    }
    return perm, sorted_atoms, texts


def poscar_text(atoms: Atoms) -> str:
    """POSCAR of ``atoms`` as given (species must already be grouped), fractional coordinates."""
    buf = io.StringIO()
    write_vasp(buf, atoms, direct=True, sort=False)
    return buf.getvalue()


def _per_atom_tags(atoms: Atoms, incar: dict | None, perm: np.ndarray) -> dict:
    """INCAR overrides with per-atom MAGMOM in POSCAR order.

    A MAGMOM given per element (``{"Fe": 4.0, "O": 0.6}``, μB, as pymatgen's ``user_incar_settings``; an
    element not listed starts at 0) becomes one value per atom of every structure (unit cell, rattled and phonon
    supercells alike: the form the configuration can give) and sets ISPIN 2 unless given; a MAGMOM given as one
    value per atom (input order) is permuted like the atoms; without MAGMOM, nonzero
    ``atoms.get_initial_magnetic_moments()`` become MAGMOM with ISPIN 2 (as ASE's Vasp does).
    """
    incar = {k.upper(): v for k, v in (incar or {}).items()}
    magmom = incar.get("MAGMOM")
    if isinstance(magmom, dict):
        symbols = atoms.get_chemical_symbols()
        unknown = sorted(set(magmom) - set(chemical_symbols))
        if unknown:
            raise ValueError(f"MAGMOM per element: {unknown} are not element symbols")
        incar["MAGMOM"] = [float(magmom.get(symbols[i], 0.0)) for i in perm]
        incar.setdefault("ISPIN", 2)
    elif isinstance(magmom, (list, tuple, np.ndarray)):
        if len(magmom) != len(atoms):
            raise ValueError(f"MAGMOM has {len(magmom)} values for {len(atoms)} atoms")
        incar["MAGMOM"] = [float(magmom[i]) for i in perm]
    elif "MAGMOM" not in incar and atoms.has("initial_magmoms"):
        moments = atoms.get_initial_magnetic_moments()
        if moments.ndim == 1 and np.any(moments != 0):
            incar["MAGMOM"] = [float(moments[i]) for i in perm]
            incar.setdefault("ISPIN", 2)
    return incar


def kind_incar(kind: str = "static", fmax: float | None = None, incar: dict | None = None) -> dict:
    """INCAR overrides (on top of DEFAULT_INCAR) for a run of ``kind`` (see KIND_INCAR) and ``incar``.

    ``fmax`` (eV/A, relaxations only) sets EDIFFG = -fmax; ``incar`` entries apply last (None removes a tag).
    """
    if kind not in KIND_INCAR:
        raise ValueError(f"unknown VASP run kind {kind!r}; choose one of {list(KINDS)}")
    tags = dict(KIND_INCAR[kind])
    if fmax is not None:
        if kind == "static":
            raise ValueError("fmax is the force criterion of a relaxation; a static run has none")
        if not fmax > 0:
            raise ValueError(f"fmax must be positive (eV/A), got {fmax}")
        tags["EDIFFG"] = -float(fmax)
    tags.update(incar or {})
    return tags


def write_inputs(
    atoms: Atoms,
    jobdir,
    *,
    incar: dict | None = None,
    kpoint_density: float = 300.0,
    gamma_only: bool = False,
    potcar: dict | None = None,
    kind: str = "static",
    fmax: float | None = None,
) -> None:
    """Write POSCAR (species grouped), INCAR (DEFAULT_INCAR, then ``kind``'s tags, then ``incar``),
    KPOINTS (Gamma-centred) and POTCAR into ``jobdir``."""
    jobdir = Path(jobdir)
    _, _, texts = _input_texts(atoms, incar=kind_incar(kind, fmax, incar), kpoint_density=kpoint_density,
                               gamma_only=gamma_only, potcar=potcar)
    jobdir.mkdir(parents=True, exist_ok=True)
    for name, text in texts.items():
        write_text(jobdir / name, text)

