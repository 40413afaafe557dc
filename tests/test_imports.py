"""What Snakemake imports while it builds the DAG stays light: the modules ``rules/*.smk`` import at parse time
load no torch, mace, matplotlib, scipy or pymatgen (each job of a cluster run parses the Snakefile again)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import phononft

REPO = Path(__file__).resolve().parents[1]
HEAVY = ("torch", "mace", "matplotlib", "scipy", "pymatgen", "phonopy", "hiphive", "peft", "equitrain")


def _parse_time_modules() -> list[str]:
    """The phononft modules the rule files import at module level (not inside a function or ``onerror``)."""
    found = set()
    for smk in [REPO / "Snakefile", *sorted((REPO / "rules").glob("*.smk"))]:
        for line in smk.read_text().splitlines():
            if m := re.match(r"from (phononft(?:\.\w+)*) import ([\w, ]*)", line):  # column 0: module level
                found.add(m.group(1))
                folder = REPO / "src" / m.group(1).replace(".", "/")
                found.update(f"{m.group(1)}.{n}" for n in map(str.strip, m.group(2).split(","))
                             if n and ((folder / f"{n}.py").is_file() or (folder / n).is_dir()))
    return sorted(found)


def test_rules_import_no_heavy_module():
    modules = _parse_time_modules()
    assert {"phononft.config", "phononft.checks", "phononft.strategies", "phononft.figures.registry"} <= set(modules)
    code = (f"import importlib, json, sys\nfor m in {modules!r}: importlib.import_module(m)\n"
            f"print(json.dumps(sorted(h for h in {HEAVY!r} if h in sys.modules)))")
    env = {**os.environ, "PYTHONPATH": str(Path(phononft.__file__).parents[1])}
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout.splitlines()[-1]) == []


def test_figure_jobs_load_no_torch_or_mace():
    """A figure job draws from tables and JSON files: importing the figure modules loads no torch or mace-torch
    (~6 CPU-seconds in each of the demo's 14 figure jobs)."""
    from phononft.figures import registry

    modules = sorted({f"phononft.figures.{f.module}" for f in registry.FIGURES.values()})
    code = (f"import importlib, json, sys\nfor m in {modules!r}: importlib.import_module(m)\n"
            "print(json.dumps(sorted(h for h in ('torch', 'mace', 'e3nn') if h in sys.modules)))")
    env = {**os.environ, "PYTHONPATH": str(Path(phononft.__file__).parents[1])}
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout.splitlines()[-1]) == []
