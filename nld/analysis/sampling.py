"""Sampling the Boltzmann density exp(-beta E) with the Metropolis-adjusted Langevin algorithm.

MALA proposes y = x - (h beta / 2) grad E(x) + sqrt(h) xi and accepts with the Metropolis-
Hastings ratio, so the chains' stationary law is exactly exp(-beta E) / Z whatever the step h.
During burn-in h is tuned per chain towards an acceptance rate of 0.574 (the optimum for
smooth targets); after it, h is frozen so the chain is a proper Markov chain.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from nld.analysis.energy import EnergyFn, value_and_grad


@dataclass(frozen=True)
class Samples:
    chains: np.ndarray  # [n_kept, n_chains, d]
    acceptance: float  # after burn-in
    step: np.ndarray  # [n_chains], the frozen MALA step h


def mala(
    energy: EnergyFn,
    beta: float,
    starts: Tensor,
    *,
    n_steps: int = 2000,
    burn_in: int = 500,
    thin: int = 10,
    seed: int = 0,
) -> Samples:
    """Run one MALA chain from each start [n_chains, d]; keep every `thin`-th state after
    `burn_in` steps."""
    if burn_in >= n_steps:
        raise ValueError(f"burn_in ({burn_in}) must be below n_steps ({n_steps})")
    gen = torch.Generator().manual_seed(seed)
    x = starts.detach().to(torch.float64).clone()
    n, d = x.shape
    h = torch.full((n,), 1e-3, dtype=torch.float64)
    e, g = value_and_grad(energy, x)
    kept, accepted = [], 0.0

    def log_q(to: Tensor, frm: Tensor, g_frm: Tensor, h: Tensor) -> Tensor:
        mean = frm - 0.5 * beta * h[:, None] * g_frm
        return -((to - mean) ** 2).sum(-1) / (2 * h)

    for i in range(n_steps):
        noise = torch.randn(n, d, generator=gen, dtype=torch.float64)
        y = x - 0.5 * beta * h[:, None] * g + h.sqrt()[:, None] * noise
        ey, gy = value_and_grad(energy, y)
        log_a = -beta * (ey - e) + log_q(x, y, gy, h) - log_q(y, x, g, h)
        u = torch.rand(n, generator=gen, dtype=torch.float64)
        ok = torch.log(u) < log_a.nan_to_num(nan=-torch.inf)
        x = torch.where(ok[:, None], y, x)
        e = torch.where(ok, ey, e)
        g = torch.where(ok[:, None], gy, g)
        if i < burn_in:
            # Robbins-Monro on log h, per chain, towards 57.4% acceptance.
            rate = ok.double() - 0.574
            h = h * torch.exp(rate / (1 + i) ** 0.6)
        else:
            accepted += float(ok.double().mean())
            if (i - burn_in) % thin == 0:
                kept.append(x.numpy().copy())
    return Samples(np.stack(kept), accepted / (n_steps - burn_in), h.numpy())


def sampled_occupancy(labels: np.ndarray, n_basins: int) -> tuple[np.ndarray, np.ndarray]:
    """(a) Fraction of samples in each basin, from labels [n_kept, n_chains], and its
    standard error from the spread of the per-chain fractions over chains."""
    per_chain = np.stack(
        [np.bincount(col, minlength=n_basins) / len(col) for col in labels.T]
    )  # [n_chains, k]
    mean = per_chain.mean(0)
    err = per_chain.std(0, ddof=1) / np.sqrt(len(per_chain)) if len(per_chain) > 1 else mean * 0
    return mean, err
