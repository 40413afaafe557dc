"""The conda environments (envs/*.yaml) agree with pyproject.toml, and every rule names an existing one.

conda cannot be installed in CI, so the environments are checked for consistency, not built: a package pinned
in an environment and in pyproject.toml has the same version; every environment pins what it installs; the
editable install of the project (`-e ../`) points at this repository; every rule that runs code has a
`conda:` directive pointing to an existing envs/*.yaml.
"""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import Version

REPO = Path(__file__).resolve().parents[1]
ENV_FILES = sorted((REPO / "envs").glob("*.yaml"))
RULE_FILES = sorted((REPO / "rules").glob("*.smk"))
# directives that run code in a job (a rule without any of them is a pure target, e.g. `all`)
CODE_DIRECTIVES = ("script", "shell", "notebook", "wrapper", "cwl")


def pyproject():
    data = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    reqs = {}
    for line in data["dependencies"]:
        req = Requirement(line)
        reqs[canonicalize_name(req.name)] = req
    return reqs, SpecifierSet(data["requires-python"])


def exact_version(spec: SpecifierSet) -> str | None:
    """The version of an exact pin (`==X`), else None."""
    pins = [s.version for s in spec if s.operator in ("==", "===") and "*" not in s.version]
    return pins[0] if len(pins) == 1 and len(spec) == 1 else None


def conda_requirement(entry: str) -> Requirement:
    """A conda match spec (`python=3.11`, `numpy==2.4.6`, `pip`) as a PEP 508 requirement."""
    m = re.fullmatch(r"([A-Za-z0-9_.\-]+)\s*(?:=([^=<>!\s]+)|(==|>=|<=|!=|<|>)\s*(\S+))?", entry.strip())
    assert m, f"unparseable conda dependency {entry!r}"
    name, fuzzy, op, version = m.groups()
    if fuzzy:  # conda's `=3.11` means 3.11.*
        return Requirement(f"{name}=={fuzzy.rstrip('.*')}.*" if not fuzzy.endswith("*") else f"{name}=={fuzzy}")
    return Requirement(f"{name}{op or ''}{version or ''}")


def env_packages(path: Path):
    """(conda requirements, pip requirements, editable paths) of one environment file."""
    env = yaml.safe_load(path.read_text())
    conda, pip, editable = {}, {}, []
    for dep in env.get("dependencies", []):
        if isinstance(dep, dict):
            for line in dep.get("pip", []):
                line = line.split("#")[0].strip()
                if line.startswith(("-e ", "--editable ")):
                    editable.append(line.split(None, 1)[1])
                elif line and not line.startswith("-"):
                    req = Requirement(line)
                    pip[canonicalize_name(req.name)] = req
        else:
            req = conda_requirement(str(dep))
            conda[canonicalize_name(req.name)] = req
    return env, conda, pip, editable


def test_env_files_exist():
    assert {p.stem for p in ENV_FILES} >= {"mlip", "phonons", "plots"}


@pytest.mark.parametrize("path", ENV_FILES, ids=lambda p: p.name)
def test_env_pins_agree_with_pyproject(path):
    deps, requires_python = pyproject()
    env, conda, pip, editable = env_packages(path)
    assert env.get("name", "").startswith("phononft-"), "environment names: phononft-<stage>"
    problems = []
    # python: pinned, and allowed by requires-python
    assert "python" in conda, "pin python in the conda dependencies"
    py = exact_version(conda["python"].specifier) or str(conda["python"].specifier).lstrip("=").rstrip(".*")
    if not requires_python.contains(Version(py.rstrip(".*"))):
        problems.append(f"python {py} is not allowed by requires-python {requires_python}")
    for name, req in pip.items():
        pinned = exact_version(req.specifier)
        if name not in deps:
            problems.append(f"{name}: in {path.name} but not a dependency in pyproject.toml")
            continue
        want = deps[name].specifier
        want_pin = exact_version(want)
        if pinned is None:
            # pyyaml>=6 in both is fine: the same range
            if str(req.specifier) != str(want):
                problems.append(f"{name}: {req.specifier or 'unpinned'} here, {want} in pyproject.toml")
        elif want_pin is not None and Version(pinned) != Version(want_pin):
            problems.append(f"{name}: {pinned} here, {want_pin} in pyproject.toml")
        elif not want.contains(Version(pinned), prereleases=True):
            problems.append(f"{name}: {pinned} here is outside {want} of pyproject.toml")
    assert not problems, f"{path.name}:\n" + "\n".join(problems)


@pytest.mark.parametrize("path", ENV_FILES, ids=lambda p: p.name)
def test_editable_project_install_is_pinned(path):
    """`-e ../` installs this repository with every dependency of pyproject.toml: those without an exact pin
    there (torch>=2.2) must be pinned in the environment, or pip picks whatever is newest."""
    deps, _ = pyproject()
    _, _, pip, editable = env_packages(path)
    for target in editable:
        assert (path.parent / target / "pyproject.toml").resolve() == (REPO / "pyproject.toml").resolve(), target
    if not editable:
        return
    loose = [
        name for name, req in deps.items()
        if exact_version(req.specifier) is None and exact_version(pip.get(name, Requirement(name)).specifier) is None
        and name != "pyyaml"
    ]
    assert not loose, f"{path.name} installs the project but does not pin {loose}"


