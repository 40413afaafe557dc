"""Equitrain-style LoRA on a MACE model, through ``peft``.

The study's Equitrain framework (BAMeScience/equitrain, ``equitrain/finetune/lora_torch.py``) puts a
low-rank update ``W_eff = W + scale * B @ A`` on every parameter whose name ends in ``weight`` and that
has at least two dimensions.  In MACE those are the radial-MLP matrices
``interactions.*.conv_tp_weights.layer*.weight`` (the e3nn ``o3.Linear`` and tensor-product weights are
flat 1-D vectors, the symmetric-contraction weights are called ``weights_max`` / ``weights.N``).  Because
the radial MLP maps rotation-invariant edge lengths to tensor-product path weights, the adapted model
stays exactly equivariant.

Equitrain conventions reproduced here (``equitrain/finetune/_lora_common.py``):

* the rank is a *fraction* of each matrix's effective rank: ``r = ceil(rank_fraction * min(out, in))``,
  clamped to ``[min_rank, min(out, in)]``; default fraction 0.25 (``rank_reduction=75``), ``min_rank=1``;
* ``scale = alpha / r`` when ``alpha`` is given, else ``scale = 1`` (Equitrain's default ``alpha=None``);
* ``A ~ N(0, 1/in_dim)``, ``B = 0`` so that the wrapped model starts identical to the foundation.

Here the adapters are ``peft`` ``LoraConfig(target_parameters=...)`` ``ParamWrapper`` layers; per-matrix
ranks and alphas go through ``rank_pattern`` / ``alpha_pattern``.  :func:`merge_lora` folds them into the
base weights with ``merge_and_unload`` so the result is a plain MACE model of the foundation's class.
"""

from __future__ import annotations

import math
import re
import warnings
from dataclasses import dataclass

import peft
import torch
from peft.tuners.lora.layer import ParamWrapper
from peft.tuners.tuners_utils import BaseTunerLayer

#: Equitrain's default retained rank fraction (``resolve_retained_fraction(default=0.25)``).
EQUITRAIN_RANK_FRACTION = 0.25
#: Equitrain's default minimum rank.
EQUITRAIN_MIN_RANK = 1
#: Equitrain's default alpha: ``None`` means ``scale = 1`` for every adapter.
EQUITRAIN_ALPHA = None

ADAPTER_NAME = "default"


@dataclass(frozen=True)
class LoraTarget:
    """One adapted matrix: its parameter name, shape and the Equitrain rank/scale."""

    name: str
    shape: tuple[int, ...]
    rank: int
    alpha: float

    @property
    def scale(self) -> float:
        return self.alpha / self.rank

    @property
    def n_adapter_params(self) -> int:
        out_dim, in_dim = self.shape
        return self.rank * (out_dim + in_dim)


def equitrain_rank(shape: tuple[int, ...], rank_fraction: float = EQUITRAIN_RANK_FRACTION,
                   min_rank: int = EQUITRAIN_MIN_RANK) -> int:
    """Rank of the adapter for a matrix of ``shape`` (Equitrain's ``resolve_rank``)."""
    if not 0.0 < rank_fraction <= 1.0:
        raise ValueError(f"rank_fraction must be in (0, 1], got {rank_fraction}")
    if min_rank < 1:
        raise ValueError(f"min_rank must be >= 1, got {min_rank}")
    out_dim, in_dim = int(shape[0]), int(math.prod(shape[1:]))
    effective = min(out_dim, in_dim)
    return max(min_rank, min(int(math.ceil(rank_fraction * effective)), effective))


def is_equitrain_target(name: str, param: torch.Tensor) -> bool:
    """Equitrain's eligibility rule: a parameter named ``*weight`` with ``ndim >= 2``."""
    return name.endswith("weight") and param.ndim >= 2


def lora_targets(model: torch.nn.Module, *, rank_fraction: float = EQUITRAIN_RANK_FRACTION,
                 alpha: float | None = EQUITRAIN_ALPHA,
                 min_rank: int = EQUITRAIN_MIN_RANK) -> list[LoraTarget]:
    """The matrices Equitrain would adapt in ``model`` with their ranks and alphas.

    peft's ``ParamWrapper`` reads a 3-D parameter as a stack of experts, which is not Equitrain's
    flattening, so eligible tensors with more than two dimensions are refused (MACE has none).
    """
    targets = []
    for name, param in model.named_parameters():
        if not is_equitrain_target(name, param):
            continue
        if param.ndim != 2:
            raise NotImplementedError(
                f"{name} has shape {tuple(param.shape)}; only 2-D weights are adapted through peft")
        rank = equitrain_rank(tuple(param.shape), rank_fraction, min_rank)
        targets.append(LoraTarget(name, tuple(param.shape), rank,
                                  float(rank) if alpha is None else float(alpha)))
    if not targets:
        raise ValueError("the model has no 2-D '*weight' parameter to adapt")
    return targets


