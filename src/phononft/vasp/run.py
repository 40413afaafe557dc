"""Run VASP in a job directory: inputs written, command run (timeout, retries), vasprun.xml parsed.

One call of :func:`run_vasp` labels one structure in its own job directory, so the label stage can run one
Snakemake job (one cluster job) per structure.  Label conventions: :mod:`phononft.vasp.parse`; the
returned atoms have exactly the input order (and the input's info and arrays).  ``kind`` says what is
computed (:data:`phononft.vasp.inputs.KIND_INCAR`): a ``static`` single point returns the input's cell and
positions with their labels; a relaxation (``relax_ions``, ``relax_cell``, ``relax_free``) returns the
final ionic step (cell and positions) with that step's labels, and :func:`relax_twice` is the
benchmark's double relaxation.

* A relaxation that used all NSW ionic steps without meeting EDIFFG raises :class:`VaspError`
  ("ionic relaxation not converged after N steps"); with ``retries`` the next attempt starts from the
  last structure (the attempt's CONTCAR), as one continues a VASP relaxation by hand.
* A job directory that already holds a vasprun.xml which parses, is electronically converged, whose
  structure matches the input (same species order, cell and positions within ``MATCH_TOL`` A) and whose
  INCAR/KPOINTS/POTCAR equal the ones that would be written now, is reused without running VASP.  For a
  relaxation the structure compared is the initial one (``initialpos``; for a relaxation continued from
  a CONTCAR, the initial one of the first attempt, followed back through ``attempt-<n>/``), and the
  relaxation must have converged.
* Failures (nonzero exit, timeout, missing or truncated vasprun.xml, SCF not converged, i.e. NELM
  electronic steps used) raise :class:`VaspError` naming the job directory and the reason.  With
  ``retries=k`` a failed run is repeated up to k times; every failed attempt's outputs (and a copy of
  its inputs) are moved to ``jobdir/attempt-<n>/`` before the next one starts.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path
from typing import Callable

import numpy as np
from ase import Atoms
from ase.io import read

from ..io import write_text
from .inputs import INPUT_FILES, _input_texts, kind_incar, poscar_text
from .parse import VaspError, initial_structure, parse_vasprun

__all__ = ["MATCH_TOL", "VaspError", "relax_twice", "run_vasp"]

#: Tolerance (A) on cell vectors and (minimum-image) positions when deciding whether a vasprun.xml
#: belongs to the input structure.  vasprun.xml stores fractional coordinates with 8 decimals, so
#: 1e-4 A is far above the round-off and far below any rattle or phonon displacement (0.01 A).
MATCH_TOL = 1e-4


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


#: info keys of a relaxation's result (besides the labels), from :func:`parse_vasprun`
RELAX_INFO = ("vasp_ionic_steps", "vasp_nsw", "vasp_ediffg", "vasp_max_force")


def _relaxed(atoms: Atoms, parsed: Atoms, perm: np.ndarray, kind: str) -> Atoms:
    """The input atoms (input order) moved to the final ionic step of ``parsed`` and carrying its labels.

    Each atom's fractional coordinates are taken as the periodic image nearest to its input ones, so
    an atom that crossed a cell face during the relaxation keeps its place next to its neighbours.
    """
    out = _labelled(atoms, parsed, perm)
    inverse = np.argsort(perm)
    frac = parsed.get_scaled_positions(wrap=False)[inverse]
    frac -= np.round(frac - atoms.get_scaled_positions(wrap=False))
    out.set_cell(parsed.cell, scale_atoms=False)
    out.set_scaled_positions(frac)
    out.info["vasp_kind"] = kind
    for key in RELAX_INFO:
        out.info[key] = parsed.info[key]
    out.info["vasp_relax_converged"] = bool(parsed.info["vasp_ionic_converged"])
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


def _not_converged(jobdir: Path, parsed: Atoms) -> VaspError:
    info = parsed.info
    stress = ""
    if info["vasp_isif"] >= 3 and "REF_stress" in info:  # VASP's cell criterion: |stress| * V/N < |EDIFFG|
        stress = f", max |stress| * V/N {np.abs(info['REF_stress']).max() * parsed.get_volume() / len(parsed):.2e} eV"
    return VaspError(
        jobdir,
        f"ionic relaxation not converged after {info['vasp_ionic_steps']} steps (NSW {info['vasp_nsw']}, "
        f"EDIFFG {info['vasp_ediffg']:g}, max force {info['vasp_max_force']:.2e} eV/A{stress}); "
        "last structure in CONTCAR",
    )


def _check_result(jobdir: Path, start: Atoms, relaxation: bool) -> Atoms:
    """The parsed vasprun.xml of a run that started from ``start`` (POSCAR order); raises VaspError.

    Ionic convergence is left to the caller (an unconverged relaxation is continued, not restarted)."""
    vasprun = jobdir / "vasprun.xml"
    parsed = parse_vasprun(vasprun)
    if not relaxation:
        why = _structure_mismatch(start, parsed)
        if why:
            raise VaspError(
                jobdir,
                f"final structure in vasprun.xml does not match the input ({why}); labelling must be a static "
                "run (NSW 0, IBRION -1)",
            )
        return parsed
    why = _structure_mismatch(start, initial_structure(vasprun))
    if why:
        raise VaspError(jobdir, f"initial structure in vasprun.xml does not match the POSCAR ({why})")
    return parsed


def _same_inputs(folder: Path, texts: dict) -> str | None:
    """None when ``folder``'s INCAR, KPOINTS and POTCAR are the ones in ``texts``; else the first that is not."""
    for name in ("INCAR", "KPOINTS", "POTCAR"):  # the structure is compared numerically
        path = folder / name
        if not path.is_file() or path.read_text() != texts[name]:
            return name
    return None


