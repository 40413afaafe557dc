"""Pulls toward the pretrained weights: the L2-SP penalty (strategy ``l2sp``) and decoupled weight decay on the
deltas (strategy ``delta``).

L2-SP (Li et al. 2018, "Explicit inductive bias for transfer learning"), normalised per parameter so that one
``lambda`` means the same for any model size::

    penalty = lambda * mean_i (w_i - w0_i)^2        (mean over every trained scalar weight)

A uniform shift ``c`` of every weight costs ``lambda * c^2`` whether the model has 10^4 or 10^7 weights; the
penalty is in the units of the training loss.  (The unnormalised ``lambda * sum`` grows with the parameter
count, so a value tuned on a small model over-regularises a large one.)

Equitrain's delta fine-tuning (``equitrain/finetune/delta_torch.py``) trains ``delta = w - w0`` from zero with
AdamW's decoupled weight decay on the deltas; :class:`DeltaDecay` applies that decay to ``w - w0`` of plain
weights before each optimiser step, which gives the same steps without reparametrising the model.
"""

from __future__ import annotations

import torch


class L2SPPenalty(torch.nn.Module):
    """``lam * mean((w - w0)^2)`` over the scalar weights of the parameters trainable at construction, ``w0``
    their values then (buffers: moved with ``.to()``, never trained)."""

    def __init__(self, model: torch.nn.Module, lam: float):
        super().__init__()
        if lam < 0:
            raise ValueError(f"L2-SP lambda must be >= 0, got {lam}")
        self.lam = float(lam)
        self._params = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
        if not self._params:
            raise ValueError("L2-SP: the model has no trainable parameter")
        self.n_weights = sum(p.numel() for _, p in self._params)
        self.anchor_names = []
        for i, (name, p) in enumerate(self._params):
            self.register_buffer(f"w0_{i}", p.detach().clone())
            self.anchor_names.append(name)

    def mean_square_distance(self) -> torch.Tensor:
        """``mean((w - w0)^2)`` over every trained scalar weight (differentiable)."""
        total = sum((p - getattr(self, f"w0_{i}")).pow(2).sum() for i, (_, p) in enumerate(self._params))
        return total / self.n_weights

    def forward(self) -> torch.Tensor:
        return self.lam * self.mean_square_distance()


class L2SPLoss(torch.nn.Module):
    """A MACE loss plus the L2-SP penalty; same call signature as ``mace.modules.loss`` losses."""

    def __init__(self, base_loss: torch.nn.Module, penalty: L2SPPenalty):
        super().__init__()
        self.base_loss = base_loss
        self.penalty = penalty

    def forward(self, ref, pred, ddp=None) -> torch.Tensor:
        return self.base_loss(ref=ref, pred=pred, ddp=ddp) + self.penalty()


class DeltaDecay(torch.nn.Module):
    """Decoupled weight decay on ``delta = w - w0``: called before each optimiser step, it sets
    ``w <- w0 + (1 - lr * decay) * (w - w0)`` with each parameter group's current learning rate, as AdamW
    decays a delta parameter before its update."""

    def __init__(self, model: torch.nn.Module, decay: float):
        super().__init__()
        if decay < 0:
            raise ValueError(f"delta decay must be >= 0, got {decay}")
        self.decay = float(decay)
        self._params = [p for p in model.parameters() if p.requires_grad]
        for i, p in enumerate(self._params):
            self.register_buffer(f"w0_{i}", p.detach().clone())

    def anchors(self) -> dict[int, torch.Tensor]:
        return {id(p): getattr(self, f"w0_{i}") for i, p in enumerate(self._params)}

    @torch.no_grad()
    def forward(self, optimizer: torch.optim.Optimizer) -> None:
        anchors = self.anchors()
        for group in optimizer.param_groups:
            shrink = 1.0 - group["lr"] * self.decay
            for p in group["params"]:
                w0 = anchors.get(id(p))
                if w0 is not None:
                    p.copy_(w0 + shrink * (p - w0))
