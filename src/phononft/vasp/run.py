"""Run VASP in a job directory: inputs written, command run (timeout, retries), vasprun.xml parsed.

One call of :func:`run_vasp` labels one structure in its own job directory, so the label stage can run one
Snakemake job (one cluster job) per structure.  Label conventions: :mod:`phononft.vasp.parse`; the
returned atoms have exactly the input order (and the input's positions, cell, info and arrays).

* A job directory that already holds a vasprun.xml which parses, is electronically converged, whose
  structure matches the input (same species order, cell and positions within ``MATCH_TOL`` A) and whose
  INCAR/KPOINTS equal the ones that would be written now, is reused without running VASP.
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

from .inputs import INPUT_FILES, _input_texts, _write_atomic
from .parse import VaspError, parse_vasprun

__all__ = ["MATCH_TOL", "VaspError", "run_vasp"]

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

