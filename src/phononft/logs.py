"""Logging of the thin Snakemake scripts: every line goes to the rule's ``log:`` file, time-stamped, and the
CPU time a job has used so far."""

from __future__ import annotations

import logging
import resource
import sys
import time
import traceback
from pathlib import Path
from typing import Callable


def rule_logger(log_path: str | Path | None, name: str = "phononft") -> Callable[[str], None]:
    """Return ``log(msg)`` writing to ``log_path`` only (the console shows Snakemake's progress, one line per
    finished model comes from :func:`announce`); Python warnings and logging go there too, and so does the
    traceback of an uncaught error."""
    handlers: list[logging.Handler] = []
    if log_path:
        Path(log_path).parent.mkdir(parents=True, exist_ok=True)
        handlers.append(logging.FileHandler(log_path, mode="w"))
    else:
        handlers.append(logging.StreamHandler(sys.stderr))
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s",
                        handlers=handlers, force=True)
    logging.captureWarnings(True)
    logger = logging.getLogger(name)
    t0 = time.perf_counter()

    def log_uncaught(exc_type, exc, tb):  # the failure's reason lands in the rule's log and on the console
        logger.error("job failed: %s: %s\n%s", exc_type.__name__, exc,
                     "".join(traceback.format_exception(exc_type, exc, tb)))
        print(f"phononft: job failed: {exc_type.__name__}: {exc} (log: {log_path})", file=sys.stderr)

    sys.excepthook = log_uncaught

    def log(msg: str) -> None:
        logger.info(f"[{time.perf_counter() - t0:8.1f} s] {msg}")

    return log


def announce(msg: str) -> None:
    """One line on the console (stderr), e.g. per finished model: what a user follows during a run."""
    print(f"phononft: {msg}", file=sys.stderr, flush=True)


def cpu_seconds() -> float:
    """CPU seconds used so far by this process (all threads) and its finished child processes."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime
