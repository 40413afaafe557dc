"""L2-SP: full fine-tuning with a penalty pulling every weight back to its pretrained value.

``penalty = lambda * sum_i ||w_i - w0_i||^2`` over all trainable parameters (Li et al. 2018, "Explicit
inductive bias for transfer learning").  Equitrain reaches the same objective with its delta wrapper
(``equitrain/finetune/delta_torch.py``: trainable ``delta = w - w0`` starting at zero, plus weight decay on
the deltas); here the penalty is explicit and added to MACE's own loss, so the optimiser sees
``loss_fn(pred, ref) + lambda * ||w - w0||^2`` and no parameter is reparametrised (the trained model is
already a plain MACE model).
"""

from __future__ import annotations

import torch

#: Default strength (per eV-scale loss of MACE's weighted Huber loss); not an Equitrain default
#: (Equitrain's examples use decoupled AdamW weight decay 1e-6 on the deltas).
DEFAULT_L2SP_LAMBDA = 1e-3


class L2SPPenalty(torch.nn.Module):
    """``lambda * sum ||w - w0||^2`` with ``w0`` frozen copies of the parameters at construction."""

    def __init__(self, model: torch.nn.Module, lam: float = DEFAULT_L2SP_LAMBDA):
        super().__init__()
        if lam < 0:
            raise ValueError(f"L2-SP lambda must be >= 0, got {lam}")
        self.lam = float(lam)
        self._params = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
        # anchors are buffers of this module (not parameters): never trained, moved with .to()
        self.anchor_names = []
        for i, (name, p) in enumerate(self._params):
            self.register_buffer(f"w0_{i}", p.detach().clone())
            self.anchor_names.append(name)

    def distance2(self) -> torch.Tensor:
        """``sum ||w - w0||^2`` (differentiable)."""
        total = None
        for i, (_, p) in enumerate(self._params):
            d = (p - getattr(self, f"w0_{i}")).pow(2).sum()
            total = d if total is None else total + d
        return total

    def forward(self) -> torch.Tensor:
        return self.lam * self.distance2()


class L2SPLoss(torch.nn.Module):
    """A MACE loss plus the L2-SP penalty; same call signature as ``mace.modules.loss`` losses."""

    def __init__(self, base_loss: torch.nn.Module, penalty: L2SPPenalty):
        super().__init__()
        self.base_loss = base_loss
        self.penalty = penalty

    def forward(self, ref, pred, ddp=None) -> torch.Tensor:
        return self.base_loss(ref=ref, pred=pred, ddp=ddp) + self.penalty()