def _read_poscar(path: Path) -> Atoms | None:
    try:
        return read(path, format="vasp")
    except Exception:  # missing, empty or garbled (a killed run's CONTCAR): not a usable structure
        return None


def _start_mismatch(jobdir: Path, start: Atoms, sorted_atoms: Atoms, texts: dict) -> str | None:
    """None when a relaxation that started from ``start`` began at the input ``sorted_atoms``, directly or
    continued from the CONTCAR of an earlier attempt (with the same settings) that did; else why not."""
    why = _structure_mismatch(sorted_atoms, start)
    if why is None:
        return None
    attempts = [p for p in jobdir.glob("attempt-*") if p.name.split("-", 1)[1].isdigit()]
    for folder in sorted(attempts, key=lambda p: int(p.name.split("-", 1)[1]), reverse=True):
        contcar = _read_poscar(folder / "CONTCAR")
        if contcar is None or _same_inputs(folder, texts) or _structure_mismatch(start, contcar):
            continue  # not the attempt this run continued
        start = _read_poscar(folder / "POSCAR")
        if start is None:
            break
        if _structure_mismatch(sorted_atoms, start) is None:
            return None
    return why


def _reusable(jobdir: Path, sorted_atoms: Atoms, texts: dict, relaxation: bool) -> tuple[Atoms | None, str]:
    vasprun = jobdir / "vasprun.xml"
    if not vasprun.is_file():
        return None, "no vasprun.xml"
    try:
        parsed = parse_vasprun(vasprun)
        start = initial_structure(vasprun) if relaxation else parsed
    except VaspError as err:
        return None, err.reason
    if relaxation and not parsed.info["vasp_ionic_converged"]:
        return None, _not_converged(jobdir, parsed).reason
    if relaxation:
        why = _start_mismatch(jobdir, start, sorted_atoms, texts)
    else:
        why = _structure_mismatch(sorted_atoms, start)
    if why:
        return None, f"vasprun.xml is for another structure ({why})"
    name = _same_inputs(jobdir, texts)
    if name:
        return None, f"{name} differs from the requested settings"
    return parsed, "done"


def _continuation(folder: Path, parsed_final: Atoms | None, sorted_atoms: Atoms) -> Atoms | None:
    """Start of the next attempt after an unconverged relaxation archived in ``folder``: its CONTCAR."""
    contcar = _read_poscar(folder / "CONTCAR")
    if contcar is not None and contcar.get_chemical_symbols() == sorted_atoms.get_chemical_symbols():
        return contcar
    return parsed_final


