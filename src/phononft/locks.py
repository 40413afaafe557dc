"""Stale Snakemake locks: a run killed with SIGKILL (or a lost login session) leaves ``.snakemake/locks``
behind, and the next run stops with "Directory cannot be locked" until ``--unlock``.  So that the same
command resumes, the workflow removes the locks when no Snakemake process *of this machine* is at work in
the directory (checked through ``/proc``: command line and working directory).  Runs from two machines on
one shared directory are not detected; do not start them (Snakemake's own rule).
"""

from __future__ import annotations

import os
from pathlib import Path


def _ancestors() -> set[int]:
    pids, pid = set(), os.getpid()
    while pid > 1:
        pids.add(pid)
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
            pid = int(stat.rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            break
    return pids


def snakemake_busy_here(directory: str | Path) -> list[int]:
    """PIDs of other processes of this machine that run Snakemake (or its job scripts) in ``directory``."""
    directory = Path(directory).resolve()
    mine = _ancestors()
    busy = []
    proc = Path("/proc")
    if not proc.is_dir():
        return [-1]  # cannot tell: assume busy
    for entry in proc.iterdir():
        if not entry.name.isdigit() or int(entry.name) in mine:
            continue
        try:
            cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            cwd = Path(os.readlink(entry / "cwd"))
        except OSError:
            continue
        if "snakemake" in cmd and (cwd == directory or str(directory) in cmd):
            busy.append(int(entry.name))
    return busy


def clear_stale_locks(directory: str | Path = ".") -> bool:
    """Remove ``.snakemake/locks/*`` if no Snakemake process works in ``directory``; True if removed."""
    locks = Path(directory) / ".snakemake" / "locks"
    if not locks.is_dir():
        return False
    files = [p for p in locks.iterdir() if p.is_file()]
    if not files or snakemake_busy_here(directory):
        return False
    for p in files:
        p.unlink(missing_ok=True)
    return True
