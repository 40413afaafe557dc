"""What every strategy is made of: typed options (:class:`Option`), the training options all trained strategies
share (:data:`TRAINING`), one model's training job (:class:`Job`) and the :class:`Strategy` base class.

A strategy says *what* is trained; *how* (optimiser, loss, schedule, budget) is the recipe's
(``finetune.recipe``):

* ``study``: each strategy through its own tool, as the study ran it (:meth:`Strategy.study_tool`):
  ``mace_run_train`` (:class:`phononft.mace_train.MaceRunner`, from :meth:`Strategy.mace_options`),
  the Equitrain package (:class:`phononft.equitrain_engine.EquitrainRunner`, from
  :meth:`Strategy.equitrain_options`), or the in-process trainer;
* ``matched``: every strategy through the in-process trainer (:class:`phononft.torch_train.Trainer`) with one
  recipe, the strategy only saying what is trained (:meth:`Strategy.adapt`).

The shared options mean the same for every tool that has the knob (each tool's name for it is the tool
module's business); what a tool does not have (Equitrain's package: ``loss``, ``lr_factor``,
``scheduler_patience``) it does its own way, and the model's ``train.json`` records what ran.

Nothing here imports torch or mace (the registry is read when the configuration is validated and by the
figures); the training methods import them when called.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, ClassVar

from ..io import copy_atomic
from ..mace_train import MaceRunner

#: JSON-schema types of option values.
TYPES = ("integer", "number", "boolean", "string")


@dataclass(frozen=True)
class Option:
    """One option of a strategy: name, JSON-schema type, default, unit ("1": dimensionless) and meaning."""

    name: str
    type: str
    default: Any
    description: str
    unit: str = "1"
    minimum: float | None = None
    maximum: float | None = None
    exclusive_minimum: float | None = None
    exclusive_maximum: float | None = None
    enum: tuple | None = None
    nullable: bool = False

    def __post_init__(self):
        if self.type not in TYPES:
            raise ValueError(f"option {self.name}: type must be one of {TYPES}, not {self.type!r}")

    def schema(self, *, with_default: bool = True) -> dict:
        """The JSON-schema fragment of this option (description with the unit; ``x-unit`` for tools)."""
        unit = "" if self.unit in ("1", "") else f" [{self.unit}]"
        out: dict = {"type": [self.type, "null"] if self.nullable else self.type,
                     "description": f"{self.description}{unit}", "x-unit": self.unit}
        for key, value in (("minimum", self.minimum), ("maximum", self.maximum),
                           ("exclusiveMinimum", self.exclusive_minimum),
                           ("exclusiveMaximum", self.exclusive_maximum)):
            if value is not None:
                out[key] = value
        if self.enum is not None:
            out["enum"] = list(self.enum) + ([None] if self.nullable else [])
        if with_default:
            out["default"] = self.default
        return out


#: Training options shared by every trained strategy: ``finetune.defaults`` holds them (with these defaults,
#: mace_run_train's where it has the knob), a strategy's ``finetune.strategy_params`` entry may override them
#: (under ``recipe: matched`` only ``lr``: :data:`PER_STRATEGY_UNDER_MATCHED`).
TRAINING: tuple[Option, ...] = (
    Option("max_num_epochs", "integer", 100, "epoch budget: passes over the N training structures (the matched "
           "recipe runs every epoch: optimiser steps = max_num_epochs x ceil(N / batch_size))", "epochs", minimum=1),
    Option("patience", "integer", 10, "study recipe: stop after this many epochs without a lower validation loss "
           "(Equitrain's package and the in-process trainer; mace_run_train 0.3.16 never stops early on one "
           "process); ignored under the matched recipe, which runs every epoch", "epochs", minimum=1),
    Option("batch_size", "integer", 4, "structures per optimiser step (at most N)", "structures", minimum=1),
    Option("lr", "number", 5e-3, "AdamW learning rate (with finetune.lr_grid set, the grid's choice on the "
           "validation split replaces it)", exclusive_minimum=0),
    Option("energy_weight", "number", 10.0, "loss weight of the energy per atom (eV/atom)", minimum=0),
    Option("forces_weight", "number", 100.0, "loss weight of the force components (eV/Å)", minimum=0),
    Option("stress_weight", "number", 100.0, "loss weight of the stress components (eV/Å^3)", minimum=0),
    Option("loss", "string", "universal", "loss: mace's universal (Huber with delta 0.01, force threshold "
           "scaled with the force magnitude) or huber (weighted Huber, delta 0.01); Equitrain's package uses its "
           "own Huber loss", enum=("universal", "huber")),
    Option("ema_decay", "number", 0.99, "decay of the exponential moving average of the trained weights that is "
           "validated and saved; null: no average", minimum=0, exclusive_maximum=1, nullable=True),
    Option("weight_decay", "number", 5e-7, "AdamW decoupled weight decay per step and unit learning rate (mace's "
           "parameter groups: interaction linears and products)", minimum=0),
    Option("lr_factor", "number", 0.8, "ReduceLROnPlateau on the validation loss: factor of each learning-rate "
           "drop (Equitrain's package: its own plateau rule)", exclusive_minimum=0, exclusive_maximum=1),
    Option("scheduler_patience", "integer", 50, "ReduceLROnPlateau: epochs without a lower validation loss "
           "before the learning rate drops", "epochs", minimum=0),
)
TRAINING_NAMES = tuple(o.name for o in TRAINING)
#: The shared options a strategy may set for itself under ``recipe: matched`` (the rest must be shared).
PER_STRATEGY_UNDER_MATCHED = ("lr",)
#: Where a strategy trains under the study recipe (:meth:`Strategy.study_tool`).
TOOLS = ("mace_run_train", "equitrain", "in-process")


@dataclass
class Job:
    """One model's training: the foundation, the budget's training file, the validation file, where to work."""

    foundation: Path
    train_file: Path
    valid_file: Path
    budget: int
    seed: int
    workdir: Path
    device: str = "auto"
    dtype: str = "float64"
    replay_file: Path | None = None
    threads: int | None = None
    log: Callable[[str], None] = field(default=print)


class Strategy:
    """A fine-tuning strategy.  Subclasses set the class attributes and override the training hooks of the
    tools they use; a module of :mod:`phononft.strategies` exposing ``STRATEGY = MyStrategy()`` registers it.

    Class attributes: ``name`` (config name, a folder name), ``trains`` (one line: what is trained),
    ``label`` / ``color`` / ``marker`` / ``order`` (figures: legend text, colour, matplotlib marker, position
    in legends and axes), ``options`` (its own :class:`Option` s), ``trained`` (False: no training at all),
    ``needs_replay`` (it reads the material's replay file, :func:`phononft.layout.replay`),
    ``needs_foundation_elements`` (the training elements must be the foundation's), ``from_foundation`` (it
    starts from the foundation's weights: a fine-tuning strategy; False for ``scratch``).
    """

    name: ClassVar[str] = ""
    trains: ClassVar[str] = ""
    label: ClassVar[str | None] = None
    color: ClassVar[str] = "#7f7f7f"
    marker: ClassVar[str] = "o"
    order: ClassVar[float] = 100.0
    options: ClassVar[tuple[Option, ...]] = ()
    trained: ClassVar[bool] = True
    needs_replay: ClassVar[bool] = False
    needs_foundation_elements: ClassVar[bool] = True
    from_foundation: ClassVar[bool] = True

    # ---- options ---------------------------------------------------------------------------------
    def all_options(self) -> tuple[Option, ...]:
        """The shared training options (trained strategies) and the strategy's own."""
        return (TRAINING if self.trained else ()) + tuple(self.options)

    def defaults(self) -> dict:
        return {o.name: o.default for o in self.all_options()}

    def params_schema(self) -> dict:
        """The JSON schema of the strategy's ``finetune.strategy_params`` entry: its own options with their
        defaults, the shared ones without (``finetune.defaults`` holds those)."""
        props = {o.name: o.schema(with_default=o.name not in TRAINING_NAMES) for o in self.all_options()}
        return {"type": "object", "additionalProperties": False, "default": {}, "properties": props,
                "description": f"{self.name}: trains {self.trains}"}

    def resolve(self, params: dict | None) -> dict:
        """``params`` over the defaults, checked (types, ranges; an unknown key is refused naming the closest
        option); what a library caller passes instead of a validated config's :func:`strategy_params`."""
        params = dict(params or {})
        known = [o.name for o in self.all_options()]
        unknown = [k for k in params if k not in known]
        if unknown:
            hints = [k + (f" (did you mean {c[0]!r}?)" if (c := difflib.get_close_matches(k, known, n=1)) else "")
                     for k in unknown]
            raise ValueError(f"strategy {self.name}: unknown option(s) {', '.join(hints)}; "
                             f"options: {', '.join(known) or 'none'}")
        from ..config import ConfigError, _validator  # the config's own checker (config imports this package)

        schema = {**self.params_schema(), "properties": {o.name: o.schema() for o in self.all_options()}}
        errors = list(_validator(schema).iter_errors(params))
        if errors:
            raise ConfigError(f"strategy {self.name}: " + "; ".join(
                f"{'.'.join(map(str, e.absolute_path)) or 'options'}: {e.message}" for e in errors))
        return params

    def check_config(self, opts: dict, recipe: str) -> str | None:
        """A problem of these options under ``recipe`` that the schema cannot see (None: none); the config
        check reports it before any job."""
        return None

    # ---- training ----------------------------------------------------------------------------------
    def study_tool(self, opts: dict) -> str:
        """Which tool trains the strategy under the study recipe (one of :data:`TOOLS`)."""
        return "mace_run_train"

    def runner(self, job: Job, opts: dict, recipe: str):
        """An object whose ``fit(lr, out_model) -> record`` trains one model with learning rate ``lr``
        (called once per value of an lr grid; data loaded once where the tool allows)."""
        if recipe not in ("study", "matched"):
            raise ValueError(f"recipe must be study or matched, not {recipe!r}")
        tool = "in-process" if recipe == "matched" else self.study_tool(opts)
        if tool == "in-process":
            from ..torch_train import Trainer  # heavy (torch, mace): the registry is read at DAG build time

            return Trainer(self, job, opts, early_stopping=recipe == "study")
        if tool == "equitrain":
            from ..equitrain_engine import EquitrainRunner  # heavy (equitrain, torch): as above

            return EquitrainRunner(job, opts, **self.equitrain_options(opts))
        if tool == "mace_run_train":
            return MaceRunner(self, job, opts)
        raise ValueError(f"{self.name}: unknown tool {tool!r}")

    def adapt(self, model, opts: dict, ctx):
        """In-process training (:mod:`phononft.torch_train`): make ``model`` (a copy of the foundation, in
        the training dtype) train what the strategy trains; return a :class:`phononft.torch_train.Adapted`."""
        raise NotImplementedError(f"strategy {self.name} has no in-process training")

    def mace_options(self, job: Job, opts: dict) -> dict:
        """mace_run_train options of the strategy (the shared options are mapped by the runner)."""
        raise NotImplementedError(f"strategy {self.name} does not train through mace_run_train")

    def finish_mace(self, trained: Path, out_model: Path) -> None:
        """Turn mace_run_train's model into the strategy's output (default: copied atomically)."""
        copy_atomic(trained, out_model)

    def equitrain_options(self, opts: dict) -> dict:
        """Keywords of :func:`phononft.equitrain_engine.train_with_equitrain` (``wrapper`` and its own)."""
        raise NotImplementedError(f"strategy {self.name} does not train through the Equitrain package")

    def count_parameters(self, foundation: Path, out_model: Path, opts: dict) -> dict:
        """``{"trainable_parameters", "total_parameters"}`` of a model a CLI tool trained (default: every
        parameter of the trained model)."""
        from ..torch_runtime import load_model  # heavy (torch, mace): the registry is read at DAG build time

        total = sum(p.numel() for p in load_model(out_model).parameters())
        return {"trainable_parameters": int(total), "total_parameters": int(total)}

    def make(self, job: Job, out_model: Path) -> dict:
        """An untrained strategy's model (``trained = False``)."""
        raise NotImplementedError(f"strategy {self.name} is trained: use runner()")

    # ---- figures -----------------------------------------------------------------------------------
    def style(self) -> tuple[str, str, str]:
        """``(label, colour, marker)`` of the figures."""
        return self.label or self.name, self.color, self.marker

    def __repr__(self) -> str:
        return f"<strategy {self.name}: {self.trains}>"
