"""The fine-tuning strategies: one module each, one registry.

Every module of this package (names not starting with ``_``, except :mod:`.base`) defines one
:class:`~.base.Strategy` subclass and exposes an instance as ``STRATEGY``; the registry collects them in
their ``order``.  **Adding a strategy is adding one module**: its name, what it trains (one line), its options
(:class:`~.base.Option`: type, default, unit, meaning), its label / colour / marker, and how it trains
(:meth:`~.base.Strategy.adapt` for the in-process trainer of the matched recipe; the study recipe's tool
through :meth:`~.base.Strategy.study_tool` and :meth:`~.base.Strategy.mace_options` or
:meth:`~.base.Strategy.equitrain_options`).  Everything else reads the registry: the configuration's schema
(the ``strategies`` enum, ``finetune.defaults`` and ``finetune.strategy_params`` are built from it when a
config is validated, :func:`config_schema`), the rules (which strategies train, their params:
:func:`phononft.config.strategy_params`), :func:`phononft.finetune.finetune` and the figures
(:mod:`phononft.figures.style`).

==============  ===========================================================================================
``pretrained``  nothing: the foundation model, zero-shot
``scratch``     every weight of a fresh MACE of the foundation's architecture
``naive``       every foundation weight (full fine-tuning)
``frozen``      the blocks above MACE's freeze level (frozen transfer learning)
``multihead``   every weight, with replay of the foundation's pretraining data through a second head
``lora``        mace-torch's equivariant LoRA adapters (all linears), merged
``equitrain``   Equitrain's LoRA on the radial-MLP matrices (the study's framework), merged
``delta``       every weight as foundation + delta, decoupled weight decay pulling the deltas to zero
``l2sp``        every weight, with an L2-SP penalty toward the foundation's weights
==============  ===========================================================================================

API: :func:`get` (a strategy by name), :func:`names` (all, in order), :func:`trained` (the names of those
that train), :func:`all_strategies`, :func:`config_schema`, :func:`discover` (rescan the modules, e.g. after
adding one to ``__path__``).
"""

from __future__ import annotations

import difflib
import importlib
import pkgutil

from .base import TRAINING, Job, Option, Strategy  # noqa: F401  (the package's API)

_REGISTRY: dict[str, Strategy] = {}


def discover() -> dict[str, Strategy]:
    """(Re)build the registry from the modules on this package's ``__path__``; returns it."""
    found: dict[str, Strategy] = {}
    for info in pkgutil.iter_modules(__path__):
        if info.name.startswith("_") or info.name == "base":
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        strategy = getattr(module, "STRATEGY", None)
        if not isinstance(strategy, Strategy):
            raise TypeError(f"{module.__name__} defines no STRATEGY (a phononft.strategies.base.Strategy)")
        if strategy.name in found:
            raise ValueError(f"strategy {strategy.name!r} defined twice ({module.__name__})")
        if strategy.name != info.name:
            raise ValueError(f"{module.__name__}: the module of strategy {strategy.name!r} must be named after it")
        found[strategy.name] = strategy
    _REGISTRY.clear()
    _REGISTRY.update(sorted(found.items(), key=lambda kv: (kv[1].order, kv[0])))
    return _REGISTRY


def all_strategies() -> list[Strategy]:
    return list(_REGISTRY.values())


def names() -> list[str]:
    """Every strategy's name, in the figures' order."""
    return list(_REGISTRY)


def trained() -> list[str]:
    """The names of the strategies that train a model."""
    return [name for name, s in _REGISTRY.items() if s.trained]


def get(name: str) -> Strategy:
    """The strategy called ``name``; an unknown name is refused naming the closest one."""
    try:
        return _REGISTRY[name]
    except KeyError:
        close = difflib.get_close_matches(str(name), list(_REGISTRY), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ValueError(f"unknown strategy {name!r}{hint}; choose from {', '.join(_REGISTRY)}") from None


def config_schema() -> dict:
    """The parts of the configuration's JSON schema that come from the registry: ``strategies`` (the enum
    of names), ``defaults`` (the shared training options with their defaults) and ``strategy_params`` (one
    closed object per strategy: its own options with defaults, the shared ones as overrides)."""
    return {
        "strategies": {"enum": names()},
        "defaults": {"type": "object", "additionalProperties": False, "default": {},
                     "properties": {o.name: o.schema() for o in TRAINING}},
        "strategy_params": {"type": "object", "additionalProperties": False, "default": {},
                            "properties": {s.name: s.params_schema() for s in all_strategies()}},
    }


discover()
