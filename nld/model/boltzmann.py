"""The likelihood of latent points under the Boltzmann density exp(-beta E) / Z.

Fitting the prior's drift to the posterior's (the path KL) is a regression of grad E at the
points the posterior visits: like score matching, it learns the shape of each well but is
nearly blind to how deep one well sits relative to another, because the posterior crosses the
barriers between wells in a step or two and leaves no points there. The depths are what the
occupancies exp(-beta E) assigns to each state depend on. Their maximum-likelihood fit needs
the partition function Z, which for latent dimension <= 3 is a sum over a grid: cheap, exact
to the grid's resolution, and the gradient of log Z is the Boltzmann average that pulls
probability mass toward the wells the data actually spend time in.
"""

from __future__ import annotations

import torch
from torch import Tensor

from nld.model.energy import MLPEnergy, ResidualEnergy

# Grid points per dimension for Z: wells a few grid cells wide are summed to high accuracy
# (the Riemann sum of a Gaussian with spacing h is exact to exp(-2 pi^2 sigma^2 / h^2)).
GRID = {1: 512, 2: 96, 3: 32}
# Margin around the points' bounding box, as a fraction of its extent on each side.
MARGIN = 0.25


def boltzmann_nll(energy: MLPEnergy | ResidualEnergy, beta: Tensor, q: Tensor) -> Tensor:
    """Mean -log of exp(-beta E(q)) / Z over points q [N, d] (d <= 3), with Z summed on a grid
    over the points' bounding box widened by MARGIN: the box follows the data, so mass that
    E puts far from every point is not counted (the confining term keeps it small)."""
    d = q.shape[-1]
    if d not in GRID:
        raise ValueError(f"the Boltzmann likelihood needs latent dimension <= 3, not {d}")
    pts = q.detach().reshape(-1, d)
    lo, hi = pts.min(0).values, pts.max(0).values
    pad = MARGIN * (hi - lo).clamp(min=1e-3)
    lo, hi = lo - pad, hi + pad
    n = GRID[d]
    axes = [
        torch.linspace(float(a), float(b), n, dtype=q.dtype) for a, b in zip(lo, hi, strict=True)
    ]
    grid = torch.stack(torch.meshgrid(*axes, indexing="ij"), dim=-1).reshape(-1, d)
    cell = torch.prod((hi - lo) / (n - 1))
    log_z = torch.logsumexp(-beta * energy(grid), dim=0) + torch.log(cell)
    return beta * energy(pts).mean() + log_z
