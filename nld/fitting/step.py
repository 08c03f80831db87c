"""One optimisation step of the model: the ELBO step on the encoder, posterior, decoder and
heads, then `prior_steps` steps of the prior's drift on the same, detached, posterior path.

Shared by the training loop (`nld.fitting.trainer`) and the stage that separates merged states
(`nld.fitting.separate`), which adds a loss of its own on the posterior path.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor

from nld.fitting.config import TrainSettings
from nld.model import NLDModel
from nld.model.vae import PosteriorPath

Optimizers = dict[str, torch.optim.Optimizer]


class NonFinite(Exception):
    """A loss, gradient or weight was not finite: the caller rolls back."""


def optimizers(model: NLDModel, t: TrainSettings) -> Optimizers:
    """Adam on everything ("main"), or with a free posterior drift Adam on all but the prior's
    drift ("main") and Adam on the drift ("prior")."""

    def adam(params: list[torch.nn.Parameter]) -> torch.optim.Optimizer:
        return torch.optim.Adam(params, lr=t.lr, weight_decay=t.weight_decay)

    if model.cfg.posterior != "free":
        return {"main": adam(list(model.parameters()))}
    drift = model.prior.drift_parameters()
    ids = {id(p) for p in drift}
    rest = [p for p in model.parameters() if id(p) not in ids]
    return {"main": adam(rest), "prior": adam(drift)}


def set_lr(opts: Optimizers, lr: float) -> None:
    for o in opts.values():
        for group in o.param_groups:
            group["lr"] = lr


def cosine(start: float, end: float, frac: float) -> float:
    """A cosine schedule from `start` (frac 0) to `end` (frac 1)."""
    return end + 0.5 * (start - end) * (1 + math.cos(math.pi * frac))


def window_index(
    n: int, t_len: int, size: int, window: int | None, gen: torch.Generator
) -> tuple[Tensor, Tensor]:
    """Rows [size, 1] and steps [size, w] of `size` random windows of `window` steps (whole
    sequences if None) in n sequences of t_len steps: index an [n, t_len, ...] array."""
    w = t_len if window is None else min(window, t_len)
    rows = torch.randint(n, (size,), generator=gen)
    start = torch.randint(t_len - w + 1, (size,), generator=gen)
    return rows[:, None], start[:, None] + torch.arange(w)[None]


def clipped_step(opt: torch.optim.Optimizer, loss: Tensor, clip: float) -> float:
    """One clipped optimizer step; raises NonFinite instead of stepping on a bad loss."""
    if not torch.isfinite(loss):
        raise NonFinite
    opt.zero_grad(set_to_none=True)
    loss.backward()
    params = [p for g in opt.param_groups for p in g["params"]]
    norm = float(torch.nn.utils.clip_grad_norm_(params, clip))
    if not math.isfinite(norm):
        raise NonFinite
    opt.step()
    return norm


def elbo_step(
    model: NLDModel,
    opts: Optimizers,
    xb: Tensor,
    gen: torch.Generator,
    *,
    kl_weight: float,
    clip: float,
    prior_steps: int,
    extra: Callable[[PosteriorPath], Tensor] | None = None,
) -> tuple[dict[str, Tensor], float]:
    """One step on the batch xb [B, T, D]: the ELBO terms (per sequence) and the main step's
    gradient norm. `extra(path)` [B] is added to the main loss. Raises NonFinite."""
    terms, path = model.elbo_terms(xb, generator=gen)
    steps = xb.shape[1]
    kl = terms["kl0"] + terms["kl_path"]
    elbo = (terms["loglik"] - kl_weight * kl).mean()
    aux = terms["readout"].mean()
    if "predictive" in terms:
        aux = aux + model.cfg.predictive_weight * terms["predictive"].mean()
    if extra is not None:
        aux = aux + extra(path).mean()
    grad_norm = clipped_step(opts["main"], (aux - elbo) / steps, clip)
    for _ in range(prior_steps if "prior" in opts else 0):
        assert path.trace_y is not None and path.trace_f is not None
        mismatch = model.prior_mismatch(path.trace_y, path.trace_f)
        clipped_step(opts["prior"], kl_weight * mismatch, clip)
    if not all(torch.isfinite(p).all() for p in model.parameters()):
        raise NonFinite
    return terms, grad_norm