def wrap_lora(model: torch.nn.Module, *, rank_fraction: float = EQUITRAIN_RANK_FRACTION,
              alpha: float | None = EQUITRAIN_ALPHA, min_rank: int = EQUITRAIN_MIN_RANK,
              generator: torch.Generator | None = None):
    """Freeze ``model`` and attach Equitrain-style adapters with peft; returns the ``PeftModel``.

    The wrapped model is called exactly like the MACE model (``peft_model(batch_dict, training=...)``).
    ``generator`` seeds the Gaussian initialisation of the ``A`` factors (``B`` starts at zero).
    """
    targets = lora_targets(model, rank_fraction=rank_fraction, alpha=alpha, min_rank=min_rank)
    for p in model.parameters():
        p.requires_grad_(False)
    config = peft.LoraConfig(
        r=targets[0].rank,
        lora_alpha=targets[0].alpha,
        target_modules=[],
        target_parameters=[t.name for t in targets],
        rank_pattern={re.escape(t.name): t.rank for t in targets},
        alpha_pattern={re.escape(t.name): t.alpha for t in targets},
        lora_dropout=0.0,
        bias="none",
    )
    with warnings.catch_warnings():
        # peft 0.21 checks rank/alpha patterns against targeted *modules* only and so warns about
        # every parameter pattern although it applies them; the ranks are verified below instead
        warnings.filterwarnings("ignore", message=r"The following (rank|alpha)_pattern keys did not match")
        peft_model = peft.get_peft_model(model, config)
    by_name = {t.name: t for t in targets}
    wrappers = _param_wrappers(peft_model)
    if len(wrappers) != len(targets):
        raise RuntimeError(f"peft wrapped {len(wrappers)} parameters, expected {len(targets)}")
    with torch.no_grad():
        for layer in wrappers:
            target = by_name[_unwrapped_name(peft_model, layer)]
            if (layer.r[ADAPTER_NAME] != target.rank
                    or layer.scaling[ADAPTER_NAME] != target.scale):
                raise RuntimeError(f"peft gave {target.name} rank {layer.r[ADAPTER_NAME]} and scale "
                                   f"{layer.scaling[ADAPTER_NAME]}, expected {target.rank}, {target.scale}")
            a = layer.lora_A[ADAPTER_NAME].weight  # (r, in_features)
            b = layer.lora_B[ADAPTER_NAME].weight  # (out_features, r)
            a.copy_(torch.randn(a.shape, generator=generator, dtype=a.dtype).to(a.device)
                    / math.sqrt(a.shape[1]))
            b.zero_()
    # the adapters are the only trainable tensors: check that peft agrees with Equitrain's rule
    n_expected = sum(t.n_adapter_params for t in by_name.values())
    n_trainable, _ = count_parameters(peft_model)
    if n_trainable != n_expected:
        raise RuntimeError(f"peft made {n_trainable} parameters trainable, expected {n_expected}")
    peft_model.lora_targets = targets
    return peft_model


def _unwrapped_name(peft_model, layer) -> str:
    """Name of the original parameter a (possibly nested) ``ParamWrapper`` adapts."""
    for name, module in peft_model.base_model.model.named_modules():
        if module is layer:
            module_name = re.sub(r"(\.base_layer)+", "", name)
            return f"{module_name}.{layer.parameter_name}"
    raise KeyError(layer)


def _param_wrappers(peft_model):
    return [m for m in peft_model.modules() if isinstance(m, ParamWrapper)]


def adapter_parameters(peft_model) -> list[tuple[str, torch.nn.Parameter]]:
    """The LoRA factor tensors (``lora_A`` / ``lora_B``)."""
    return [(n, p) for n, p in peft_model.named_parameters() if ".lora_A." in n or ".lora_B." in n]


def count_parameters(model: torch.nn.Module) -> tuple[int, int]:
    """``(trainable, total)`` parameter counts, each tensor counted once."""
    seen, trainable, total = set(), 0, 0
    for p in model.parameters():
        if id(p) in seen:
            continue
        seen.add(id(p))
        total += p.numel()
        if p.requires_grad:
            trainable += p.numel()
    return trainable, total


def merge_lora(peft_model) -> torch.nn.Module:
    """Fold the adapters into the base weights (``merge_and_unload``) and return the plain model.

    The returned module is the foundation's own class with no peft layer or attribute left, every
    parameter trainable again (as a saved MACE model normally is).
    """
    merged = peft_model.merge_and_unload(safe_merge=True)
    leftovers = [n for n, m in merged.named_modules() if isinstance(m, BaseTunerLayer)]
    if leftovers:
        raise RuntimeError(f"peft layers left after merge: {leftovers[:3]}")
    for attr in ("peft_config", "lora_targets", "_hf_peft_config_loaded"):
        if attr in merged.__dict__:
            delattr(merged, attr)
    for p in merged.parameters():
        p.requires_grad_(True)
    return merged
