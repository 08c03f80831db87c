"""Occupancy of each basin under the Boltzmann density exp(-beta E), from the minima alone.

(b) zeroth order:  w_i ∝ exp(-beta E(x_i))
(c) second order (Laplace):  w_i ∝ exp(-beta E(x_i)) det(beta H_i)^(-1/2)
(d) quadrature: the integral of exp(-beta E) over each basin, on a grid
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from scipy.special import softmax
from torch import Tensor

from nld.analysis.energy import EnergyFn
from nld.analysis.grid import box_grid
from nld.analysis.minima import Minimum, assign_basins


def zeroth_order(minima: list[Minimum], beta: float) -> np.ndarray:
    return softmax(-beta * np.array([m.energy for m in minima]))


def second_order(minima: list[Minimum], beta: float) -> np.ndarray:
    logdet = np.array([np.sum(np.log(beta * m.hessian_eigenvalues)) for m in minima])
    return softmax(-beta * np.array([m.energy for m in minima]) - 0.5 * logdet)


def quadrature(
    energy: EnergyFn,
    minima: list[Minimum],
    beta: float,
    lo: np.ndarray,
    hi: np.ndarray,
    points_per_dim: int | None = None,
    assign: Callable[[Tensor], np.ndarray] | None = None,
) -> np.ndarray:
    """(d) The mass of exp(-beta E) in each basin, by a grid over the box [lo, hi] (d <= 3).

    Each grid point is assigned to its basin by gradient flow (or by `assign`, e.g. a
    `BasinIndex`); the box must hold nearly all the mass (widen it until the result stops
    changing).
    """
    d = len(lo)
    if d > 3:
        raise ValueError("quadrature is for latent dimension <= 3")
    n = points_per_dim or {1: 2000, 2: 200, 3: 48}[d]
    grid = box_grid(energy, lo, hi, n)
    e = grid.energy.ravel()
    w = np.exp(-beta * (e - e.min()))
    # Points of negligible weight need no basin: they cannot change the masses.
    keep = w > 1e-12 * w.max()
    pts = torch.from_numpy(grid.points.reshape(-1, d)[keep])
    labels = assign(pts) if assign is not None else assign_basins(energy, pts, minima)
    mass = np.bincount(labels, weights=w[keep], minlength=len(minima))
    return mass / mass.sum()
