"""Time Snakemake's planning of the paper matrix: `snakemake -n --configfile config/paper.yaml` (goal: < 10 s).

    .venv/bin/python bench/bench_dag.py [--repeat 3] [--configfile config/paper.yaml]

Prints the wall time of each dry run, the median, and the number of jobs.  Runs offline.
"""
from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--configfile", default=str(REPO / "config" / "paper.yaml"))
    args = ap.parse_args()
    times, jobs = [], None
    for _ in range(args.repeat):
        with tempfile.TemporaryDirectory() as work:
            cmd = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "-n", "--configfile",
                   args.configfile, "--directory", work]
            t0 = time.perf_counter()
            res = subprocess.run(cmd, capture_output=True, text=True)
            times.append(time.perf_counter() - t0)
        if res.returncode:
            sys.exit(res.stdout[-3000:] + res.stderr[-3000:])
        jobs = int(re.search(r"^total\s+(\d+)$", res.stdout, re.M).group(1))
        print(f"dry run: {times[-1]:.2f} s")
    print(f"median {statistics.median(times):.2f} s for {jobs} jobs ({args.configfile})")


if __name__ == "__main__":
    main()
