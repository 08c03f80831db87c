"""Early stopping: the training loop ends when the ELBO of sequences it does not train on has
stopped improving, instead of always running `train.iterations`.

With `train.holdout` > 0 a share of the training sequences (drawn with the run's seed) is
left out of the loop's batches. Every `holdout_every` iterations once the KL warm-up is over,
their ELBO at the loop's final KL weight is computed from the same posterior noise each time
(so two evaluations differ by the model, not by the draw), per observation step. The loop
stops when it has not gained `min_gain` nats per observed value (times the number of
channels per step) over its best in `patience` iterations. The stages after the loop use every
sequence.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from nld.model import NLDModel

HOLDOUT_STEPS = 20_000  # observation steps of the held-out sequences scored, at most


def holdout_rows(n: int, share: float, seed: int) -> tuple[Tensor, Tensor]:
    """Indices of the sequences the loop trains on and of those held out: `share` of n (at
    least one of each when share > 0 and n > 1; none held out otherwise)."""
    held = min(n - 1, max(1, round(share * n))) if share > 0 and n > 1 else 0
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed + 7919))
    return order[held:].sort().values, order[:held].sort().values


@torch.no_grad()
def held_out_elbo(model: NLDModel, x: Tensor, kl_weight: float, seed: int) -> float:
    """log-likelihood - kl_weight * KL per observation step of the sequences x [n, T, D] (at
    most HOLDOUT_STEPS steps of them), from posterior noise drawn with `seed`."""
    was_training = model.training
    model.eval()
    part = x[: max(1, HOLDOUT_STEPS // x.shape[1])]
    try:
        terms, _ = model.elbo_terms(part, generator=torch.Generator().manual_seed(seed))
    finally:
        model.train(was_training)
    kl = terms["kl0"] + terms["kl_path"]
    return float((terms["loglik"] - kl_weight * kl).sum()) / (part.shape[0] * part.shape[1])


@dataclass
class Stopping:
    """The held-out ELBO's best so far, and the iteration the loop stopped at (None: not
    stopped); saved with the training state so that a resumed run keeps them."""

    best: float | None = None
    best_at: int = 0
    kl_weight: float | None = None  # the KL weight `best` was computed at
    stopped_at: int | None = None

    def update(
        self, iteration: int, value: float, kl_weight: float, patience: int, gain: float
    ) -> bool:
        """Record the held-out ELBO `value` at `iteration`; whether the loop stops here."""
        if self.kl_weight != kl_weight:  # another objective (the rescue's KL weight): anew
            self.best, self.kl_weight = None, kl_weight
        if self.best is None or value >= self.best + gain:
            self.best, self.best_at = value, iteration
        elif iteration - self.best_at >= patience:
            self.stopped_at = iteration
        return self.stopped_at is not None

    def resume(self, kl_weight: float) -> None:
        """Before a resumed loop: a stop decided at another KL weight no longer holds."""
        if self.stopped_at is not None and self.kl_weight != kl_weight:
            self.stopped_at = None