def run_vasp(
    atoms: Atoms,
    jobdir,
    *,
    command: str,
    kind: str = "static",
    fmax: float | None = None,
    incar: dict | None = None,
    kpoint_density: float = 300.0,
    gamma_only: bool = False,
    potcar: dict | None = None,
    retries: int = 0,
    timeout: float | None = None,
    log: Callable[[str], object] = print,
) -> Atoms:
    """Label ``atoms`` with a VASP run of ``kind`` in ``jobdir``; returns a copy with REF_* labels.

    ``kind``: ``"static"`` (single point, the input's structure labelled), ``"relax_ions"``,
    ``"relax_cell"`` or ``"relax_free"`` (the final structure of the relaxation, labelled; ``info`` records
    ``vasp_kind``, ``vasp_ionic_steps``, ``vasp_nsw``, ``vasp_ediffg``, ``vasp_max_force`` [eV/A] and
    ``vasp_relax_converged``).  ``fmax`` [eV/A] is a relaxation's force criterion (EDIFFG = -fmax; default
    KIND_INCAR's 1e-3).  ``incar`` overrides DEFAULT_INCAR and the kind's tags (e.g. ``{"NSW": 200}``).
    ``command`` is a shell string (e.g. ``"srun vasp_std"``) run with cwd ``jobdir``; its stdout/stderr go
    to ``vasp.out`` / ``vasp.err`` there.  See the module docstring for the reuse of finished runs and the
    failure handling.  Raises :class:`VaspError`.
    """
    if not command or not str(command).strip():
        raise ValueError("run_vasp needs a command (e.g. 'srun vasp_std')")
    if retries < 0:
        raise ValueError(f"retries must be >= 0, got {retries}")
    tags = kind_incar(kind, fmax, incar)
    relaxation = kind != "static"
    jobdir = Path(jobdir).resolve()
    perm, sorted_atoms, texts = _input_texts(
        atoms, incar=tags, kpoint_density=kpoint_density, gamma_only=gamma_only, potcar=potcar
    )
    jobdir.mkdir(parents=True, exist_ok=True)

    def result(parsed: Atoms) -> Atoms:
        return _relaxed(atoms, parsed, perm, kind) if relaxation else _labelled(atoms, parsed, perm)

    parsed, why = _reusable(jobdir, sorted_atoms, texts, relaxation)
    if parsed is not None:
        log(f"[vasp] {jobdir}: finished run found, reusing it")
        return result(parsed)
    if (jobdir / "vasprun.xml").exists() or _outputs(jobdir):
        dest = _archive_outputs(jobdir)
        log(f"[vasp] {jobdir}: previous outputs not reusable ({why}); moved to {dest}")

    attempts = retries + 1
    start_atoms, files = sorted_atoms, dict(texts)
    for attempt in range(1, attempts + 1):
        for name, text in files.items():
            write_text(jobdir / name, text)
        start = time.monotonic()
        log(f"[vasp] {jobdir}: running {command!r} ({kind}, attempt {attempt}/{attempts})")
        reason = _execute(command, jobdir, timeout)
        unconverged = None
        try:
            if reason is not None:
                raise VaspError(jobdir, reason)
            parsed = _check_result(jobdir, start_atoms, relaxation)
            if relaxation and not parsed.info["vasp_ionic_converged"]:
                unconverged = parsed
                raise _not_converged(jobdir, parsed)
        except VaspError as err:
            dest = _archive_outputs(jobdir)
            msg = f"{err.reason} (attempt {attempt}/{attempts}; outputs kept in {dest})"
            if attempt == attempts:
                raise VaspError(jobdir, msg) from None
            follow = _continuation(dest, unconverged, sorted_atoms) if unconverged is not None else None
            if follow is not None:  # an unconverged relaxation: continue from where it stopped
                start_atoms, files["POSCAR"] = follow, poscar_text(follow)
                msg += "; continuing from its CONTCAR"
            log(f"[vasp] {jobdir}: failed: {msg}; retrying")
            continue
        if "REF_stress" not in parsed.info:
            log(f"[vasp] {jobdir}: warning: vasprun.xml has no stress (ISIF 0?); REF_stress not set")
        steps = f"{parsed.info['vasp_ionic_steps']} ionic steps, " if relaxation else ""
        log(
            f"[vasp] {jobdir}: done in {time.monotonic() - start:.1f} s, {steps}"
            f"{parsed.info['vasp_scf_steps']} electronic steps, E = {parsed.info['REF_energy']:.6f} eV"
        )
        return result(parsed)
    raise AssertionError("unreachable")  # pragma: no cover


def relax_twice(atoms: Atoms, jobdir, *, command: str, kind: str = "relax_cell", fmax: float | None = None,
                **settings) -> Atoms:
    """The benchmark's double relaxation (atomate2 ``DoubleRelaxMaker``): ``jobdir/relax-1/``, then
    ``jobdir/relax-2/`` from relax-1's final structure (fresh basis set and k-points for the new cell,
    which removes the Pulay stress of the first); returns relax-2's labelled final structure, with
    ``info["vasp_ionic_steps_relax1"]``.  ``settings``: further :func:`run_vasp` keywords.  Each
    sub-directory is reused when finished."""
    if kind == "static":
        raise ValueError("relax_twice needs a relaxation kind (relax_ions, relax_cell or relax_free)")
    jobdir = Path(jobdir)
    first = run_vasp(atoms, jobdir / "relax-1", command=command, kind=kind, fmax=fmax, **settings)
    second = run_vasp(first, jobdir / "relax-2", command=command, kind=kind, fmax=fmax, **settings)
    second.info["vasp_ionic_steps_relax1"] = first.info["vasp_ionic_steps"]
    return second