def test_envs_agree_with_each_other():
    seen: dict[str, tuple[str, str]] = {}
    for path in ENV_FILES:
        _, conda, pip, _ = env_packages(path)
        for name, req in {**conda, **pip}.items():
            spec = str(req.specifier)
            if name in seen and seen[name][1] != spec:
                pytest.fail(f"{name}: {seen[name][1]} in {seen[name][0]}, {spec} in {path.name}")
            seen.setdefault(name, (path.name, spec))


def rule_blocks(text: str):
    """(rule name, block text) of every `rule NAME:` / `checkpoint NAME:` of a rule file, nested or not.

    An anonymous `rule:` (made in a loop) is named by its `name:` directive; an f-string name such as
    f"download_{_name}" is returned as a pattern, `download_*`.  A `use rule PARENT as NAME with:` gets its
    own directives followed by those of PARENT (of the same file), which it inherits.
    """
    heads = list(re.finditer(r"^(?P<indent>[ \t]*)(?:(?:rule|checkpoint)\b[ \t]*(?P<name>\w+)?"
                             r"|use[ \t]+rule[ \t]+(?P<parent>\w+)[ \t]+as[ \t]+(?P<child>\w+)[ \t]+with)[ \t]*:",
                             text, re.M))
    blocks, parents = {}, {}
    for i, m in enumerate(heads):
        end = heads[i + 1].start() if i + 1 < len(heads) else len(text)
        block = text[m.end():end]
        # the block ends at the first line indented no deeper than the `rule` keyword
        lines, indent = [], len(m["indent"].expandtabs())
        for line in block.splitlines()[1:]:
            if line.strip() and len(line) - len(line.lstrip()) <= indent and not line.lstrip().startswith("#"):
                break
            lines.append(line)
        block = "\n".join(lines)
        name = m["name"] or m["child"]
        if m["child"]:
            parents[name] = m["parent"]
        elif name is None:
            n = re.search(r"^[ \t]+name:[ \t]*\n?[ \t]*f?[\"']([^\"']+)[\"']", block, re.M)
            assert n, f"anonymous rule without a name: directive:\n{block[:300]}"
            name = re.sub(r"\{[^}]*\}", "*", n.group(1))
        blocks[name] = block
    for name, block in blocks.items():
        if name in parents:
            assert parents[name] in blocks, f"use rule {parents[name]} as {name}: no rule {parents[name]} in this file"
            block = block + "\n" + blocks[parents[name]]
        yield name, block


def directives(block: str) -> set[str]:
    return set(re.findall(r"^[ \t]+(\w+)[ \t]*:", block, re.M))


def all_rules():
    found = []
    for path in RULE_FILES + [REPO / "Snakefile"]:
        for name, block in rule_blocks(path.read_text()):
            found.append((path, name, block))
    return found


def test_every_code_rule_has_an_existing_conda_env():
    missing, broken, checked = [], [], 0
    for path, name, block in all_rules():
        d = directives(block)
        if not d & set(CODE_DIRECTIVES):
            continue  # a target rule (`all`) or a `run:` rule: conda does not apply to run blocks
        checked += 1
        m = re.search(r"^[ \t]+conda:[ \t]*\n[ \t]+[\"']([^\"']+)[\"']", block, re.M) or re.search(
            r"^[ \t]+conda:[ \t]*[\"']([^\"']+)[\"']", block, re.M
        )
        if not m:
            missing.append(f"{path.name}: rule {name}")
            continue
        env = (path.parent / m.group(1)).resolve()
        if not env.is_file() or env.parent != (REPO / "envs").resolve():
            broken.append(f"{path.name}: rule {name}: {m.group(1)} ({env})")
    assert checked >= 8
    assert not missing, "rules without conda:\n" + "\n".join(missing)
    assert not broken, "conda: paths that are not an envs/*.yaml file:\n" + "\n".join(broken)


SHIPPED_CONFIGS = [c for c in sorted((REPO / "config").glob("*.yaml")) if c.name != "schema.yaml"]


@pytest.mark.parametrize("config", SHIPPED_CONFIGS + [REPO / "tests" / "data" / "tiny.yaml"], ids=lambda p: p.name)
def test_rule_parser_sees_every_rule(config, tmp_path):
    """The text parser above must not miss rules: compare with Snakemake's own list, for every shipped config."""
    import fnmatch

    res = subprocess.run(
        [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "--configfile", str(config),
         "--list-rules", "--directory", str(tmp_path)],
        cwd=tmp_path, capture_output=True, text=True, timeout=300,
    )
    assert res.returncode == 0, res.stderr[-3000:]
    listed = {line.split()[0] for line in res.stdout.splitlines() if line.strip() and not line.startswith(" ")}
    parsed = {name for _, name, _ in all_rules()}
    assert listed, res.stdout
    missed = [r for r in listed if not any(fnmatch.fnmatchcase(r, p) for p in parsed)]
    assert not missed, f"rules Snakemake knows but the parser did not find: {sorted(missed)}"
