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
# The box: the central TAIL..1-TAIL quantiles of the points on each axis, widened by MARGIN
# of that extent on each side. Quantiles, not extremes, so that a few stray points do not
# stretch the grid until the wells fall between its nodes.
TAIL = 1e-3
MARGIN = 0.5


def boltzmann_nll(energy: MLPEnergy | ResidualEnergy, beta: Tensor, q: Tensor) -> Tensor:
    """Mean -log of exp(-beta E(q)) / Z over the points q [N, d] (d <= 3) in a box around
    them, Z summed on a grid over that box: the density is fitted as conditioned on the box,
    which follows the data (points outside it, at most a few per thousand, are left out, so
    nothing rewards putting mass where the sum for Z does not look)."""
    d = q.shape[-1]
    if d not in GRID:
        raise ValueError(f"the Boltzmann likelihood needs latent dimension <= 3, not {d}")
    pts = q.detach().reshape(-1, d)
    edges = torch.quantile(
        pts, torch.tensor([TAIL, 1 - TAIL], dtype=pts.dtype, device=pts.device), dim=0
    )
    pad = MARGIN * (edges[1] - edges[0]).clamp(min=1e-3)
    lo, hi = edges[0] - pad, edges[1] + pad
    pts = pts[((pts >= lo) & (pts <= hi)).all(-1)]
    n = GRID[d]
    axes = [
        torch.linspace(float(a), float(b), n, dtype=q.dtype, device=q.device)
        for a, b in zip(lo, hi, strict=True)
    ]
    grid = torch.stack(torch.meshgrid(*axes, indexing="ij"), dim=-1).reshape(-1, d)
    cell = torch.prod((hi - lo) / (n - 1))
    log_z = torch.logsumexp(-beta * energy(grid), dim=0) + torch.log(cell)
    return beta * energy(pts).mean() + log_z
