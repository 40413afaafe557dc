"""Configuration: JSON-schema validation with defaults, readable errors, and the experiment matrix."""

from __future__ import annotations

import copy
import difflib
import glob
from pathlib import Path
from typing import NamedTuple

import yaml
from ase.data import chemical_symbols
from jsonschema import Draft202012Validator, validators

from . import strategies

SCHEMA = Path(__file__).resolve().parents[2] / "config" / "schema.yaml"


class ConfigError(ValueError):
    """The configuration is invalid; the message names the key."""


def _path(error) -> str:
    parts = []
    for p in error.absolute_path:
        parts.append(f"[{p}]" if isinstance(p, int) else (f".{p}" if parts else str(p)))
    return "".join(parts) or "(top level)"


def _explain(error) -> str:
    """One line naming the key, the problem and the allowed values."""
    where = _path(error)
    if error.validator == "additionalProperties":
        allowed = sorted(error.schema.get("properties", {}))
        extra = [k for k in error.instance if k not in allowed]
        hints = []
        for k in extra:
            close = difflib.get_close_matches(k, allowed, n=1)
            hints.append(f"{k!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
        return f"config key {where}: unknown key(s) {', '.join(hints)}; allowed: {', '.join(allowed)}"
    if error.validator == "enum":
        return f"config key {where}: {error.instance!r} is not allowed; choose one of {error.validator_value}"
    if "propertyNames" in error.schema_path:
        return (f"config key {where}: invalid name {error.instance!r}: use letters, digits, '_', '.' and '-' "
                "(names become folder names and wildcards)")
    if error.validator == "oneOf" and where.startswith("materials"):
        return (f"config key {where}: give exactly one of bulk, atoms, file or mp_id "
                "(or only reference_phonopy, whose unit cell is then the structure, or only data, whose first "
                "structure is then the structure)")
    return f"config key {where}: {error.message}"


def _validator(schema: dict):
    def set_defaults(validator, properties, instance, schema):
        if isinstance(instance, dict):
            for name, sub in properties.items():
                if "default" in sub and name not in instance:
                    instance[name] = copy.deepcopy(sub["default"])
        yield from Draft202012Validator.VALIDATORS["properties"](validator, properties, instance, schema)

    cls = validators.extend(Draft202012Validator, {"properties": set_defaults})
    return cls(schema)


def load_schema(schema_path: str | Path = SCHEMA) -> dict:
    """The configuration's JSON schema: config/schema.yaml with the parts the strategy registry owns filled in
    (the ``strategies`` enum, ``finetune.defaults`` and ``finetune.strategy_params``:
    :func:`phononft.strategies.config_schema`), so that a strategy module added later is known too."""
    schema = yaml.safe_load(Path(schema_path).read_text())
    parts = strategies.config_schema()
    schema["properties"]["strategies"]["items"] = parts["strategies"]
    finetune = schema["properties"]["finetune"]["properties"]
    for key in ("defaults", "strategy_params"):
        finetune[key] = {**parts[key], "description": finetune[key]["description"]}
    return schema


def _numbers_from_text(value, schema: dict):
    """``value`` with numeric text turned into the number the schema asks for, recursively: Snakemake's
    ``--config seeds=[0,1]`` gives list items as strings ('0', '1').  Anything else is returned unchanged (the
    validation then names it)."""
    kind = schema.get("type")
    if isinstance(value, str) and kind in ("integer", "number"):
        try:
            number = float(value)
        except ValueError:
            return value
        if kind == "number":
            return number
        return int(number) if number.is_integer() else value
    if isinstance(value, list) and isinstance(schema.get("items"), dict):
        return [_numbers_from_text(v, schema["items"]) for v in value]
    if isinstance(value, dict) and isinstance(schema.get("properties"), dict):
        return {k: _numbers_from_text(v, schema["properties"][k]) if k in schema["properties"] else v
                for k, v in value.items()}
    return value


def validate_config(config: dict, schema_path: str | Path = SCHEMA) -> dict:
    """Validate ``config`` in place (defaults filled in; numeric text where the schema asks for a number,
    as ``--config seeds=[0,1]`` gives, converted); raise :class:`ConfigError` naming the key."""
    schema = load_schema(schema_path)
    config.update(_numbers_from_text(config, schema))
    errors = sorted(_validator(schema).iter_errors(config), key=lambda e: (len(list(e.absolute_path)), str(e.message)))
    if errors:
        lines = [_explain(e) for e in errors]
        raise ConfigError("invalid configuration:\n  " + "\n  ".join(dict.fromkeys(lines)))
    check_semantics(config)
    check_runtimes(config)
    return config


def section_defaults(*keys: str, schema_path: str | Path = SCHEMA) -> dict:
    """The schema's defaults of one config section, e.g. ``section_defaults("evaluate")`` or
    ``section_defaults("phonons")``: what a validated config holds there when the user gave nothing (the
    schema is the only place defaults live; library callers and tests use this instead of repeating them)."""
    sub = load_schema(schema_path)
    for key in keys:
        sub = sub["properties"][key]
    filled: dict = {}
    _validator(sub).validate(filled)
    return filled


def check_semantics(config: dict) -> None:
    """Rules a JSON schema cannot express."""
    chosen = [strategies.get(s) for s in config["strategies"]]
    if any(s.trained for s in chosen) and not config["budgets"]:
        raise ConfigError("config key budgets: trained strategies need at least one budget")
    replaying = [s.name for s in chosen if s.needs_replay]
    if replaying and config["foundation"]["model"] and not config["foundation"]["replay"]:
        raise ConfigError(f"config key foundation.replay: strategy {', '.join(replaying)} with a given "
                          "foundation.model needs its pretraining data (extxyz) for replay")
    if config["foundation"]["model"] is None and "pretrain" not in config["foundation"]:
        raise ConfigError("config key foundation: give foundation.model (a local file) or foundation.pretrain")
    if "uncertainty" in config["selections"] and config["labeller"]["type"] == "vasp":
        raise ConfigError("config key selections: uncertainty labels its picks in rounds inside one job, which "
                          "needs an in-process labeller (mock); with VASP use random or fps")
    own_data = [m for m, spec in config["materials"].items() if "data" in spec]
    if own_data and set(config["selections"]) - {"random"}:
        raise ConfigError(f"config key selections: materials {own_data} bring their own labelled data, whose "
                          "training series is the data's (selections other than random pick from a rattled pool)")
    if config["labeller"]["type"] == "vasp" and "command" not in config["labeller"]["vasp"]:
        raise ConfigError("config key labeller.vasp.command: the VASP command is required for labeller type vasp")
    _check_magmom(config["labeller"]["vasp"].get("incar") or {})
    ft = config["finetune"]
    for s in chosen:
        problem = s.check_config(strategy_params(config, s.name), ft["recipe"])
        if problem:
            raise ConfigError(f"config key finetune.strategy_params.{s.name}: {problem}")
    if ft["recipe"] == "matched":  # one recipe: only the learning rate and the strategies' own options differ
        for s in chosen:
            shared = [k for k in ft["strategy_params"].get(s.name, {})
                      if k in strategies.base.TRAINING_NAMES and k not in strategies.base.PER_STRATEGY_UNDER_MATCHED]
            if shared:
                raise ConfigError(
                    f"config key finetune.strategy_params.{s.name}: {', '.join(shared)} must be the same for every "
                    "strategy under finetune.recipe matched (only "
                    f"{', '.join(strategies.base.PER_STRATEGY_UNDER_MATCHED)} and the strategy's own options may "
                    "differ): set it in finetune.defaults")


def resolve_material_paths(materials: dict, repo_root: str | Path) -> None:
    """Relative ``file`` / ``reference_phonopy`` paths and ``data.files`` patterns of materials: the working
    directory's, else the repository root's (the shipped configs' paths are relative to it), so that a run in
    another ``--directory`` finds them too.  In place."""
    for spec in materials.values():
        for key in ("file", "reference_phonopy"):
            path = spec.get(key)
            if path and not Path(path).is_absolute() and not Path(path).exists():
                candidate = Path(repo_root) / path
                if candidate.exists():
                    spec[key] = str(candidate.resolve())
        data = spec.get("data") or {}
        for i, pattern in enumerate(data.get("files", [])):
            if not Path(pattern).is_absolute() and not glob.glob(pattern, recursive=True):
                candidate = str(Path(repo_root).resolve() / pattern)
                if glob.glob(candidate, recursive=True):
                    data["files"][i] = candidate


def load_config(path: str | Path) -> dict:
    """Read and validate a YAML config file."""
    path = Path(path)
    try:
        config = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(config, dict):
        raise ConfigError(f"{path}: the configuration must be a mapping")
    return validate_config(config)


class Run(NamedTuple):
    """One model of the matrix."""

    material: str
    strategy: str
    budget: int
    seed: int
    selection: str = "random"


def model_runs(config: dict) -> list[Run]:
    """Every model: material x strategy x selection x budget x seed; an untrained strategy (zero-shot
    ``pretrained``) once per seed at budget 0 (selection ``random``: it picks no structure)."""
    runs = []
    for material in config["materials"]:
        for strategy in config["strategies"]:
            trained = strategies.get(strategy).trained
            for selection in (config["selections"] if trained else ["random"]):
                for budget in (config["budgets"] if trained else [0]):
                    for seed in config["seeds"]:
                        runs.append(Run(material, strategy, budget, seed, selection))
    return runs


def strategy_params(config: dict, strategy: str) -> dict:
    """The options of one strategy in a validated config: the shared training options of finetune.defaults
    (trained strategies), its finetune.strategy_params entry over them (defaults filled in by the schema)."""
    strat = strategies.get(strategy)
    ft = config["finetune"]
    own = dict(ft["strategy_params"][strategy])
    return {**ft["defaults"], **own} if strat.trained else own


def finetune_settings(config: dict, strategy: str) -> dict:
    """What a strategy's models depend on (a finetune rule's params): its options and, when it trains, the
    recipe and the lr grid (never another strategy's options)."""
    out = {"options": strategy_params(config, strategy)}
    if strategies.get(strategy).trained:
        out.update(recipe=config["finetune"]["recipe"], lr_grid=list(config["finetune"]["lr_grid"]))
    return out


def labeller_settings(config: dict) -> dict:
    """What labels depend on (never the resources of the jobs): the calculator, or VASP's input settings."""
    kind = config["labeller"]["type"]
    if kind == "vasp":
        vasp = config["labeller"]["vasp"]
        return {"type": kind, **{k: vasp[k] for k in ("incar", "kpoint_density", "potcar", "retries", "timeout")}}
    return {"type": kind, kind: config["labeller"][kind]}


def evaluate_settings(config: dict) -> dict:
    """What a model's evaluation depends on: the phonon and evaluation settings (not the job's wall time)."""
    return {"phonons": config["phonons"], "evaluate": {k: v for k, v in config["evaluate"].items() if k != "runtime"}}


def reference_settings(config: dict) -> dict:
    """What the reference depends on: the labeller's settings, the phonon and evaluation settings (not the
    device and dtype of the models' calculator), and whether VASP's residual forces are subtracted."""
    vasp = config["labeller"]["type"] == "vasp"
    return {"labeller": labeller_settings(config), "phonons": config["phonons"],
            "evaluate": {k: v for k, v in config["evaluate"].items() if k not in ("device", "dtype", "runtime")},
            "subtract_residual_forces": vasp and config["labeller"]["vasp"]["subtract_residual_forces"],
            "phonon_gamma_only": vasp and config["labeller"]["vasp"]["phonon_gamma_only"]}


def relax_settings(config: dict) -> dict:
    """What the reference's relaxed cell depends on (rattled structures and every model start from it): the
    labeller and the relaxation's own settings, nothing else of the phonon or evaluation settings (an edit of
    the q-mesh must not re-rattle, relabel and retrain)."""
    out = reference_settings(config)
    out["phonons"] = {k: config["phonons"][k] for k in ("relax_fmax", "relax_steps")}
    out["evaluate"] = {}
    return out


def _check_magmom(incar: dict) -> None:
    """MAGMOM in ``labeller.vasp.incar``: per element (``{Fe: 4.0}``, μB); a per-atom list cannot fit the
    workflow's cells of different sizes (unit cell, rattled and phonon supercells)."""
    magmom = {k.upper(): v for k, v in incar.items()}.get("MAGMOM")
    if magmom is None or isinstance(magmom, (int, float)) and not isinstance(magmom, bool):
        return
    if not isinstance(magmom, dict):
        raise ConfigError("config key labeller.vasp.incar.MAGMOM: give starting moments per element, e.g. "
                          "{Fe: 4.0, O: 0.6} (μB); a per-atom list cannot fit the unit cell, the rattled and the "
                          "phonon supercells alike")
    bad = [f"{k}: {v!r}" for k, v in magmom.items()
           if k not in chemical_symbols[1:] or not isinstance(v, (int, float)) or isinstance(v, bool)]
    if bad:
        raise ConfigError(f"config key labeller.vasp.incar.MAGMOM: {', '.join(bad)}: expected element symbol: "
                          "moment in μB")


def job_runtimes(config: dict) -> dict[str, tuple[int, str]]:
    """Wall time (minutes) of one job of each stage from the work it does, with the config keys it comes from:
    ``{rule: (minutes, explanation)}``.  (reference_vasp: the worst case, a job of relaxations.)"""
    runs = len(config["selections"]) * len(config["budgets"]) * len(config["seeds"])  # models of one trained job
    trainings = runs * max(1, len(config["finetune"]["lr_grid"]))  # an lr grid trains each model once per value
    vasp = config["labeller"]["vasp"]
    per_job = vasp["structures_per_job"]
    res = vasp["resources"]
    return {
        "finetune": (config["finetune"]["runtime"] * trainings,
                     f"{trainings} trainings (selections x budgets x seeds x lr_grid values) x finetune.runtime "
                     f"{config['finetune']['runtime']} min"),
        "evaluate": (config["evaluate"]["runtime"] * runs,
                     f"{runs} models (selections x budgets x seeds) x evaluate.runtime {config['evaluate']['runtime']} min"),
        "label_vasp": (res["runtime"] * per_job, f"labeller.vasp.structures_per_job {per_job} x "
                                                 f"labeller.vasp.resources.runtime {res['runtime']} min"),
        "reference_vasp": (res["relax_runtime"] * per_job, f"labeller.vasp.structures_per_job {per_job} x "
                                                           f"labeller.vasp.resources.relax_runtime {res['relax_runtime']} min"),
        "foundation": (config["foundation"]["runtime"], f"foundation.runtime {config['foundation']['runtime']} min"),
    }


def check_runtimes(config: dict) -> None:
    """Raise :class:`ConfigError` naming the keys when a job's work alone exceeds ``cluster.max_runtime``."""
    cap = config["cluster"]["max_runtime"]
    too_long = [f"{rule}: {minutes} min ({why})" for rule, (minutes, why) in job_runtimes(config).items()
                if minutes > cap]
    if too_long:
        raise ConfigError(f"jobs longer than cluster.max_runtime ({cap} min): " + "; ".join(too_long)
                          + ". Lower those per-unit minutes (or structures_per_job), or raise cluster.max_runtime "
                          "if the partition allows it.")


def figure_choice(config: dict) -> dict:
    """What the single-material figures show (config key ``figures``; unset keys: the first material, the
    largest budget, the first seed) and the (strategy, budget) of each model they draw: every strategy at
    that budget, ``pretrained`` at 0.  Raises ConfigError naming a key whose value is not configured."""
    opts, materials = config["figures"], list(config["materials"])
    choice = {
        "band_material": opts.get("band_material") or materials[0],
        "imaginary_material": opts.get("imaginary_material") or materials[0],
        "budget": opts.get("budget") or max(config["budgets"]),
        "seed": opts["seed"] if opts.get("seed") is not None else config["seeds"][0],
    }
    allowed = {"band_material": materials, "imaginary_material": materials, "budget": config["budgets"],
               "seed": config["seeds"]}
    for key, value in choice.items():
        if value not in allowed[key]:
            raise ConfigError(f"config key figures.{key}: {value!r} is not one of the configured {allowed[key]}")
    choice["models"] = [(s, choice["budget"] if strategies.get(s).trained else 0) for s in config["strategies"]]
    return choice
