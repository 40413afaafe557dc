"""Logging for the thin Snakemake scripts: every line goes to the rule's ``log:`` file, time-stamped."""

from __future__ import annotations

import logging
import sys
import time
from pathlib import Path
from typing import Callable


def rule_logger(log_path: str | Path | None, name: str = "phononft") -> Callable[[str], None]:
    """Return ``log(msg)`` writing to ``log_path`` (and stderr); Python warnings and logging go there too."""
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if log_path:
        Path(log_path).parent.mkdir(parents=True, exist_ok=True)
        handlers.append(logging.FileHandler(log_path, mode="w"))
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s",
                        handlers=handlers, force=True)
    logging.captureWarnings(True)
    logger = logging.getLogger(name)
    t0 = time.perf_counter()

    def log_uncaught(exc_type, exc, tb):  # the failure's reason lands in the rule's log too
        import traceback

        logger.error("job failed: %s: %s\n%s", exc_type.__name__, exc,
                     "".join(traceback.format_exception(exc_type, exc, tb)))

    sys.excepthook = log_uncaught

    def log(msg: str) -> None:
        logger.info(f"[{time.perf_counter() - t0:8.1f} s] {msg}")

    return log
